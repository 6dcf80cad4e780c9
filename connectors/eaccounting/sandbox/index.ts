// A faithful test double of Visma eAccounting's API v2 and of the Visma Online identity server it uses: the
// authorization code flow with rotating refresh tokens, the v2 routes kontobro uses, the error envelope and its
// codes, the 50-character limits and required fields, cost centres and items, articles with their coding, drafts
// that become numbered invoices when sent (through the API's convert or the control route), payments, supplier
// invoices with project rows, Meta/Data pagination with modified-since filters on a controllable clock, the limit
// of 600 requests a minute per client and endpoint, and fault injection.
// Follows ../../../../shared/reference/api-notes/eaccounting.md; its unverified points are options.
// Run standalone: `bun connectors/eaccounting/sandbox/index.ts` prints a kontobro.toml snippet.
import { Hono } from "hono";
import { registerRequestCounts, RequestCounts } from "../../sandbox.ts";
import { apiRoutes, type ApiState } from "./api.ts";
import { registerControl } from "./control.ts";
import { newFaults, RateLimiter, withConnectionClose } from "./faults.ts";
import fixtures from "./fixtures.json";
import { CURRENCY_RATES, Invoicing, type InvoicingOptions } from "./invoicing.ts";
import { IdentityServer, SCOPES, type OAuthOptions } from "./oauth.ts";
import type { QueryOptions } from "./query.ts";
import { CompanyStore, type StoreOptions } from "./store.ts";
import { EaError, envelope } from "./validate.ts";

export const DEMO = {
  clientId: fixtures.clients[0]!.clientId,
  clientSecret: fixtures.clients[0]!.clientSecret,
  /** A refresh token the sandbox accepts from the start (the demo and tests use it instead of a browser). */
  refreshToken: fixtures.demoRefreshToken,
  scope: "ea:api offline_access ea:sales ea:accounting ea:purchase",
} as const;

export interface EaccountingSandboxOptions extends Partial<StoreOptions>, Partial<InvoicingOptions> {
  oauth?: Partial<OAuthOptions>;
  query?: Partial<QueryOptions>;
  rateLimitPerMinute?: number;
  retryAfterHeader?: boolean;
  /** Register DEMO.refreshToken at start (default true). */
  demoGrant?: boolean;
  random?: () => number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  fault?: string;
}

