// The e-conomic connector factory.
import type { ConnectorFactory } from "../contract.ts";
import { EconomicConfig } from "./config.ts";
import { EconomicConnector } from "./connector.ts";

export const economic: ConnectorFactory<EconomicConfig> = {
  kind: "economic",
  title: "Visma e-conomic",
  configSchema: EconomicConfig,
  create: (name, config, deps) => new EconomicConnector(name, config, deps),
};
