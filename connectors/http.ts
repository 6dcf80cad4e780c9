// Shared HTTP for connectors: timeouts, failure classification, Retry-After, a token bucket and
// single-flight refresh. Bun's fetch is used directly (undici's Agent is an inert stub under Bun).
import { AsyncLocalStorage } from "node:async_hooks";
import type { Problem } from "../agent/problem.ts";

/**
 * retryable: the target did not act (network before sending, 429, 5xx on a read): try again later.
 * permanent: the target refused the content (validation, auth): a person must act.
 * uncertain: the request may have had its effect (timeout, reset, 5xx on a write): look up before creating.
 */
export type FailureKind = "retryable" | "permanent" | "uncertain";

export class TargetError extends Error implements Problem {
  readonly kind: FailureKind;
  readonly code: string;
  readonly hint?: string;
  readonly field?: string;
  /** The record the user must change, when it is not the one pushed (see Problem.record). */
  readonly record?: Problem["record"];
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(kind: FailureKind, p: Problem & { status?: number; retryAfterMs?: number }) {
    super(p.message);
    this.name = "TargetError";
    this.kind = kind;
    this.code = p.code;
    this.hint = p.hint;
    this.field = p.field;
    this.record = p.record;
    this.status = p.status;
    this.retryAfterMs = p.retryAfterMs;
  }
}

export function isTargetError(e: unknown): e is TargetError {
  return e instanceof TargetError;
}

/**
 * The one classification of an HTTP answer that is not a success, for the targets and the PSA webhook:
 * 429 waits and retries; 5xx and 408 retry, but a write may have had its effect (uncertain); any other
 * answer (4xx, 401/403 included, or a redirect) needs a person.
 */
export function failureKindOf(status: number, isWrite: boolean): FailureKind {
  if (status === 429) return "retryable";
  if (status >= 500 || status === 408) return isWrite ? "uncertain" : "retryable";
  return "permanent";
}

/** 401/403: the credentials or the roles are wrong, not the content. */
export const isAuthStatus = (status: number): boolean => status === 401 || status === 403;

/** Why a request got no answer: never sent (refused), no answer in time, or cut off mid-way. */
export type NetworkFailure = "unreachable" | "timeout" | "connection_lost";

/** A host name that could not be resolved (Bun: ENOTFOUND from getaddrinfo): nothing was sent. */
export function isDnsFailure(e: unknown): boolean {
  const code = (e as any)?.code ?? "";
  return (
    code === "ENOTFOUND" ||
    code === "EAI_AGAIN" ||
    code === "DNSException" ||
    /ENOTFOUND|EAI_AGAIN|getaddrinfo|DNS lookup/i.test(errorText(e))
  );
}

/** Bun's fetch errors carry no reliable `.code`; classify by name and message. */
export function networkFailureOf(e: unknown): NetworkFailure {
  const msg = errorText(e);
  const name = e instanceof Error ? e.name : "";
  const code = (e as any)?.code ?? "";
  if (isDnsFailure(e)) return "unreachable";
  if (code === "ConnectionRefused" || code === "ECONNREFUSED" || /connection ?refused|unable to connect|FailedToOpenSocket/i.test(msg))
    return "unreachable";
  if (name === "TimeoutError" || name === "AbortError" || /timed? ?out/i.test(msg)) return "timeout";
  return "connection_lost";
}

/** Retry-After is either delta-seconds or an HTTP date. Returns milliseconds, or undefined if absent/invalid. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A Retry-After beyond this (a day) counts as this: a wrong header must not silence a target for weeks. */
export const MAX_PAUSE_MS = 24 * 60 * 60 * 1000;

/** The code of a request held back because the target asked us to wait: nothing was sent. */
export const TARGET_PAUSED = "target_paused";

/**
 * A pause the target asked for (429, or 503 with Retry-After), kept by the client itself: a push already
 * in flight when the pause began sends nothing more until it ends (its next request fails at once as
 * retryable, exactly as if the target had answered 429 again). The dispatcher keeps the stored pause
 * shared by every worker; this only closes the gap for requests of pushes already under way.
 */
