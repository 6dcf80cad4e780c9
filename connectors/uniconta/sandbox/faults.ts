// Fault injection for the sandbox (connectors/sandbox-faults.ts). Besides latency, 5xx, 429 and dropped answers:
// `empty_companies`, the flaky login of uniconta.md §2/§11 (the company list comes back empty, as GetCompanies()
// "seems to occasionally return null"); the sandbox asks for it where the company list is read.
import { COMMON_FAULTS, type FaultDecision, Faults, faultSchemas, retryAfterOf } from "../../sandbox-faults.ts";

const FAULTS = [...COMMON_FAULTS, "empty_companies"] as const;
export type FaultKind = (typeof FAULTS)[number];
export const { rule: FaultRule, body: FaultRulesBody } = faultSchemas(FAULTS);
export type { FaultDecision };
export type UnicontaFaults = Faults<FaultKind>;
export { withConnectionClose } from "../../sandbox-faults.ts";

function failAnswer(fail: FaultKind, retryAfterSeconds: number | undefined): Response {
  const retryAfter = retryAfterOf(fail, retryAfterSeconds);
  return new Response(
    JSON.stringify(fail === "500" ? "Exception" : fail === "503" ? "The service is unavailable." : "Too many requests."),
    {
      status: Number(fail),
      headers: { "content-type": "application/json; charset=utf-8", ...(retryAfter ? { "retry-after": retryAfter } : {}) },
    },
  );
}

export function newFaults(random?: () => number): UnicontaFaults {
  return new Faults<FaultKind>(failAnswer, { random, aside: ["empty_companies"] });
}
