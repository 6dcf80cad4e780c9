// The Uni Micro platform connector factory: Uni Economy, DnB Regnskap and SpareBank 1 Regnskap are one
// platform with white-label front ends; only the hosts differ (see ../../../shared/reference/api-notes/unimicro.md §1).
import type { ConnectorFactory } from "../contract.ts";
import { settingsFrom, UniMicroConfig } from "./config.ts";
import { UniMicroConnector } from "./connector.ts";

export const unimicroFactory: ConnectorFactory<UniMicroConfig> = {
  kind: "unimicro",
  title: "Uni Micro (Uni Economy, DnB Regnskap, SpareBank 1 Regnskap)",
  configSchema: UniMicroConfig,
  create: (name, config, deps) => new UniMicroConnector(name, settingsFrom(config), deps),
  // The same names as the other connectors for the same ideas.
  renamedKeys: { timeout_ms: "request_timeout_ms", rate_per_second: "requests_per_second" },
};

export default unimicroFactory;
