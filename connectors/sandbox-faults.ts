// Fault injection shared by the sandboxes that take rules as
// POST /__sandbox/faults {method?, path? (regex), fault (or kind), count? | probability?, latencyMs?, retryAfterSeconds?}.
// A sandbox names its own fault kinds beyond the common ones and answers a failure in its target's own words
// (`failAnswer`); the rules, their matching and counting, and the dropped answer are the same everywhere.
import type { Hono } from "hono";
import { z } from "zod";

/** The kinds every such sandbox has: added latency, a failure status, and an answer lost after its effect. */
export const COMMON_FAULTS = ["latency", "500", "503", "429", "drop_after_commit"] as const;

/** The rule schema and the POST body ({rules: [...]}, a list, or one rule) for a sandbox's fault kinds. */
export function faultSchemas<K extends string>(kinds: readonly [K, ...K[]]) {
  const rule = z.preprocess(
    // `kind` is accepted as another name for `fault` (the e-conomic sandbox's spelling).
    (v: any) =>
      v && typeof v === "object" && v.fault === undefined && v.kind !== undefined ? { ...v, fault: v.kind, kind: undefined } : v,
    z.object({
      /** HTTP method; omitted or "*" for any. */
      method: z
        .string()
        .transform((m) => m.toUpperCase())
        .optional(),
      /** Regex (case-insensitive) tested against the path, path + query and its decoded form. */
      path: z
        .string()
        .refine(
          (p) => {
            try {
              new RegExp(p);
              return true;
            } catch {
              return false;
            }
          },
          { error: "must be a valid regular expression" },
        )
        .optional(),
      fault: z.enum(kinds),
      /** Fire this many times. Neither count nor probability: once. */
      count: z.number().int().positive().optional(),
      probability: z.number().min(0).max(1).optional(),
      latencyMs: z.number().int().min(0).max(120_000).optional(),
      retryAfterSeconds: z.number().int().min(0).optional(),
    }),
  );
  const body = z.union([
    z.object({ rules: z.array(rule).min(1) }).transform((b) => b.rules),
    z.array(rule).min(1),
    rule.transform((r) => [r]),
  ]);
  return { rule, body };
}

/** One rule as posted. */
export interface FaultRule<K extends string = string> {
  method?: string;
  path?: string;
  fault: K;
  count?: number;
  probability?: number;
  latencyMs?: number;
  retryAfterSeconds?: number;
}

interface ActiveRule<K extends string> extends FaultRule<K> {
  remaining: number;
  fired: number;
  regex: RegExp;
}

/** What happens to one request: latency adds up; at most one failure or drop. */
export interface FaultDecision<K extends string = string> {
  latencyMs: number;
  fail?: K;
  retryAfterSeconds?: number;
  drop: boolean;
  fired: string[];
}

export class Faults<K extends string = string> {
  private rules: ActiveRule<K>[] = [];
  /** Faults injected since the last reset, by kind. */
  readonly injected: Record<string, number> = {};
  /** Called when a drop is armed, so the server can close pooled keep-alive connections (see dropArmed). */
  onDropArmed: () => void = () => {};

  /**
   * `aside`: kinds a request does not meet by itself: the sandbox asks for them where they apply (`take`).
   * `failAnswer`: a failure's answer, in the target's words.
   */
  constructor(
    private readonly failAnswer: (fail: K, retryAfterSeconds: number | undefined) => Response,
    private readonly opts: { random?: () => number; aside?: readonly K[] } = {},
  ) {}

  add(rules: FaultRule<K>[]): void {
    for (const r of rules) {
      this.rules.push({
        ...r,
        remaining: r.count ?? (r.probability === undefined ? 1 : Infinity),
        fired: 0,
        regex: new RegExp(r.path ?? "", "i"),
      });
      if (r.fault === "drop_after_commit") queueMicrotask(() => this.onDropArmed());
    }
  }

  clear(): number {
    const n = this.rules.length;
    this.rules = [];
    return n;
  }

  resetCounts(): void {
    for (const k of Object.keys(this.injected)) delete this.injected[k];
  }

  list() {
    return this.rules.map(({ regex: _r, remaining, ...r }) => ({ ...r, remaining: Number.isFinite(remaining) ? remaining : null }));
  }

