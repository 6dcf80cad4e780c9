// Calls per record at Uniconta (README "Calls per record"), for scripts/calls-per-record.ts. Its quota counts
// server calls: a posting through the gateway costs several (sandbox/index.ts, gatewayPostCalls).
import type { CallsAdapter } from "../../sandbox.ts";

const two = { requests: 2, calls: 2 };

export const calls: CallsAdapter = {
  minimum: {
    customer: two,
    project: two,
    invoice: { requests: 7, calls: 9 },
    credit_note: { requests: 7, calls: 9 },
  },
  budget: {
    calls: 5_000,
    scope: "per server user (the standard packages; up to 75,000 can be bought)",
    source: "api-notes/uniconta.md §10: Uniconta's add-on article, 5,000 server calls per user per day",
    verified: true,
  },
};
