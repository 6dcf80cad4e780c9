// Fault injection for the sandbox (connectors/sandbox-faults.ts): latency, 500, 503, 429 and drop_after_commit,
// failures answered in Uni Micro's error shape ({Message}).
import { COMMON_FAULTS, type FaultDecision, Faults, faultSchemas, retryAfterOf } from "../../sandbox-faults.ts";

export type FaultKind = (typeof COMMON_FAULTS)[number];
export const { rule: FaultRule, body: FaultRulesBody } = faultSchemas(COMMON_FAULTS);
export type { FaultDecision };
export { withConnectionClose } from "../../sandbox-faults.ts";

function failAnswer(fail: FaultKind, retryAfterSeconds: number | undefined): Response {
  const retryAfter = retryAfterOf(fail, retryAfterSeconds);
  const message = fail === "429" ? "Too many requests." : fail === "503" ? "The service is unavailable." : "An error has occurred.";
  return new Response(JSON.stringify({ Message: message }), {
    status: Number(fail),
    headers: { "content-type": "application/json; charset=utf-8", ...(retryAfter ? { "retry-after": retryAfter } : {}) },
  });
}

export function newFaults(random?: () => number): Faults<FaultKind> {
  return new Faults<FaultKind>(failAnswer, { random });
}
