// The e-conomic connector factory.
import type { ConnectorFactory } from "../contract.ts";
import { EconomicConfig } from "./config.ts";
import { EconomicConnector } from "./connector.ts";
import { economicWebhookStreams } from "./pull-map.ts";

export const economic: ConnectorFactory<EconomicConfig> = {
  kind: "economic",
  title: "Visma e-conomic",
  configSchema: EconomicConfig,
  create: (name, config, deps) => new EconomicConnector(name, config, deps),
  // Moment's e-conomic integration: expenses once a day, payment status daily at 23:00 CET.
  pulls: {
    expenses: { title: "Posted supplier expenses", cron: "0 6 * * *", timezone: "Europe/Copenhagen" },
    payments: { title: "Invoice payment status", cron: "0 23 * * *", timezone: "Europe/Copenhagen" },
  },
  webhookStreams: economicWebhookStreams,
};