export class PauseGate {
  private until = 0;

  constructor(private readonly now: () => number = Date.now) {}

  pause(ms: number): void {
    this.until = Math.max(this.until, this.now() + Math.min(ms, MAX_PAUSE_MS));
  }

  /** Milliseconds left of the pause, 0 if none. */
  remainingMs(): number {
    return Math.max(0, this.until - this.now());
  }
}

/** The code of a request a push was not let send: its worker is stopping or fenced (see pushUnder). */
export const NOT_SENT = "not_sent";

/** Why the push under way may send nothing now (its dispatcher stopping, its worker fenced), or null. */
export type SendFence = () => string | null;

/**
 * How long a write of a push that outlived its deadline (request_timeout_ms) is still listened to, by default: the
 * longest the target is taken to carry a write out after it was sent. Each target's `late_answer_wait_ms` sets its own
 * (the dispatcher passes it to pushUnder, and holds a lease taken back without its answer this long: agent/outbox.ts).
 */
export const LATE_ANSWER_WAIT_MS = 10 * 60 * 1000;

/** The push that runs in this async context: its fence, whether it has sent a write yet, and its writes answered late. */
interface PushUnderWay {
  fence: SendFence;
  /** How long its writes are listened to past their deadline (the target's late_answer_wait_ms). */
  lateAnswerWaitMs: number;
  wrote: boolean;
  /** Writes past their deadline still listened to: each settles once its answer is in or the wait is over. */
  late: Promise<void>[];
}

const pushFence = new AsyncLocalStorage<PushUnderWay>();

/**
 * Runs one push under a fence: every request it makes through an HttpClient (after waiting for the rate limiter)
 * first asks the fence, and is not sent while the fence gives a reason. Connectors need do nothing: the context
 * follows the push's awaits. A refused request fails as retryable if the push sent no write before it, else as
 * uncertain (an earlier write of the push may have had its effect). The one exception is a request that undoes the
 * push's own write (RequestOptions.undoesOwnWrite).
 *
 * The push ends (either way) only once every write it sent has answered: a write past its deadline fails the push
 * (uncertain) but is still listened to (HttpClient.request), and is waited for here, whatever the connector made of
 * its error. So the dispatcher keeps the delivery leased, and no attempt (on this worker or another) looks the record
 * up or writes it again, until the late write has landed or been refused. A write is listened to for `lateAnswerWaitMs`
 * from its send (the target's late_answer_wait_ms), then cut off.
 */
export async function pushUnder<T>(
  fence: SendFence,
  push: () => Promise<T>,
  waiting?: (writes: number) => void,
  lateAnswerWaitMs = LATE_ANSWER_WAIT_MS,
): Promise<T> {
  const under: PushUnderWay = { fence, lateAnswerWaitMs, wrote: false, late: [] };
  try {
    return await pushFence.run(under, push);
  } finally {
    // `waiting` hears how many writes the push waits for; a late answer's own work (e-conomic deletes a late draft) may
    // send writes that are late in turn.
    if (under.late.length > 0) waiting?.(under.late.length);
    while (under.late.length > 0) await Promise.all(under.late.splice(0));
  }
}

/** The error of a request (or a whole push) held back by the fence: nothing of it was sent. */
export function notSentError(why: string, what: string, afterWrite: boolean): TargetError {
  return new TargetError(afterWrite ? "uncertain" : "retryable", {
    code: NOT_SENT,
    message: `${what} was not sent: ${why}`,
    hint: afterWrite
      ? "Nothing to do: an earlier request of this push was sent, so the next attempt looks the record up first."
      : "Nothing to do: another attempt sends it.",
  });
}

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export interface HttpResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body was JSON, else the text (or null when empty). */
  body: any;
}