  /**
   * Bun's fetch repeats a GET/PUT/DELETE once when a reused keep-alive connection is reset, which would
   * hide a drop behind a replay. While a drop can still fire, answers close their connection.
   */
  dropArmed(): boolean {
    return this.rules.some((r) => r.fault === "drop_after_commit" && r.remaining > 0);
  }

  /** Whether a rule of an `aside` kind fires for this request (it is then counted and spent). */
  take(kind: K, method: string, path: string): boolean {
    const r = this.rules.find((x) => x.fault === kind && x.remaining > 0 && this.applies(x, method, [path]));
    if (!r) return false;
    this.fire(r);
    this.rules = this.rules.filter((x) => x.remaining > 0);
    return true;
  }

  /** Latency adds up; at most one failure or drop per request. Spent rules are removed. */
  decide(method: string, path: string, search: string): FaultDecision<K> {
    const out: FaultDecision<K> = { latencyMs: 0, drop: false, fired: [] };
    let decoded = path + search;
    try {
      decoded = decodeURIComponent((path + search).replace(/\+/g, " "));
    } catch {}
    const targets = [path, path + search, decoded];
    for (const r of this.rules) {
      if (this.opts.aside?.includes(r.fault)) continue;
      if (r.fault !== "latency" && (out.fail || out.drop)) continue;
      if (!this.applies(r, method, targets)) continue;
      this.fire(r);
      out.fired.push(r.fault);
      if (r.fault === "latency") out.latencyMs += r.latencyMs ?? 1000;
      else if (r.fault === "drop_after_commit") out.drop = true;
      else {
        out.fail = r.fault;
        out.retryAfterSeconds = r.retryAfterSeconds;
      }
    }
    this.rules = this.rules.filter((r) => r.remaining > 0);
    return out;
  }

  /** Runs `handle` under the decision. A drop performs the request, then breaks the answer (ECONNRESET). */
  async apply(d: FaultDecision<K>, handle: () => Promise<Response>): Promise<Response> {
    if (d.latencyMs) await Bun.sleep(d.latencyMs);
    if (d.drop) {
      await (await handle()).arrayBuffer(); // the effect is committed
      return new Response(
        new ReadableStream({
          pull(c) {
            c.error();
          },
        }),
        { status: 200, headers: { connection: "close" } },
      );
    }
    const res = d.fail ? this.failAnswer(d.fail, d.retryAfterSeconds) : await handle();
    return this.dropArmed() ? withConnectionClose(res) : res;
  }

  private fire(r: ActiveRule<K>): void {
    r.remaining--;
    r.fired++;
    this.injected[r.fault] = (this.injected[r.fault] ?? 0) + 1;
  }

  private applies(r: ActiveRule<K>, method: string, targets: string[]): boolean {
    if (r.method && r.method !== "*" && r.method !== method.toUpperCase()) return false;
    if (!targets.some((t) => r.regex.test(t))) return false;
    return r.probability === undefined || (this.opts.random ?? Math.random)() < r.probability;
  }
}

/** GET, POST and DELETE /__sandbox/faults: the rules in force and the faults injected, add rules, clear them. */
export function faultRoutes<K extends string>(app: Hono, faults: Faults<K>, body: z.ZodType<FaultRule<K>[]>): void {
  app.get("/__sandbox/faults", (c) => c.json({ rules: faults.list(), injected: faults.injected }));
  app.post("/__sandbox/faults", async (c) => {
    const parsed = body.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success)
      return c.json(
        { message: "Invalid fault rules.", issues: parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`) },
        400,
      );
    faults.add(parsed.data);
    // This very connection would be reused for the next request: close it once a drop is armed.
    const res = Response.json({ rules: faults.list() }, { status: 201 });
    return faults.dropArmed() ? withConnectionClose(res) : res;
  });
  app.delete("/__sandbox/faults", (c) => c.json({ cleared: faults.clear() }));
}

/** The answer with `Connection: close`, so the client opens a fresh connection for its next request. */
export function withConnectionClose(res: Response): Response {
  const headers = new Headers(res.headers);
  headers.set("connection", "close");
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/** The Retry-After of a failure: always on a 429 (1 s unless the rule says), on others when the rule gives one. */
export function retryAfterOf(fail: string, retryAfterSeconds: number | undefined): string | undefined {
  if (fail === "429") return String(retryAfterSeconds ?? 1);
  return retryAfterSeconds !== undefined ? String(retryAfterSeconds) : undefined;
}
