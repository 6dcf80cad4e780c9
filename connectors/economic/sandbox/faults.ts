// Fault injection and the Idempotency-Key cache, as Hono middleware. Faults sit in front of everything
// (like a gateway); the idempotency cache sits behind auth, in front of the resources.
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { familyError, isOpenApiPath, logTime, openApiJson, restJson } from "./http.ts";

export const FAULT_KINDS = ["latency", "500", "503", "429", "drop_after_commit"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const faultRuleSchema = z
  .object({
    kind: z.enum(FAULT_KINDS),
    /** HTTP method, or omitted / "*" for any. */
    method: z.string().optional(),
    /** Regular expression (case-insensitive) matched against the URL path, e.g. "^/invoices/booked"; omitted = any path. */
    path: z.string().optional(),
    /** Fire this many times, then the rule is spent. */
    count: z.number().int().positive().optional(),
    /** Fire with this probability on each matching request (no limit unless count is set too). */
    probability: z.number().min(0).max(1).optional(),
    latencyMs: z.number().int().min(0).max(120_000).optional(),
    retryAfterSeconds: z.number().int().min(0).optional(),
  })
  .strict()
  .refine(
    (r) => {
      try {
        new RegExp(r.path ?? "");
        return true;
      } catch {
        return false;
      }
    },
    { message: "path must be a valid regular expression", path: ["path"] },
  );

export type FaultRule = z.infer<typeof faultRuleSchema>;

interface ActiveRule extends FaultRule {
  id: number;
  /** Left to fire; Infinity for a probability rule without count. */
  remaining: number;
  fired: number;
  regex: RegExp;
}

export type FaultCounts = Record<FaultKind, number>;

export function emptyFaultCounts(): FaultCounts {
  return { latency: 0, "500": 0, "503": 0, "429": 0, drop_after_commit: 0 };
}

export class FaultTable {
  private rules: ActiveRule[] = [];
  private nextId = 1;
  injected: FaultCounts = emptyFaultCounts();

  /** Called when a drop_after_commit rule is added (the server then closes idle keep-alive connections). */
  onDropArmed: () => void = () => {};

  constructor(private readonly random: () => number) {}

  add(rule: FaultRule): number {
    const id = this.nextId++;
    if (rule.kind === "drop_after_commit") queueMicrotask(() => this.onDropArmed());
    // Neither count nor probability: a one-shot fault.
    const remaining = rule.count ?? (rule.probability === undefined ? 1 : Infinity);
    this.rules.push({ ...rule, id, remaining, fired: 0, regex: new RegExp(rule.path ?? "", "i") });
    return id;
  }

  clear(): void {
    this.rules = [];
  }

  /** A drop_after_commit rule can still fire. */
  dropArmed(): boolean {
    return this.rules.some((r) => r.kind === "drop_after_commit" && r.remaining > 0);
  }

  list(): (FaultRule & { id: number; fired: number; remaining: number | null })[] {
    return this.rules.map(({ regex: _regex, remaining, ...r }) => ({ ...r, remaining: Number.isFinite(remaining) ? remaining : null }));
  }

  /** The faults to apply to one request; spent one-shot rules are removed. */
  decide(method: string, path: string): { latencyMs: number; fail?: "500" | "503" | "429"; retryAfterSeconds: number; drop: boolean } {
    const out = { latencyMs: 0, fail: undefined as "500" | "503" | "429" | undefined, retryAfterSeconds: 1, drop: false };
    for (const r of this.rules) {
      if (r.remaining <= 0) continue;
      if (r.method && r.method !== "*" && r.method.toUpperCase() !== method) continue;
      if (!r.regex.test(path)) continue;
      if (r.kind !== "latency" && (out.fail || out.drop)) continue; // one failure per request
      if (r.probability !== undefined && this.random() >= r.probability) continue;
      r.remaining--;
      r.fired++;
      this.injected[r.kind]++;
      if (r.kind === "latency") out.latencyMs += r.latencyMs ?? 1000;
      else if (r.kind === "drop_after_commit") out.drop = true;
      else {
        out.fail = r.kind;
        out.retryAfterSeconds = r.retryAfterSeconds ?? 1;
      }
    }
    this.rules = this.rules.filter((r) => r.remaining > 0);
    return out;
  }
}

/** A response whose body errors at once: Bun resets the connection and the client sees no answer. */
export function droppedResponse(): Response {
  return new Response(
    new ReadableStream({
      pull(c) {
        c.error();
      },
    }),
    { status: 201 },
  );
}

export function faultResponse(kind: "500" | "503" | "429", path: string, retryAfterSeconds: number): Response {
  if (kind === "429") {
    const body = { message: "Too many requests.", httpStatusCode: 429, logId: crypto.randomUUID() };
    const headers = { "retry-after": String(retryAfterSeconds) };
    return isOpenApiPath(path) ? openApiJson(429, { ...body, logTimeUtc: logTime() }, headers) : restJson(429, body, headers);
  }
  const res = familyError(
    path,
    Number(kind),
    kind === "503" ? "Service unavailable. Please try again later." : "Internal server error. The error has been logged.",
  );
  if (kind === "503") res.headers.set("retry-after", String(retryAfterSeconds));
  return res;
}

/**
 * Bun's fetch (like many clients) silently retries a GET/PUT/DELETE once when a *reused* keep-alive
 * connection is reset, which would turn a drop into an invisible replay. While a drop rule is armed,
 * every answer therefore says `Connection: close`, so the next request comes on a fresh connection.
 */
export function closeWhileDropArmed(table: FaultTable, res: Response): Response {
  if (!table.dropArmed()) return res;
  try {
    res.headers.set("connection", "close");
    return res;
  } catch {
    return new Response(res.body, { status: res.status, headers: [...res.headers, ["connection", "close"]] });
  }
}

export function faultMiddleware(table: FaultTable, onRequest: (method: string, url: URL) => void): MiddlewareHandler {
  return async (c, next) => {
    onRequest(c.req.method, new URL(c.req.url));
    // The raw path: routing lower-cases OpenAPI paths, rules are written against what clients send.
    const d = table.decide(c.req.method, new URL(c.req.url).pathname);
    if (d.latencyMs > 0) await Bun.sleep(d.latencyMs);
    if (d.fail) return closeWhileDropArmed(table, faultResponse(d.fail, c.req.path, d.retryAfterSeconds));
    await next();
    const res = c.res;
    c.res = undefined as unknown as Response; // replace, do not merge old headers into the new response
    if (d.drop) {
      await res.arrayBuffer().catch(() => undefined); // the request has had its full effect
      c.res = droppedResponse();
    } else {
      c.res = closeWhileDropArmed(table, res);
    }
  };
}

interface CachedResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer;
  expiresAt: number;
}