export interface RequestOptions {
  json?: unknown;
  body?: string | Uint8Array | FormData | Blob;
  headers?: Record<string, string>;
  /** Statuses the caller handles itself (e.g. 404 on a lookup) instead of an error. */
  accept?: number[];
  /** Return the body as bytes (a PDF, an image) instead of parsing it as JSON or text. */
  binary?: boolean;
  /**
   * Bun's fetch silently re-sends a GET/PUT/DELETE once when a reused keep-alive connection is reset.
   * That is harmless for reads and for writes the target deduplicates (an Idempotency-Key); for any
   * other write we open a fresh connection so a reset surfaces as an uncertain outcome instead.
   * Default: true for GET and for requests carrying an Idempotency-Key header.
   */
  replaySafe?: boolean;
  /**
   * The request undoes something this very push made and only that (a DELETE of the draft it created, by the number
   * its own answer gave): sent even when the push's fence is closed (pushUnder). A worker fenced after such a write
   * (declared dead while its request was on its way, e.g. paused between the fence and the wire) may no longer finish
   * the push, and the attempt that took its lease over may have looked for leftovers before the write landed; undoing
   * it cannot touch what any other attempt makes.
   */
  undoesOwnWrite?: boolean;
  /**
   * A POST that changes nothing at the target (a token request, a simulated posting): given up at the deadline like
   * a read, not listened to past it (see HttpClient.request).
   */
  changesNothing?: boolean;
  /**
   * A write of a push answered after its deadline: gets the answer still to come (it settles once it is in, or fails
   * when the wait is over), e.g. to delete a draft nobody will book. The push waits for that answer, not for this.
   */
  onLateAnswer?: (answer: Promise<HttpResponse>) => void;
}

export interface HttpClientOptions {
  baseHeaders: () => Promise<Record<string, string>> | Record<string, string>;
  timeoutMs: number;
  /** Turns an error response into a Problem in the target's own words. */
  describeError: (res: HttpResponse, method: string, url: string) => Problem;
  limiter?: TokenBucket;
  targetTitle: string;
  /** Shared by the clients of one target (else one per client). */
  gate?: PauseGate;
}

/** Plain-language problems for the statuses every target shares. */
function authProblem(status: number, title: string, base: Problem): Problem {
  if (status === 401) {
    return {
      ...base,
      hint:
        base.hint ??
        `Check the ${title} tokens in kontobro.toml (or their environment variables); the grant may have been revoked. Run \`kontobro check\`.`,
    };
  }
  return { ...base, hint: base.hint ?? `The ${title} user or app lacks a role for this; give it the needed role and press retry.` };
}

export class HttpClient {
  readonly gate: PauseGate;

  constructor(private readonly opts: HttpClientOptions) {
    this.gate = opts.gate ?? new PauseGate();
  }

  async request(method: string, url: string, options: RequestOptions = {}): Promise<HttpResponse> {
    this.holdIfPaused(method, url);
    // Awaited only when there is something to wait for: each await of a plain value costs the push a turn.
    if (this.opts.limiter) await this.opts.limiter.take();
    this.holdIfPaused(method, url);
    const isWrite = WRITE_METHODS.has(method);
    const base = this.opts.baseHeaders();
    const headers: Record<string, string> = {
      accept: "application/json",
      ...(base instanceof Promise ? await base : base),
      ...options.headers,
    };
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    // Asked last, right before sending: the limiter's wait and the headers (a token refresh) may have taken long.
    const push = pushFence.getStore();
    const why = options.undoesOwnWrite ? null : push?.fence();
    if (why) throw notSentError(why, `${method} ${pathOf(url)} to ${this.opts.targetTitle}`, push!.wrote);
    if (isWrite && push) push.wrote = true;
    const replaySafe = options.replaySafe ?? (!isWrite || hasIdempotencyKey(headers));
    const init: RequestInit = { method, headers, body, keepalive: replaySafe, redirect: "manual", ...proxyOptionOf(url) };
    // A write of a push is not cut off at its deadline: the target may carry it out all the same, after the next
    // attempt has looked or written (an older version landing over a newer one). The attempt still fails at the
    // deadline, but the request is listened to until it answers, and the push ends only then (pushUnder).
    if (!push || !isWrite || options.changesNothing) return this.exchange(url, init, isWrite, options, this.opts.timeoutMs);
    const wait = Math.max(this.opts.timeoutMs, push.lateAnswerWaitMs);
    return this.answerWithin(this.exchange(url, init, isWrite, options, wait), method, url, push, options);
  }

