// Calls per record at the Uni Micro platform (README "Calls per record"), for scripts/calls-per-record.ts.
import type { CallsAdapter } from "../../sandbox.ts";

const two = { requests: 2, calls: 2 };

export const calls: CallsAdapter = {
  minimum: {
    customer: two,
    product: two,
    project: two,
    invoice: { requests: 5, calls: 5 },
    credit_note: { requests: 8, calls: 8 },
  },
  budget: null,
  noBudget: "no rate limit or daily quota is documented (api-notes/unimicro.md §13, open question Q6)",
};