export const IDEMPOTENCY_TTL_MS = 60 * 60 * 1000;

/** (grant, method, path, key) → the first response, for an hour. Concurrent repeats wait for the first. */
export class IdempotencyCache {
  private readonly done = new Map<string, CachedResponse>();
  private readonly running = new Map<string, Promise<CachedResponse | undefined>>();
  replays = 0;

  constructor(private readonly now: () => number = Date.now) {}

  clear(): void {
    this.done.clear();
    this.running.clear();
    this.replays = 0;
  }

  size(): number {
    return this.done.size;
  }

  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const key = c.req.header("idempotency-key");
      if (!key || c.req.method === "GET" || c.req.method === "HEAD") return next();
      const cacheKey = [c.req.header("x-agreementgranttoken") ?? "", c.req.method, c.req.path, key].join("\n");
      const hit = this.lookup(cacheKey) ?? (await this.running.get(cacheKey));
      if (hit) return this.replay(hit);
      let finish!: (r: CachedResponse | undefined) => void;
      this.running.set(
        cacheKey,
        new Promise((resolve) => {
          finish = resolve;
        }),
      );
      let stored: CachedResponse | undefined;
      try {
        await next();
        const res = c.res;
        // Server errors are not cached: the request did not get an answer worth repeating.
        if (res.status < 500) {
          stored = {
            status: res.status,
            headers: [...res.headers],
            body: await res.clone().arrayBuffer(),
            expiresAt: this.now() + IDEMPOTENCY_TTL_MS,
          };
          this.done.set(cacheKey, stored);
        }
      } finally {
        this.running.delete(cacheKey);
        finish(stored);
      }
    };
  }

  private lookup(cacheKey: string): CachedResponse | undefined {
    const hit = this.done.get(cacheKey);
    if (hit && hit.expiresAt <= this.now()) {
      this.done.delete(cacheKey);
      return undefined;
    }
    return hit;
  }

  private replay(hit: CachedResponse): Response {
    this.replays++;
    const headers = new Headers(hit.headers);
    headers.set("x-resultfromcache", "true");
    return new Response(hit.body.slice(0), { status: hit.status, headers });
  }
}