  /** The request sent and its answer read, or the TargetError that says what went wrong; cut off after `timeoutMs`. */
  private async exchange(
    url: string,
    init: RequestInit,
    isWrite: boolean,
    options: RequestOptions,
    timeoutMs: number,
  ): Promise<HttpResponse> {
    const method = init.method!;
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: timeoutSignal(timeoutMs) });
    } catch (e) {
      throw networkError(e, isWrite, method, url, this.opts.targetTitle, proxyFor(url));
    }
    // The status line and headers are in: a pause the target asks for begins now, not once the body has
    // arrived (reading it takes another turn of the event loop, in which other pushes would still send).
    if (!res.ok && !options.accept?.includes(res.status)) this.pauseIfAsked(res.status, res.headers);
    // The answer started but never finished (or its JSON did not): for a write, the effect is unknown.
    const unfinished = (e: unknown) =>
      new TargetError(isWrite ? "uncertain" : "retryable", {
        code: "connection_lost",
        message: `${this.opts.targetTitle} closed the connection while answering ${method} ${pathOf(url)}: ${errorText(e)}`,
        hint: "Usually temporary; kontobro retries and checks first whether the record arrived.",
      });
    let response: HttpResponse;
    try {
      if (options.binary && res.ok) response = { status: res.status, headers: res.headers, body: new Uint8Array(await res.arrayBuffer()) };
      else {
        const raw = await res.text();
        response =
          raw.length > 0 && (res.headers.get("content-type") ?? "").includes("json")
            ? jsonResponse(res.status, res.headers, raw, unfinished)
            : { status: res.status, headers: res.headers, body: raw.length === 0 ? null : raw };
      }
    } catch (e) {
      throw unfinished(e);
    }
    if (res.ok || options.accept?.includes(res.status)) return response;
    throw this.classify(response, method, url, isWrite);
  }

  /**
   * A push's write, raced against the target's request timeout. Within it: its answer. Past it: the attempt fails as
   * uncertain ("timeout", as a read's would), and the answer still to come is handed to the push (pushUnder waits for
   * it) and to `onLateAnswer`. A late 429 or 503 with Retry-After still pauses the target (exchange).
   */
  private async answerWithin(
    answer: Promise<HttpResponse>,
    method: string,
    url: string,
    push: PushUnderWay,
    options: RequestOptions,
  ): Promise<HttpResponse> {
    const deadline = timeoutSignal(this.opts.timeoutMs);
    let passed!: () => void;
    const late = new Promise<"late">((resolve) => {
      passed = () => resolve("late");
      deadline.addEventListener("abort", passed, { once: true });
    });
    const first = await Promise.race([answer, late]).finally(() => deadline.removeEventListener("abort", passed));
    if (first !== "late") return first;
    push.late.push(answer.then(ignore, ignore));
    options.onLateAnswer?.(answer);
    const proxy = proxyFor(url);
    throw new TargetError("uncertain", {
      code: "timeout",
      message: `${this.opts.targetTitle} did not answer ${method} ${pathOf(url)} in time${proxy ? ` through the proxy ${showProxy(proxy)}` : ""}`,
      hint: `Usually temporary; kontobro waits for its answer (up to ${showWait(push.lateAnswerWaitMs)}, the target's late_answer_wait_ms), then retries and checks first whether the record arrived.`,
    });
  }

  /** Sends nothing while the target's pause lasts: fails at once as retryable (nothing was sent). */
  private holdIfPaused(method: string, url: string): void {
    const left = this.gate.remainingMs();
    if (left <= 0) return;
    throw new TargetError("retryable", {
      code: TARGET_PAUSED,
      retryAfterMs: left,
      message: `${this.opts.targetTitle} asked kontobro to wait until ${new Date(Date.now() + left).toISOString()}; ${method} ${pathOf(url)} was not sent`,
      hint: "Nothing to do: kontobro sends it when the pause ends.",
    });
  }

  /** 429, or 503 with Retry-After: the whole target is paused, not just this request. */
  private pauseIfAsked(status: number, headers: Headers): void {
    const retryAfterMs = parseRetryAfter(headers.get("retry-after"));
    if (retryAfterMs !== undefined && (status === 429 || status === 503)) this.gate.pause(retryAfterMs);
  }

  private classify(res: HttpResponse, method: string, url: string, isWrite: boolean): TargetError {
    const described = this.opts.describeError(res, method, url);
    const p = { ...described, status: res.status };
    const kind = failureKindOf(res.status, isWrite);
    const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
    if (res.status === 429) {
      return new TargetError(kind, {
        ...p,
        code: p.code || "rate_limited",
        retryAfterMs,
        hint: p.hint ?? `${this.opts.targetTitle} asks us to slow down; kontobro waits as told and retries.`,
      });
    }
    if (res.status >= 500) {
      return new TargetError(kind, {
        ...p,
        retryAfterMs,
        hint: p.hint ?? `${this.opts.targetTitle} had a server error; kontobro retries by itself.`,
      });
    }
    if (isAuthStatus(res.status))
      return new TargetError(kind, { ...authProblem(res.status, this.opts.targetTitle, p), status: res.status });
    return new TargetError(kind, p);
  }
}

