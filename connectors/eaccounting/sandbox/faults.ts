// Fault injection with the rule shape of the other kontobro sandboxes:
// POST /__sandbox/faults {method?, path? (regex), fault (or kind), count? | probability?, latencyMs?, retryAfterSeconds?}.
// Faults: latency, 500 (ErrorCode 5000), 5001 (a dependency timed out), 503, 429 (ErrorCode 4010 with "Try again
// in N seconds") and drop_after_commit (the request takes effect, the answer is lost: eAccounting has no
// idempotency key, so the client must look the record up before trying again).
import { z } from "zod";
import { envelope } from "./validate.ts";

const FAULTS = ["latency", "500", "5001", "503", "429", "drop_after_commit"] as const;

export const FaultRule = z.preprocess(
  (v: any) => (v && typeof v === "object" && v.fault === undefined && v.kind !== undefined ? { ...v, fault: v.kind, kind: undefined } : v),
  z.object({
    method: z
      .string()
      .transform((m) => m.toUpperCase())
      .optional(),
    /** Regex (case-insensitive) tested against the path and against path + query (decoded too). */
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
    fault: z.enum(FAULTS),
    count: z.number().int().positive().optional(),
    probability: z.number().min(0).max(1).optional(),
    latencyMs: z.number().int().min(0).max(120_000).optional(),
    retryAfterSeconds: z.number().int().min(0).optional(),
  }),
);
export type FaultRule = z.infer<typeof FaultRule>;

export const FaultRulesBody = z.union([
  z.object({ rules: z.array(FaultRule).min(1) }).transform((b) => b.rules),
  z.array(FaultRule).min(1),
  FaultRule.transform((r) => [r]),
]);

interface ActiveRule extends FaultRule {
  remaining: number;
  regex: RegExp;
}
export interface FaultDecision {
  latencyMs: number;
  fail?: "500" | "5001" | "503" | "429";
  retryAfterSeconds?: number;
  drop: boolean;
  fired: string[];
}

export class Faults {
  private rules: ActiveRule[] = [];
  readonly injected: Record<string, number> = {};
  /** Called when a drop is armed, so the server can close pooled keep-alive connections. */
  onDropArmed: () => void = () => {};

  constructor(private readonly random: () => number = Math.random) {}

  add(rules: FaultRule[]): void {
    for (const r of rules) {
      this.rules.push({ ...r, remaining: r.count ?? (r.probability === undefined ? 1 : Infinity), regex: new RegExp(r.path ?? "", "i") });
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

  /** Bun's fetch repeats a GET/PUT/DELETE once on a reset keep-alive connection; while a drop can fire, answers close theirs. */
  dropArmed(): boolean {
    return this.rules.some((r) => r.fault === "drop_after_commit" && r.remaining > 0);
  }

  decide(method: string, path: string, search: string): FaultDecision {
    const out: FaultDecision = { latencyMs: 0, drop: false, fired: [] };
    let decoded = path + search;
    try {
      decoded = decodeURIComponent((path + search).replace(/\+/g, " "));
    } catch {}
    const targets = [path, path + search, decoded];
    for (const r of this.rules) {
      if (r.fault !== "latency" && (out.fail || out.drop)) continue;
      if (r.method && r.method !== "*" && r.method !== method.toUpperCase()) continue;
      if (!targets.some((t) => r.regex.test(t))) continue;
      if (r.probability !== undefined && this.random() >= r.probability) continue;
      r.remaining--;
      this.injected[r.fault] = (this.injected[r.fault] ?? 0) + 1;
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

  async apply(d: FaultDecision, handle: () => Promise<Response>): Promise<Response> {
    if (d.latencyMs) await Bun.sleep(d.latencyMs);
    let res: Response;
    if (d.fail === "429") {
      const s = d.retryAfterSeconds ?? 1;
      res = Response.json(envelope(4010, `API calls quota exceeded! maximum admitted 600 per Minute. Try again in ${s} seconds.`), {
        status: 429,
      });
    } else if (d.fail === "500" || d.fail === "5001") {
      res = Response.json(
        envelope(d.fail === "500" ? 5000 : 5001, d.fail === "500" ? "An internal server error occurred." : "A dependency timed out."),
        { status: 500 },
      );
    } else if (d.fail === "503") {
      res = new Response("Service Unavailable", {
        status: 503,
        headers: d.retryAfterSeconds !== undefined ? { "retry-after": String(d.retryAfterSeconds) } : {},
      });
    } else if (d.drop) {
      await (await handle()).arrayBuffer(); // the effect is committed
      return new Response(
        new ReadableStream({
          pull(c) {
            c.error();
          },
        }),
        { status: 200, headers: { connection: "close" } },
      );
    } else {
      res = await handle();
    }
    return this.dropArmed() ? withConnectionClose(res) : res;
  }
}

export function withConnectionClose(res: Response): Response {
  const headers = new Headers(res.headers);
  headers.set("connection", "close");
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}

/**
 * eAccounting's limit: 600 requests a minute per client and endpoint (eaccounting.md §4), a sliding minute;
 * "as soon as the count drops below the limit, responses are normal again".
 */
export class RateLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    public perMinute: number,
    private readonly now: () => number,
  ) {}

  /** Seconds to wait, or 0 when the request may pass (it is then counted). */
  take(client: string, endpoint: string): number {
    const key = `${client} ${endpoint}`;
    const t = this.now();
    const list = (this.hits.get(key) ?? []).filter((x) => x > t - 60_000);
    if (list.length >= this.perMinute) {
      this.hits.set(key, list);
      return Math.max(1, Math.ceil((list[0]! + 60_000 - t) / 1000));
    }
    list.push(t);
    this.hits.set(key, list);
    return 0;
  }

  clear(): void {
    this.hits.clear();
  }
}
