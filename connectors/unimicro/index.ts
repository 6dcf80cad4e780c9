// The Uni Micro platform connector factory: Uni Economy, DnB Regnskap and SpareBank 1 Regnskap are one
// platform with white-label front ends; only the hosts differ (see ../../../shared/reference/api-notes/unimicro.md §1).
import type { ConnectorFactory } from "../contract.ts";
import { settingsFrom, type UniMicroConfig, uniMicroConfigSchema } from "./config.ts";
import { UniMicroConnector } from "./connector.ts";

// The sandbox's demo server client and company (sandbox/index.ts DEMO_CLIENT_ID, DEMO_COMPANY), for demoTarget().
const DEMO = { clientId: "kontobro-demo", companyKey: "910c715b-0000-4000-8000-000000000000" } as const;

export const unimicroFactory: ConnectorFactory<UniMicroConfig> = {
  kind: "unimicro",
  title: "Uni Micro (Uni Economy, DnB Regnskap, SpareBank 1 Regnskap)",
  accountKeys: ["platform", "base_url", "company_key"],
  // Built when asked for (at the start, reading kontobro.toml), not kept: an idle agent holds no config schema (issue 16).
  get configSchema() {
    return uniMicroConfigSchema();
  },
  create: (name, config, deps) => new UniMicroConnector(name, settingsFrom(config), deps),
  // The same names as the other connectors for the same ideas.
  renamedKeys: { timeout_ms: "request_timeout_ms", rate_per_second: "requests_per_second" },
  async startSandbox({ port }) {
    const { startUniMicroSandbox } = await import("./sandbox/index.ts");
    const s = startUniMicroSandbox({ port });
    return {
      url: s.url,
      demoTarget: demoTarget(s.url, s.sandbox.demo!.privateKeyPem),
      stop: async () => {
        s.stop();
      },
    };
  },
  chaos: async () => (await import("./sandbox/chaos.ts")).chaos,
  calls: async () => (await import("./sandbox/calls.ts")).calls,
};

/**
 * The [[targets]] table of `kontobro demo --target unimicro` for a sandbox at `sandboxUrl`: its demo server
 * client (signing with `privateKey`, PEM text the sandbox made) and company, with the set-up of its fixtures.
 */
export function demoTarget(sandboxUrl: string, privateKey: string): Record<string, unknown> {
  const url = sandboxUrl.replace(/\/+$/, "");
  return {
    name: "unimicro-demo",
    kind: "unimicro",
    platform: "custom",
    base_url: url,
    identity_url: `${url}/connect/token`,
    client_id: DEMO.clientId,
    private_key: privateKey,
    company_key: DEMO.companyKey,
    accounts: { hours: 3000, expenses: 3400, products: 3000 },
    vat_codes: { hours: "3", expenses: "3", products: "3" },
    product_numbers: { hours: "1", expenses: "2", products: "3" },
  };
}

export default unimicroFactory;
