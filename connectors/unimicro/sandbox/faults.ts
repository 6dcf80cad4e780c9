// Fault injection for the sandbox, same rule shape and semantics as the other kontobro sandboxes:
// POST /__sandbox/faults {method?, path? (regex), fault, count? | probability?, latencyMs?, retryAfterSeconds?}.
import { z } from "zod";

const FAULTS = ["latency", "500", "503", "429", "drop_after_commit"] as const;

export const FaultRule = z.preprocess(
  // `kind` is accepted as another name for `fault` (the e-conomic sandbox's spelling).
  (v: any) => (v && typeof v === "object" && v.fault === undefined && v.kind !== undefined ? { ...v, fault: v.kind, kind: undefined } : v),
  z.object({
    /** HTTP method; omitted or "*" for any. */
    method: z
      .string()
      .transform((m) => m.toUpperCase())
      .optional(),
    /** Regex (case-insensitive) tested against the path and against path + query (so `action=invoice` can be targeted). */
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
    /** Fire this many times. Neither count nor probability: once. */
    count: z.number().int().positive().optional(),
    probability: z.number().min(0).max(1).optional(),
    latencyMs: z.number().int().min(0).max(120_000).optional(),
    retryAfterSeconds: z.number().int().min(0).optional(),
  }),
);
export type FaultRule = z.infer<typeof FaultRule>;

/** Body of POST /__sandbox/faults: {rules: [...]}, a list, or one rule. */
export const FaultRulesBody = z.union([
  z.object({ rules: z.array(FaultRule).min(1) }).transform((b) => b.rules),
  z.array(FaultRule).min(1),
  FaultRule.transform((r) => [r]),
]);

interface ActiveRule extends FaultRule {
  remaining: number;
  fired: number;
  regex: RegExp;
}
export interface FaultDecision {
  latencyMs: number;
  fail?: "500" | "503" | "429";
  retryAfterSeconds?: number;
  drop: boolean;
  fired: string[];
}

export class Faults {
  private rules: ActiveRule[] = [];

  add(rules: FaultRule[]): void {
    for (const r of rules)
      this.rules.push({
        ...r,
        remaining: r.count ?? (r.probability === undefined ? 1 : Infinity),
        fired: 0,
        regex: new RegExp(r.path ?? "", "i"),
      });
  }

  clear(): number {
    const n = this.rules.length;
    this.rules = [];
    return n;
  }

  list() {
    return this.rules.map(({ regex: _r, remaining, ...r }) => ({ ...r, remaining: Number.isFinite(remaining) ? remaining : null }));
  }

  /**
   * Bun's fetch silently repeats a GET/PUT/DELETE once when a reused keep-alive connection is reset, which
   * would hide a drop behind a replay. While a drop can still fire, answers close their connection.
   */
  dropArmed(): boolean {
    return this.rules.some((r) => r.fault === "drop_after_commit" && r.remaining > 0);
  }

  /** Latency adds up; at most one failure or drop per request. Spent rules are removed. */
  decide(method: string, path: string, search: string): FaultDecision {
    const out: FaultDecision = { latencyMs: 0, drop: false, fired: [] };
    const target = [path, path + search, decodeURIComponent(path + search)];
    for (const r of this.rules) {
      if (r.method && r.method !== "*" && r.method !== method.toUpperCase()) continue;
      if (!target.some((t) => r.regex.test(t))) continue;
      if (r.fault !== "latency" && (out.fail || out.drop)) continue;
      if (r.probability !== undefined && Math.random() >= r.probability) continue;
      r.remaining--;
      r.fired++;
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
  async apply(d: FaultDecision, handle: () => Promise<Response>): Promise<Response> {
    if (d.latencyMs) await Bun.sleep(d.latencyMs);
    let res: Response;
    if (d.fail) {
      const retryAfter =
        d.fail === "429" ? String(d.retryAfterSeconds ?? 1) : d.retryAfterSeconds !== undefined ? String(d.retryAfterSeconds) : undefined;
      const message = d.fail === "429" ? "Too many requests." : d.fail === "503" ? "The service is unavailable." : "An error has occurred.";
      res = new Response(JSON.stringify({ Message: message }), {
        status: Number(d.fail),
        headers: { "content-type": "application/json; charset=utf-8", ...(retryAfter ? { "retry-after": retryAfter } : {}) },
      });
    } else if (d.drop) {
      await (await handle()).arrayBuffer(); // the effect is committed
      return new Response(
        new ReadableStream({
          pull(c) {
            c.error();
          },
        }),
        { status: 200 },
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
