// The Uniconta connector factory (Denmark): customers, projects, invoices and credit notes through sales
// orders, posted project costs and payment status back. Sources: ../../../shared/reference/api-notes/uniconta.md.
import type { ConnectorFactory } from "../contract.ts";
import { type UnicontaConfig, unicontaConfigSchema } from "./config.ts";
import { UnicontaConnector } from "./connector.ts";
import { startDemoActivity } from "./demo.ts";
import { describePulled } from "./pull.ts";

// The sandbox's demo company and server user (sandbox/fixtures.json), for demoTarget().
const DEMO = { companyId: 12114, user: "kontobro", password: "demo-password" } as const;

export const uniconta: ConnectorFactory<UnicontaConfig> = {
  kind: "uniconta",
  title: "Uniconta",
  accountKeys: ["api_url", "company_id"],
  // Orders are found again by kontobro's marker in this field.
  lookupKeys: ["reference_field"],
  // Built when asked for (at the start, reading kontobro.toml), not kept: an idle agent holds no config schema (issue 16).
  get configSchema() {
    return unicontaConfigSchema();
  },
  create: (name, config, deps) => new UnicontaConnector(name, config, deps),
  // Moment's Uniconta integration: expenses several times a day, payments daily at 21:00 CET (KB-UC, KB-UC-PAY).
  pulls: {
    expenses: { title: "Posted project costs (expenses)", cron: "0 7,10,13,16,19 * * *", timezone: "Europe/Copenhagen" },
    payments: { title: "Invoice payment status", cron: "0 21 * * *", timezone: "Europe/Copenhagen" },
    invoices: { title: "Invoices posted from kontobro's orders (order only)", cron: "15 7-18 * * 1-5", timezone: "Europe/Copenhagen" },
  },
  describePulled,
  startDemoActivity,
  async startSandbox({ port }) {
    const { startUnicontaSandbox } = await import("./sandbox/index.ts");
    const s = startUnicontaSandbox({ port });
    return { url: s.url, demoTarget: demoTarget(s.url), stop: s.stop };
  },
  chaos: async () => (await import("./sandbox/chaos.ts")).chaos,
  calls: async () => (await import("./sandbox/calls.ts")).calls,
};

/**
 * The [[targets]] table of `kontobro demo --target uniconta` for a sandbox at `sandboxUrl` (started with
 * startUnicontaSandbox from ./sandbox/index.ts): posting through the sandbox's gateway, with the set-up
 * codes of its fixtures. The demo's sample customers carry no customer group, so they get ERHVERV.
 */
export function demoTarget(sandboxUrl: string): Record<string, unknown> {
  const url = sandboxUrl.replace(/\/+$/, "");
  return {
    name: "uniconta-demo",
    kind: "uniconta",
    api_url: url,
    gateway_url: `${url}/gateway`,
    posting: "gateway",
    company_id: DEMO.companyId,
    username: DEMO.user,
    password: DEMO.password,
    default_customer_group: "ERHVERV",
    credit_note_payment_terms: "NK0",
    accounts: { hours: "1000", expenses: "1020", products: "1010" },
    vat_codes: { hours: "U25", expenses: "U25", products: "U25" },
    categories: { hours: "TIMER", expenses: "UDLÆG", products: "VARER" },
    expenses: { activity: "Udlæg", number_series: "KOB" },
  };
}

export default uniconta;
