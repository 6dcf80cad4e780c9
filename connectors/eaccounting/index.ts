// The Visma eAccounting connector factory (eEkonomi, eRegnskap, "Spiris"): customers and articles with a master
// per entity, projects as cost-centre items, invoices as drafts that eAccounting numbers, invoice status and
// number back, supplier costs to the PSA's projects. Sources: ../../../shared/reference/api-notes/eaccounting.md.
// The factory starts the sandbox (./sandbox/index.ts) for `kontobro sandbox eaccounting` and `kontobro demo --target
// eaccounting`; startDemoActivity (./demo.ts: a person working in eAccounting during the demo) is started by the demo.
import type { ConnectorFactory, CredentialStore, OAuthFlow } from "../contract.ts";
import { OAuthTokens } from "./auth.ts";
import { authorizeUrl, EaccountingConfig, eaccountingConfigSchema, REQUIRED_SCOPES, tokenUrl } from "./config.ts";
import { EaccountingConnector } from "./connector.ts";
import { startDemoActivity } from "./demo.ts";

const TZ = "Europe/Stockholm";

/** `kontobro connect`: the authorization code flow with the scopes of kontobro.toml (eaccounting.md §2). */
export const eaccountingOAuth: OAuthFlow<EaccountingConfig> = {
  redirectUri: (cfg) => cfg.redirect_uri,
  authorizationUrl(cfg, state) {
    const q = new URLSearchParams({
      client_id: cfg.client_id,
      redirect_uri: cfg.redirect_uri,
      response_type: "code",
      scope: cfg.scopes,
      state,
    });
    return `${authorizeUrl(cfg)}?${q}`;
  },
  async exchange(cfg, code, store: CredentialStore) {
    const tokens = new OAuthTokens({
      target: "connect",
      tokenUrl: tokenUrl(cfg),
      clientId: cfg.client_id,
      clientSecret: cfg.client_secret,
      clientAuth: cfg.token_auth,
      store,
      timeoutMs: cfg.request_timeout_ms,
    });
    const scope = await tokens.exchangeCode(code, cfg.redirect_uri);
    const granted = scope.split(/\s+/).filter(Boolean);
    const wanted = [...new Set([...REQUIRED_SCOPES, ...cfg.scopes.split(/\s+/).filter(Boolean)])];
    return { scope, missing: wanted.filter((s) => !granted.includes(s)) };
  },
};

export const eaccounting: ConnectorFactory<EaccountingConfig> = {
  kind: "eaccounting",
  title: "Visma eAccounting",
  // The company is the one whoever signs in (kontobro connect) picks: not in the settings; the API host is.
  accountKeys: ["api_url"],
  // Drafts and invoices are found again by kontobro's marker in this field.
  lookupKeys: ["reference_field"],
  // Built when asked for (at the start, reading kontobro.toml), not kept: an idle agent holds no config schema (issue 16).
  get configSchema() {
    return eaccountingConfigSchema();
  },
  create: (name, config, deps) => new EaccountingConnector(name, config, deps),
  masterEntities: ["customer", "product"],
  oauth: eaccountingOAuth,
  pulls: {
    customers: { title: "Customers created or changed in eAccounting (master data)", cron: "*/15 * * * *", timezone: TZ },
    products: { title: "Articles created or changed in eAccounting (master data)", cron: "*/15 * * * *", timezone: TZ },
    invoices: { title: "Invoices sent and paid in eAccounting (number and status)", cron: "*/15 6-21 * * *", timezone: TZ },
    expenses: { title: "Supplier invoice rows on projects (expenses)", cron: "0 7,12,17 * * *", timezone: TZ },
  },
  describePulled,
  startDemoActivity,
  async startSandbox({ port }) {
    const { startEaccountingSandbox } = await import("./sandbox/index.ts");
    const s = startEaccountingSandbox({ port });
    return { url: s.url, demoTarget: demoTarget(s.url), stop: s.stop };
  },
  chaos: async () => (await import("./sandbox/chaos.ts")).chaos,
  calls: async () => (await import("./sandbox/calls.ts")).calls,
};

/** One line about a pulled item for the status page's inbox. */
export function describePulled(type: string, d: Record<string, any>): string {
  const money = typeof d.amount === "number" ? `${(d.amount / 100).toFixed(2)} ${d.currency ?? ""}` : "";
  if (type === "customer.upserted")
    return `customer ${d.number ?? "?"} · ${d.name ?? ""}${d.addresses?.[0]?.city ? ` · ${d.addresses[0].city}` : ""}`;
  if (type === "product.upserted")
    return `article ${d.code ?? "?"} · ${d.name ?? ""}${typeof d.price === "number" ? ` · ${(d.price / 100).toFixed(2)}` : ""}`;
  if (type.startsWith("expense")) return `project ${d.projectNumber ?? "?"} · ${money} · ${d.description ?? ""}`;
  return `invoice ${d.invoiceNumber ?? "?"} · eAccounting's number ${d.eaccountingInvoiceNumber ?? "?"} · ${d.previousStatus ?? "?"} → ${d.status ?? "?"}${money ? ` · ${money}` : ""}`;
}

/**
 * The [[targets]] table of `kontobro demo --target eaccounting` for a sandbox at `sandboxUrl` (started with
 * startEaccountingSandbox from ./sandbox/index.ts): the sandbox's demo grant instead of a browser, its demo
 * article for lines without a product, and pulls every minute so both directions show at once.
 */
export function demoTarget(sandboxUrl: string): Record<string, unknown> {
  const url = sandboxUrl.replace(/\/+$/, "");
  const everyMinute = { cron: "* * * * *", timezone: TZ };
  return {
    name: "eaccounting-demo",
    kind: "eaccounting",
    api_url: `${url}/v2`,
    identity_url: `${url}/connect`,
    client_id: "kontobro-sandbox",
    client_secret: "sandbox-secret",
    refresh_token: "demo-refresh-token",
    redirect_uri: "http://localhost:8790/callback",
    default_article: "100",
    requests_per_second: 0,
    pulls: { customers: everyMinute, products: everyMinute, invoices: everyMinute, expenses: everyMinute },
  };
}

export { EaccountingConfig, startDemoActivity };
export default eaccounting;
