// The e-conomic connector factory.
import type { ConnectorFactory } from "../contract.ts";
import { type EconomicConfig, economicConfigSchema } from "./config.ts";
import { EconomicConnector } from "./connector.ts";
import { startDemoActivity } from "./demo.ts";
import { describePulled } from "./pull.ts";
import { economicWebhookStreams } from "./pull-map.ts";

// The sandbox's tokens (sandbox/index.ts DEFAULT_APP_SECRET_TOKEN, DEFAULT_AGREEMENT_GRANT_TOKEN), for demoTarget().
const DEMO = { appSecretToken: "demo-app-secret", agreementGrantToken: "demo-agreement-grant" } as const;

export const economic: ConnectorFactory<EconomicConfig> = {
  kind: "economic",
  title: "Visma e-conomic",
  // The agreement is the customer's grant token's (another grant token: most likely another agreement).
  accountKeys: ["rest_url", "agreement_grant_token"],
  // Built when asked for (at the start, reading kontobro.toml), not kept: an idle agent holds no config schema (issue 16).
  get configSchema() {
    return economicConfigSchema();
  },
  create: (name, config, deps) => new EconomicConnector(name, config, deps),
  // Moment's e-conomic integration: expenses once a day, payment status daily at 23:00 CET.
  pulls: {
    expenses: { title: "Posted supplier expenses", cron: "0 6 * * *", timezone: "Europe/Copenhagen" },
    payments: { title: "Invoice payment status", cron: "0 23 * * *", timezone: "Europe/Copenhagen" },
  },
  webhookStreams: economicWebhookStreams,
  // e-conomic's webhook URL templates, with its merge fields (README: Webhooks).
  webhookTemplates: ["?type=invoice&invoice=[INVOICENO]", "?type=daybook&daybook=[DAYBOOKNO]&from=[FROMSERIALNO]&to=[TOSERIALNO]"],
  describePulled,
  startDemoActivity,
  async startSandbox({ port }) {
    const { startEconomicSandbox } = await import("./sandbox/index.ts");
    const s = await startEconomicSandbox({ port });
    return { url: s.url, demoTarget: demoTarget(s.url), stop: s.stop };
  },
  chaos: async () => (await import("./sandbox/chaos.ts")).chaos,
  bench: async () => (await import("./sandbox/bench.ts")).bench,
  calls: async () => (await import("./sandbox/calls.ts")).calls,
};

/** The [[targets]] table of `kontobro demo --target economic` for a sandbox at `sandboxUrl` (its demo tokens). */
export function demoTarget(sandboxUrl: string): Record<string, unknown> {
  const url = sandboxUrl.replace(/\/+$/, "");
  return {
    name: "economic-demo",
    kind: "economic",
    rest_url: url,
    projects_url: `${url}/projectsapi/v1.1.0`,
    app_secret_token: DEMO.appSecretToken,
    agreement_grant_token: DEMO.agreementGrantToken,
  };
}