/**
 * A JSON answer whose body is parsed when first read: most successful writes are never read (a created customer's
 * echo), and parsing them was a share of a push's cost on the main thread (issue 16). A body that is not JSON
 * throws `invalid(error)` where it is read, as the request itself did before.
 */
function jsonResponse(status: number, headers: Headers, text: string, invalid: (e: unknown) => Error): HttpResponse {
  let parsed: { value: any } | null = null;
  return {
    status,
    headers,
    get body() {
      if (parsed === null) {
        try {
          parsed = { value: JSON.parse(text) };
        } catch (e) {
          throw invalid(e);
        }
      }
      return parsed.value;
    },
  };
}

/** Whether the headers carry an Idempotency-Key, in any case (no list of names, no lowered copy of each). */
function hasIdempotencyKey(headers: Record<string, string>): boolean {
  for (const h in headers) if (h.length === 15 && h.toLowerCase() === "idempotency-key") return true;
  return false;
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

const ignore = (): void => undefined;

/** A wait in words: "10 minutes", "90 seconds". */
function showWait(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} minute${ms === 60_000 ? "" : "s"}` : `${Math.round(ms / 1000)} seconds`;
}

/** The late_answer_wait_ms of the push under way in this async context (LATE_ANSWER_WAIT_MS outside any push). */
export function lateAnswerWaitMs(): number {
  return pushFence.getStore()?.lateAnswerWaitMs ?? LATE_ANSWER_WAIT_MS;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A request that got no answer, as a TargetError: a write that may have been sent is uncertain. `proxy`:
 * the proxy the request went through (then a refused connection is the proxy's, and the target's name is
 * resolved by the proxy).
 */
export function networkError(e: unknown, isWrite: boolean, method: string, url: string, title: string, proxy?: string): TargetError {
  const msg = errorText(e);
  const failure = networkFailureOf(e);
  const notSent = failure === "unreachable";
  const timedOut = failure === "timeout";
  const kind: FailureKind = notSent || !isWrite ? "retryable" : "uncertain";
  const via = proxy ? ` through the proxy ${showProxy(proxy)}` : "";
  const proxyNote = proxy
    ? ` kontobro uses the proxy ${showProxy(proxy)} (${activeProxy.source}) for ${hostOf(url)}.`
    : activeProxy.source !== "none"
      ? ` kontobro connects to ${hostOf(url)} directly (${activeProxy.source} does not apply to it).`
      : " kontobro connects directly (no proxy is set).";
  if (notSent && isDnsFailure(e)) {
    return new TargetError(kind, {
      code: failure,
      message: `The host name ${proxy ? `of the proxy ${showProxy(proxy)}` : hostOf(url)} could not be resolved (${title}, ${method} ${pathOf(url)}): ${msg}`,
      hint: `Check the host name in kontobro.toml, the server's DNS, and the proxy settings (HTTPS_PROXY/HTTP_PROXY/NO_PROXY, or [proxy] in kontobro.toml): a server that reaches the internet only through a proxy cannot resolve outside names itself.${proxyNote} kontobro retries by itself.`,
    });
  }
  return new TargetError(kind, {
    code: failure,
    message: notSent
      ? proxy
        ? `The proxy ${showProxy(proxy)} could not be reached for ${title} (${method} ${pathOf(url)}): ${msg}`
        : `${title} could not be reached (${method} ${pathOf(url)}): ${msg}`
      : timedOut
        ? `${title} did not answer ${method} ${pathOf(url)} in time${via}`
        : `The connection to ${title} broke during ${method} ${pathOf(url)}${via}: ${msg}`,
    hint: notSent
      ? proxy
        ? `Check that the proxy runs and that this server may use it ([proxy] url in kontobro.toml, or HTTPS_PROXY); kontobro retries by itself.`
        : `Check the network, the firewall and the ${title} address in kontobro.toml; behind a corporate proxy, set HTTPS_PROXY or [proxy] url. kontobro retries by itself.`
      : "Usually temporary; kontobro retries and checks first whether the record arrived.",
  });
}