export function createEaccountingSandbox(opts: EaccountingSandboxOptions = {}) {
  const clock = { offsetMs: 0 };
  const now = () => Date.now() + clock.offsetMs;
  const storeOptions: StoreOptions = {
    duplicateCustomerNumber: opts.duplicateCustomerNumber ?? "conflict",
    vatNumberCheck: opts.vatNumberCheck ?? true,
    lengthUnit: opts.lengthUnit ?? "utf16",
  };
  let store = new CompanyStore(storeOptions, now);
  const invoicingOptions: InvoicingOptions = {
    creditDrafts: opts.creditDrafts ?? true,
    currencyRates: { ...CURRENCY_RATES, ...opts.currencyRates },
  };
  let invoicing = new Invoicing(store, invoicingOptions, fixtures.nextInvoiceNumber);
  const oauthOptions: OAuthOptions = { accessTokenSeconds: 3600, refreshTokenSeconds: 0, grantable: [...SCOPES], ...opts.oauth };
  let identity = new IdentityServer(fixtures.clients, oauthOptions, now);
  const grantDemo = () => {
    if (opts.demoGrant !== false) identity.grant(DEMO.clientId, DEMO.scope.split(" "), DEMO.refreshToken);
  };
  grantDemo();
  const faults = newFaults(opts.random);
  const limiter = new RateLimiter(opts.rateLimitPerMinute ?? 600, now);
  const api: ApiState = {
    store: () => store,
    invoicing: () => invoicing,
    get identity() {
      return identity;
    },
    limiter,
    query: { filter: true, dateLiterals: "any", maxPageSize: 1000, defaultPageSize: 50, order: "stored", ...opts.query },
    retryAfterHeader: opts.retryAfterHeader ?? false,
    onboarding: { code: null },
    readonlyUser: { on: false },
  };
  let requests: RequestLogEntry[] = [];
  // The rate limit counts requests (per client and endpoint): one request, one call.
  const counts = new RequestCounts();

  const app = new Hono();
  app.onError((e, c) => {
    if (e instanceof EaError) return c.json(envelope(e.code, e.message), e.status as 400);
    return c.json(envelope(5000, `InternalServerError: ${(e as Error).message}`), 500);
  });
  app.get("/connect/authorize", (c) => {
    const r = identity.authorize(c.req.query());
    return "redirect" in r ? c.redirect(r.redirect, 302) : c.json(r.body, r.status as 400);
  });
  app.post("/connect/token", async (c) => {
    const form = Object.fromEntries(new URLSearchParams(await c.req.text()));
    const r = identity.token(form, c.req.header("authorization") ?? null);
    return c.json(r.body, r.status as 400, { "cache-control": "no-store" });
  });
  app.route("/v2", apiRoutes(api));
  app.notFound((c) => c.json(envelope(3000, `ResourceNotFound: No route ${c.req.method} ${new URL(c.req.url).pathname}.`), 404));

  function state() {
    return {
      now: store.nowIso(),
      oauth: identity.state(),
      requests,
      faults: faults.list(),
      faultsInjected: { ...faults.injected },
      settings: {
        onboarding: api.onboarding.code,
        readonly: api.readonlyUser.on,
        rateLimitPerMinute: limiter.perMinute,
        lockedBefore: invoicing.lockedBefore,
        nextInvoiceNumber: invoicing.nextInvoiceNumber,
        priceList: Object.fromEntries(invoicing.priceList),
      },
      customers: [...store.customers.values()],
      articles: [...store.articles.values()],
      costCenters: store.costCenters,
      projects: [...store.projects.values()],
      drafts: [...invoicing.drafts.values()],
      invoices: [...invoicing.invoices.values()].map((i) => invoicing.read(i)),
      supplierInvoices: [...invoicing.supplierInvoices.values()],
    };
  }
  const reset = () => {
    store = new CompanyStore(storeOptions, now);
    invoicing = new Invoicing(store, invoicingOptions, fixtures.nextInvoiceNumber);
    identity = new IdentityServer(fixtures.clients, { ...oauthOptions }, now);
    grantDemo();
    faults.clear();
    faults.resetCounts();
    limiter.clear();
    requests = [];
    counts.clear();
    clock.offsetMs = 0;
    api.onboarding.code = null;
    api.readonlyUser.on = false;
  };

  const outer = new Hono();
  registerRequestCounts(outer, counts);
  registerControl(outer, {
    faults,
    get identity() {
      return identity;
    },
    api,
    store: () => store,
    invoicing: () => invoicing,
    clientId: DEMO.clientId,
    clock,
    state,
    reset,
  });
  outer.all("*", async (c) => {
    const req = c.req.raw;
    const url = new URL(req.url);
    const decision = faults.decide(req.method, url.pathname, url.search);
    const res = await faults.apply(decision, async () => app.fetch(req));
    counts.add(req.method, url.pathname + url.search);
    let path = url.pathname + url.search;
    try {
      path = decodeURIComponent(path.replace(/\+/g, " "));
    } catch {}
    requests.push({ method: req.method, path, status: res.status, ...(decision.fired.length ? { fault: decision.fired.join(",") } : {}) });
    return res;
  });

  return {
    fetch: (req: Request) => outer.fetch(req),
    faults,
    state,
    get identity() {
      return identity;
    },
    store: () => store,
    invoicing: () => invoicing,
    clock,
    reset: () => outer.fetch(new Request("http://sandbox/__sandbox/reset", { method: "POST" })),
  };
}
export type EaccountingSandbox = ReturnType<typeof createEaccountingSandbox>;

/** The sandbox on a loopback port (0 = a free one). `kontobro sandbox eaccounting` and the demo use this. */
export function startEaccountingSandbox(opts: EaccountingSandboxOptions & { port?: number; hostname?: string } = {}) {
  let server: ReturnType<typeof Bun.serve> | undefined;
  const sandbox = createEaccountingSandbox(opts);
  // A drop must not hit a pooled keep-alive connection that a client would silently replay.
  sandbox.faults.onDropArmed = () => server?.closeIdleConnections();
  server = Bun.serve({ port: opts.port ?? 0, hostname: opts.hostname ?? "127.0.0.1", idleTimeout: 150, fetch: sandbox.fetch });
  const url = `http://${server.hostname}:${server.port}`;
  const running = server;
  return {
    url,
    sandbox,
    server: running,
    stop: async () => {
      running.stop(true);
    },
  };
}

/** The [[targets]] snippet for a sandbox at `url` (also printed by the standalone run). */
export function sandboxToml(url: string): string {
  return (
    `[[targets]]\nname = "eaccounting-sandbox"\nkind = "eaccounting"\napi_url = "${url}/v2"\nidentity_url = "${url}/connect"\n` +
    `client_id = "${DEMO.clientId}"\nclient_secret = "${DEMO.clientSecret}"\nrefresh_token = "${DEMO.refreshToken}"\ndefault_article = "100"\n`
  );
}

if (import.meta.main) {
  const { url } = startEaccountingSandbox({ port: Number(process.env.PORT ?? 8794) });
  console.log(
    `eAccounting sandbox on ${url} (API at ${url}/v2, identity at ${url}/connect, control at ${url}/__sandbox/state)\n\n${sandboxToml(url)}`,
  );
}

export { withConnectionClose };
