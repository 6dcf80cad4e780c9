// Fault injection, with the rule shape of the other kontobro sandboxes:
// POST /__sandbox/faults {method?, path? (regex), fault (or kind), count? | probability?, latencyMs?, retryAfterSeconds?}.
// Besides latency, 5xx, 429 and dropped answers: `empty_companies`, the flaky login of uniconta.md §2/§11
// (the company list comes back empty, as GetCompanies() "seems to occasionally return null").
import { z } from "zod";

const FAULTS = ["latency", "500", "503", "429", "drop_after_commit", "empty_companies"] as const;

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
  /** Faults injected since the last reset, by kind. */
  readonly injected: Record<string, number> = {};
  /** Called when a drop is armed, so the server can close pooled keep-alive connections (see dropArmed). */
  onDropArmed: () => void = () => {};

  constructor(private readonly random: () => number = Math.random) {}

  add(rules: FaultRule[]): void {
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

  private take(r: ActiveRule): void {
    r.remaining--;
    r.fired++;
    this.injected[r.fault] = (this.injected[r.fault] ?? 0) + 1;
  }

  private applies(r: ActiveRule, method: string, targets: string[]): boolean {
    if (r.method && r.method !== "*" && r.method !== method.toUpperCase()) return false;
    if (!targets.some((t) => r.regex.test(t))) return false;
    return r.probability === undefined || this.random() < r.probability;
  }

  /** Whether the company list answers empty this time (a flaky login). */
  emptyCompanies(method: string, path: string): boolean {
    const r = this.rules.find((x) => x.fault === "empty_companies" && x.remaining > 0 && this.applies(x, method, [path]));
    if (!r) return false;
    this.take(r);
    this.rules = this.rules.filter((x) => x.remaining > 0);
    return true;
  }

  /** Latency adds up; at most one failure or drop per request. Spent rules are removed. */
  decide(method: string, path: string, search: string): FaultDecision {
    const out: FaultDecision = { latencyMs: 0, drop: false, fired: [] };
    let decoded = path + search;
    try {
      decoded = decodeURIComponent((path + search).replace(/\+/g, " "));
    } catch {}
    const targets = [path, path + search, decoded];
    for (const r of this.rules) {
      if (r.fault === "empty_companies") continue;
      if (r.fault !== "latency" && (out.fail || out.drop)) continue;
      if (!this.applies(r, method, targets)) continue;
      this.take(r);
      out.fired.push(r.fault);
      if (r.fault === "latency") out.latencyMs += r.latencyMs ?? 1000;
      else if (r.fault === "drop_after_commit") out.drop = true;
      else {
        out.fail = r.fault as "500" | "503" | "429";
        out.retryAfterSeconds = r.retryAfterSeconds;
      }
    }
    this.rules = this.rules.filter((r) => r.remaining > 0);
    return out;
  }

  /** Runs `handle` under the decision. A drop performs the request, then breaks the answer. */
  async apply(d: FaultDecision, handle: () => Promise<Response>): Promise<Response> {
    if (d.latencyMs) await Bun.sleep(d.latencyMs);
    let res: Response;
    if (d.fail) {
      const retryAfter =
        d.fail === "429" ? String(d.retryAfterSeconds ?? 1) : d.retryAfterSeconds !== undefined ? String(d.retryAfterSeconds) : undefined;
      res = new Response(
        JSON.stringify(d.fail === "500" ? "Exception" : d.fail === "503" ? "The service is unavailable." : "Too many requests."),
        {
          status: Number(d.fail),
          headers: { "content-type": "application/json; charset=utf-8", ...(retryAfter ? { "retry-after": retryAfter } : {}) },
        },
      );
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