// ---- Outbound proxy ----

/**
 * Where outbound requests to targets go: through a proxy from kontobro.toml ([proxy] url), else from the
 * environment (HTTPS_PROXY for https, HTTP_PROXY for http, upper or lower case), except for hosts in
 * NO_PROXY (environment) and [proxy] no_proxy. Bun's fetch tunnels https through the proxy with CONNECT.
 */
export interface ProxySettings {
  /** For http and https URLs; none = direct. */
  http?: string;
  https?: string;
  /** Host patterns that go direct: "example.com" (and its subdomains), ".example.com", "10.1.2.3", "host:port", "*". */
  noProxy: string[];
  /** Where the proxy comes from, for messages: "[proxy] url in kontobro.toml", "HTTPS_PROXY", … */
  source: string;
}

const envOf = (env: Record<string, string | undefined>, name: string) => env[name] || env[name.toLowerCase()] || undefined;
const envName = (env: Record<string, string | undefined>, name: string) => (env[name] ? name : name.toLowerCase());
const splitList = (s: string | undefined) =>
  (s ?? "")
    .split(/[,\s]+/)
    .map((x) => x.trim().toLowerCase())
    .filter(Boolean);

export function proxySettings(
  config: { url?: string; no_proxy?: string; from_environment?: boolean } = {},
  env: Record<string, string | undefined> = process.env,
): ProxySettings {
  const noProxy = [...splitList(envOf(env, "NO_PROXY")), ...splitList(config.no_proxy)];
  if (config.url) return { http: config.url, https: config.url, noProxy, source: "[proxy] url in kontobro.toml" };
  if (config.from_environment === false) return { noProxy, source: "none" };
  const https = envOf(env, "HTTPS_PROXY");
  const http = envOf(env, "HTTP_PROXY");
  const names = [https ? envName(env, "HTTPS_PROXY") : "", http ? envName(env, "HTTP_PROXY") : ""].filter(Boolean);
  return { ...(http ? { http } : {}), ...(https ? { https } : {}), noProxy, source: names.length ? names.join(" and ") : "none" };
}

let activeProxy: ProxySettings = proxySettings();

/** Sets the proxy for every outbound request of this process (at start, from kontobro.toml). */
export function useProxy(s: ProxySettings): void {
  activeProxy = s;
}

export function currentProxy(): ProxySettings {
  return activeProxy;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function bypassed(url: URL, noProxy: string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return noProxy.some((p) => {
    if (p === "*") return true;
    const [name, onlyPort] = p.startsWith("[")
      ? [p.slice(1, p.indexOf("]")), p.split("]:")[1]]
      : (p.split(":") as [string, string | undefined]);
    if (onlyPort && onlyPort !== port) return false;
    const bare = name!.replace(/^\*?\./, "");
    return host === bare || host.endsWith(`.${bare}`);
  });
}

/** The proxy for a URL, or undefined to connect directly. */
export function proxyFor(url: string, s: ProxySettings = activeProxy): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const proxy = u.protocol === "https:" ? s.https : u.protocol === "http:" ? s.http : undefined;
  return proxy && !bypassed(u, s.noProxy) ? proxy : undefined;
}

