// The e-conomic sandbox: a faithful test double of Visma e-conomic (Legacy REST at the root, the
// OpenAPI Projects API under /projectsapi/v1.1.0) served over real HTTP, with fault injection.
// `kontobro demo` runs the agent against it; end-to-end tests talk to it on loopback.
//
//   bun connectors/economic/sandbox/index.ts --port 9001
import { parseArgs } from "node:util";
import { Hono, type MiddlewareHandler } from "hono";
import { getPath } from "hono/utils/url";
import { registerRequestCounts, RequestCounts } from "../../sandbox.ts";
import { registerControlRoutes, type ControlTarget } from "./control.ts";
import { MAX_ATTACHMENT_BYTES } from "./attachments.ts";
import { FaultTable, IdempotencyCache, faultMiddleware, faultRuleSchema, type FaultCounts, type FaultRule } from "./faults.ts";
import { familyError, isOpenApiPath, openApiError, PROJECTS_PREFIX, restError } from "./http.ts";
import { registerInvoiceRoutes } from "./invoices.ts";
import { registerLedgerControlRoutes } from "./ledger-control.ts";
import { registerLedgerRoutes } from "./ledger-routes.ts";
import { registerProjectRoutes } from "./projects.ts";
import { registerRestRoutes, type SandboxCore } from "./rest.ts";
import { createState, type SandboxState } from "./state.ts";

export type { FaultKind, FaultRule } from "./faults.ts";
export type { SandboxState } from "./state.ts";

export const DEFAULT_APP_SECRET_TOKEN = "demo-app-secret";
export const DEFAULT_AGREEMENT_GRANT_TOKEN = "demo-agreement-grant";

export interface EconomicSandboxOptions {
  appSecretToken?: string;
  agreementGrantToken?: string;
  /** VAT rate of the domestic VAT zone (1); other zones have none. Default 0.25. */
  vatRate?: number;
  /** The largest draft attachment, bytes: "9.0 MB" in the notes, read as 9 × 1024 × 1024 (default) or 9,000,000 (unverified). */
  attachmentMaxBytes?: number;
  /** Source of randomness for probability faults (tests can make it deterministic). */
  random?: () => number;
  /** Called when a drop_after_commit rule is added; startEconomicSandbox closes idle connections here. */
  onDropArmed?: () => void;
}

export interface SandboxStats {
  requests: { total: number; byMethod: Record<string, number> };
  /** Faults injected so far, by kind. */
  faults: FaultCounts;
  idempotency: { cached: number; replays: number };
  counts: { customers: number; products: number; projects: number; drafts: number; booked: number };
}

export interface EconomicSandbox {
  app: Hono;
  /** The live state (plain Maps); replaced by reset(). */
  readonly state: SandboxState;
  /** Adds a fault rule (validated); returns its id. */
  addFault(rule: FaultRule): number;
  clearFaults(): void;
  /** Back to the seed: state, faults, idempotency cache and counters. */
  reset(): void;
  stats(): SandboxStats;
}

export interface StartedEconomicSandbox {
  url: string;
  /** Base of the Legacy REST API (the root, e.g. `${restUrl}/customers`). */
  restUrl: string;
  /** Base of the OpenAPI Projects API, `${url}/projectsapi/v1.1.0`. */
  projectsUrl: string;
  sandbox: EconomicSandbox;
  stop(): Promise<void>;
}

