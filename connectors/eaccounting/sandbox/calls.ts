// Calls per record at eAccounting (README "Calls per record"), for scripts/calls-per-record.ts.
import type { CallsAdapter } from "../../sandbox.ts";

const one = { requests: 1, calls: 1 };
const two = { requests: 2, calls: 2 };
const four = { requests: 4, calls: 4 };

export const calls: CallsAdapter = {
  // Credit notes become credit invoice drafts (by default they need action and nothing is sent).
  target: { credit_notes: "draft" },
  minimum: { customer: two, product: two, project: one, invoice: four, credit_note: four },
  budget: {
    calls: 600 * 60 * 24,
    scope: "per client and endpoint (600 a minute, around the clock)",
    perEndpoint: true,
    source: "api-notes/eaccounting.md §4: 600 requests a minute per client and endpoint; no daily quota is documented",
    verified: false,
  },
};
