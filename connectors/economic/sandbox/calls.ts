// Calls per record at e-conomic (README "Calls per record"), for scripts/calls-per-record.ts.
import type { CallsAdapter } from "../../sandbox.ts";

const one = { requests: 1, calls: 1 };

export const calls: CallsAdapter = {
  minimum: {
    customer: one,
    product: one,
    project: one,
    invoice: { requests: 3, calls: 3 },
    credit_note: { requests: 3, calls: 3 },
  },
  budget: {
    calls: 50_000,
    scope: "per agreement (fair use)",
    source: "api-notes/economic.md §4.5: e-conomic's fair use policy, 50,000 API calls per 24 hours per agreement",
    verified: true,
  },
};