export function createEconomicSandbox(opts: EconomicSandboxOptions = {}): EconomicSandbox {
  let state = createState();
  const faults = new FaultTable(opts.random ?? Math.random);
  if (opts.onDropArmed) faults.onDropArmed = opts.onDropArmed;
  const idempotency = new IdempotencyCache();
  let requests = { total: 0, byMethod: {} as Record<string, number> };
  // e-conomic's fair use counts every API call alike: one request, one call.
  const counts = new RequestCounts();
  const core: SandboxCore = {
    get state() {
      return state;
    },
    vatRate: opts.vatRate ?? 0.25,
    attachmentMaxBytes: opts.attachmentMaxBytes ?? MAX_ATTACHMENT_BYTES,
  };

  // OpenAPI paths are matched case-insensitively (`/Projects` and `/projects` are the same resource).
  const app = new Hono({
    getPath: (req) => {
      const path = getPath(req);
      return isOpenApiPath(path) ? path.toLowerCase() : path;
    },
  });

  const sandbox: EconomicSandbox & ControlTarget = {
    app,
    get state() {
      return state;
    },
    addFault: (rule) => faults.add(faultRuleSchema.parse(rule)),
    clearFaults: () => faults.clear(),
    listFaults: () => faults.list(),
    reset() {
      state = createState();
      faults.clear();
      faults.injected = { latency: 0, "500": 0, "503": 0, "429": 0, drop_after_commit: 0 };
      idempotency.clear();
      requests = { total: 0, byMethod: {} };
      counts.clear();
    },
    stats: () => ({
      requests: { total: requests.total, byMethod: { ...requests.byMethod } },
      faults: { ...faults.injected },
      idempotency: { cached: idempotency.size(), replays: idempotency.replays },
      counts: {
        customers: state.customers.size,
        products: state.products.size,
        projects: state.projects.size,
        drafts: state.drafts.size,
        booked: state.booked.size,
      },
    }),
  };

  registerLedgerControlRoutes(app, () => state);
  registerRequestCounts(app, counts);
  registerControlRoutes(app, sandbox);
  app.use(
    "*",
    faultMiddleware(faults, (method, url) => {
      requests.total++;
      requests.byMethod[method] = (requests.byMethod[method] ?? 0) + 1;
      counts.add(method, url.pathname + url.search);
    }),
  );
  app.use("*", authMiddleware(opts.appSecretToken ?? DEFAULT_APP_SECRET_TOKEN, opts.agreementGrantToken ?? DEFAULT_AGREEMENT_GRANT_TOKEN));
  app.use("*", idempotency.middleware());
  registerRestRoutes(app, core);
  registerInvoiceRoutes(app, core);
  registerProjectRoutes(app, core);
  registerLedgerRoutes(app, core);
  app.notFound((c) => familyError(c.req.path, 404, `No resource at ${c.req.path}.`));
  app.onError((err, c) => {
    console.error(`e-conomic sandbox: ${c.req.method} ${c.req.path} failed:`, err);
    return familyError(c.req.path, 500, "Internal server error. The error has been logged.");
  });
  return sandbox;
}

/** Both tokens on every request; `demo`/`demo` may only read, as at e-conomic. */
function authMiddleware(appSecretToken: string, agreementGrantToken: string): MiddlewareHandler {
  return async (c, next) => {
    const secret = c.req.header("x-appsecrettoken");
    const grant = c.req.header("x-agreementgranttoken");
    const openApi = isOpenApiPath(c.req.path);
    const deny = (status: number, message: string, code?: string) =>
      openApi
        ? openApiError(status, message, { code, developerHint: "Send X-AppSecretToken and X-AgreementGrantToken." })
        : restError(status, message, { errorCode: code, developerHint: "Send X-AppSecretToken and X-AgreementGrantToken." });
    if (!secret || !grant) return deny(401, "Unauthorized. Both X-AppSecretToken and X-AgreementGrantToken headers are required.");
    if (secret === "demo" && grant === "demo") {
      return c.req.method === "GET" || c.req.method === "HEAD" ? next() : deny(403, "The demo agreement is read-only.");
    }
    if (secret !== appSecretToken || grant !== agreementGrantToken)
      return deny(401, "AppSecretToken does not correspond to the token.", "E02250");
    return next();
  };
}

export async function startEconomicSandbox(
  opts: EconomicSandboxOptions & { port?: number; hostname?: string } = {},
): Promise<StartedEconomicSandbox> {
  let server: ReturnType<typeof Bun.serve> | undefined;
  // Pooled keep-alive connections would let a client silently retry a dropped request (see faults.ts).
  const sandbox = createEconomicSandbox({
    ...opts,
    onDropArmed: () => {
      server?.closeIdleConnections();
      opts.onDropArmed?.();
    },
  });
  const hostname = opts.hostname ?? "127.0.0.1";
  // Generous idle timeout so latency faults do not turn into connection resets.
  server = Bun.serve({ port: opts.port ?? 0, hostname, fetch: sandbox.app.fetch, idleTimeout: 150 });
  const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `http://${host}:${server.port}`;
  const running = server;
  return { url, restUrl: url, projectsUrl: `${url}${PROJECTS_PREFIX}`, sandbox, stop: () => running.stop(true) };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Bun.argv.slice(2),
    options: {
      port: { type: "string", default: "9001" },
      hostname: { type: "string", default: "127.0.0.1" },
      "app-secret-token": { type: "string" },
      "agreement-grant-token": { type: "string" },
    },
  });
  const started = await startEconomicSandbox({
    port: Number(values.port),
    hostname: values.hostname,
    appSecretToken: values["app-secret-token"],
    agreementGrantToken: values["agreement-grant-token"],
  });
  console.log(`e-conomic sandbox listening on ${started.url}`);
  console.log(`  REST      ${started.restUrl}   Projects ${started.projectsUrl}   control ${started.url}/__sandbox/state`);
  console.log(
    `  tokens    X-AppSecretToken: ${values["app-secret-token"] ?? DEFAULT_APP_SECRET_TOKEN}   X-AgreementGrantToken: ${values["agreement-grant-token"] ?? DEFAULT_AGREEMENT_GRANT_TOKEN}`,
  );
  const shutdown = () => {
    void started.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}