/** Bun's fetch options for a URL: the proxy, or explicitly none (Bun would otherwise apply the environment itself). */
export function proxyOption(url: string, s: ProxySettings = activeProxy): { proxy?: string } {
  const proxy = proxyFor(url, s);
  return (proxy ? { proxy } : { proxy: false }) as { proxy?: string };
}

/** proxyOption per origin (scheme, user, host and port: all it depends on), for the proxy settings in force. */
let proxyOptions = new Map<string, { proxy?: string }>();
let proxyOptionsFor = activeProxy;

/** proxyOption(url), kept per origin: a request's URL is not parsed again for it (issue 16). */
export function proxyOptionOf(url: string): { proxy?: string } {
  if (proxyOptionsFor !== activeProxy) {
    proxyOptions = new Map();
    proxyOptionsFor = activeProxy;
  }
  // Up to the first "/" after "//": the authority and whatever precedes its path, so one key is one origin.
  const start = url.indexOf("//");
  const end = start < 0 ? -1 : url.indexOf("/", start + 2);
  const origin = end < 0 ? url : url.slice(0, end);
  let option = proxyOptions.get(origin);
  if (option === undefined) {
    option = proxyOption(url);
    if (proxyOptions.size < 1000) proxyOptions.set(origin, option);
  }
  return option;
}

/**
 * How late a request's timeout may fire: the requests started within this long of each other share one timer. A
 * timer per request (AbortSignal.timeout) was one of the largest costs of a push on the agent's main thread.
 */
export const TIMEOUT_SLACK_MS = 50;
const sharedTimeouts = new Map<number, { until: number; signal: AbortSignal }>();

/**
 * A signal that aborts with a TimeoutError (as AbortSignal.timeout's) no sooner than `ms` from now and at most
 * TIMEOUT_SLACK_MS later: shared by the requests with the same timeout started within TIMEOUT_SLACK_MS of the first.
 */
export function timeoutSignal(ms: number, now = performance.now()): AbortSignal {
  const shared = sharedTimeouts.get(ms);
  if (shared && now < shared.until && !shared.signal.aborted) return shared.signal;
  const signal = AbortSignal.timeout(ms + TIMEOUT_SLACK_MS);
  sharedTimeouts.set(ms, { until: now + TIMEOUT_SLACK_MS, signal });
  return signal;
}

/** A proxy URL without its password, for messages. */
export function showProxy(proxy: string): string {
  try {
    const u = new URL(proxy);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    return proxy;
  }
}

/**
 * This process's share of every target's request rate. 1 for a single installation. Hosted workers (many
 * processes pushing to the same targets) set 1 / the number of live workers at every heartbeat, so together they
 * stay within a target's requests_per_second and burst.
 */
let rateShare = 1;

export function setRateShare(share: number): void {
  if (!(share > 0 && share <= 1)) throw new Error(`setRateShare(${share}): a share is more than 0 and at most 1`);
  rateShare = share;
}

/** A token bucket shared by every request to one target, so parallel pushes cannot cause a retry storm. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly fullRatePerSecond: number,
    private readonly fullBurst: number,
  ) {
    this.tokens = this.burst;
  }

  /** The configured rate and burst, times this process's share (at least one request's worth of burst). */
  private get ratePerSecond(): number {
    return this.fullRatePerSecond * rateShare;
  }

  private get burst(): number {
    return Math.max(1, this.fullBurst * rateShare);
  }

  take(): Promise<void> {
    if (this.ratePerSecond <= 0) return Promise.resolve();
    const next = this.queue.then(() => this.takeOne());
    this.queue = next;
    return next;
  }

  private async takeOne(): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await Bun.sleep(Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000));
    }
  }
}

/** Runs `fn` once for all concurrent callers (e.g. one token refresh however many pushes need it). */
export function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | null = null;
  return () => {
    running ??= fn().finally(() => {
      running = null;
    });
    return running;
  };
}
