// Fault injection for the sandbox (connectors/sandbox-faults.ts): latency, 500 (ErrorCode 5000), 5001 (a dependency
// timed out), 503, 429 (ErrorCode 4010 with "Try again in N seconds") and drop_after_commit (the request takes effect,
// the answer is lost: eAccounting has no idempotency key, so the client must look the record up before trying again).
import { COMMON_FAULTS, type FaultDecision, Faults, faultSchemas } from "../../sandbox-faults.ts";
import { envelope } from "./validate.ts";

const FAULTS = [...COMMON_FAULTS, "5001"] as const;
export type FaultKind = (typeof FAULTS)[number];
export const { rule: FaultRule, body: FaultRulesBody } = faultSchemas(FAULTS);
export type { FaultDecision };
export type EAccountingFaults = Faults<FaultKind>;
export { withConnectionClose } from "../../sandbox-faults.ts";

function failAnswer(fail: FaultKind, retryAfterSeconds: number | undefined): Response {
  if (fail === "429") {
    const s = retryAfterSeconds ?? 1;
    return Response.json(envelope(4010, `API calls quota exceeded! maximum admitted 600 per Minute. Try again in ${s} seconds.`), {
      status: 429,
    });
  }
  if (fail === "503")
    return new Response("Service Unavailable", {
      status: 503,
      headers: retryAfterSeconds !== undefined ? { "retry-after": String(retryAfterSeconds) } : {},
    });
  return Response.json(
    envelope(fail === "5001" ? 5001 : 5000, fail === "5001" ? "A dependency timed out." : "An internal server error occurred."),
    {
      status: 500,
    },
  );
}

export function newFaults(random?: () => number): EAccountingFaults {
  return new Faults<FaultKind>(failAnswer, { random });
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
