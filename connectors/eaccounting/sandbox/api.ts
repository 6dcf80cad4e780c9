// The v2 routes kontobro uses (eaccounting.md §5–§10), behind the bearer token, the scopes, the company's
// onboarding state and the limit of 600 requests a minute per client and endpoint.
import { Hono, type Context } from "hono";
import type { Invoicing } from "./invoicing.ts";
import type { IdentityServer } from "./oauth.ts";
import { listPage, type QueryOptions } from "./query.ts";
import type { RateLimiter } from "./faults.ts";
import type { CompanyStore } from "./store.ts";
import { EaError, envelope, ERROR_NAMES, type Row } from "./validate.ts";

export interface ApiState {
  store: () => CompanyStore;
  invoicing: () => Invoicing;
  identity: IdentityServer;
  limiter: RateLimiter;
  query: QueryOptions;
  /** Send Retry-After with a 429 as well as the message (listed for the Visma family, unverified for eAccounting). */
  retryAfterHeader: boolean;
  /** An onboarding error every call answers with (4003, 4004, 4009, 4011, 4012, 4034), or null. */
  onboarding: { code: number | null };
  /** The connected user is read-only: every write answers 4019. */
  readonlyUser: { on: boolean };
}

/** The scope family of each resource (which resource needs which scope is unverified beyond the descriptions, §2). */
const SCOPE_OF: Record<string, "sales" | "accounting" | "purchase"> = {
  customers: "sales",
  articles: "sales",
  articleaccountcodings: "sales",
  units: "sales",
  termsofpayments: "sales",
  termsofpayment: "sales",
  customerinvoicedrafts: "sales",
  customerinvoices: "sales",
  projects: "sales",
  costcenters: "accounting",
  costcenteritems: "accounting",
  supplierinvoices: "purchase",
};

const ONBOARDING_TEXT: Record<number, string> = {
  4003: "The company has not completed the startup guide.",
  4004: "The company is not active.",
  4009: "The company's product variant has no access to this.",
  4011: "The authenticated user has no access to this company.",
  4012: "The licence agreement has not been accepted.",
  4034: "A sandbox client is not allowed here.",
};

type Env = { Variables: { clientId: string } };

export function apiRoutes(st: ApiState): Hono<Env> {
  const api = new Hono<Env>();
  const fail = (c: Context, e: EaError) => c.json(envelope(e.code, e.message), e.status as 400);

  api.use("*", async (c, next) => {
    const auth = st.identity.authenticate(c.req.header("authorization"));
    if (!auth.ok)
      return c.json(envelope(4005, `NotAuthorized: ${auth.reason}.`), 401, { "www-authenticate": 'Bearer error="invalid_token"' });
    const resource = new URL(c.req.url).pathname.split("/")[2] ?? "";
    const family = SCOPE_OF[resource];
    const write = c.req.method !== "GET";
    if (
      !auth.scope.includes("ea:api") ||
      (family && !auth.scope.includes(`ea:${family}`) && (write || !auth.scope.includes(`ea:${family}_readonly`)))
    ) {
      return fail(
        c,
        new EaError(
          403,
          4006,
          `NoAccessToScopes: Requires any of the following scopes: ea:${family ?? "api"}${family ? `, ea:${family}_readonly` : ""}.`,
        ),
      );
    }
    if (st.onboarding.code)
      return fail(
        c,
        new EaError(
          403,
          st.onboarding.code,
          `${ERROR_NAMES[st.onboarding.code] ?? "Forbidden"}: ${ONBOARDING_TEXT[st.onboarding.code] ?? "No access."}`,
        ),
      );
    if (write && st.readonlyUser.on) return fail(c, new EaError(403, 4019, "NoPermissionForReadonlyUser: The user has read-only access."));
    const wait = st.limiter.take(auth.clientId, `/v2/${resource}`);
    if (wait > 0) {
      return c.json(
        envelope(4010, `API calls quota exceeded! maximum admitted ${st.limiter.perMinute} per Minute. Try again in ${wait} seconds.`),
        429,
        st.retryAfterHeader ? { "retry-after": String(wait) } : {},
      );
    }
    c.set("clientId", auth.clientId);
    await next();
  });

  const s = () => st.store();
  const inv = () => st.invoicing();
  const page = (c: Context, rows: Row[]) => c.json(listPage(rows, c.req.query(), st.query, s().nowIso()));
  const body = async (c: Context): Promise<Row> => {
    try {
      return await c.req.json();
    } catch {
      throw new EaError(400, 2000, "The request body is not valid JSON.");
    }
  };

  // ---- set-up lists ------------------------------------------------------------------------------------------
  api.get("/termsofpayments", (c) => page(c, s().terms));
  api.get("/termsofpayment", (c) => page(c, s().terms));
  api.get("/units", (c) => page(c, s().units));
  api.get("/articleaccountcodings", (c) => page(c, s().codings));

  // ---- customers (§5) ------------------------------------------------------------------------------------------
  api.get("/customers", (c) => page(c, [...s().customers.values()]));
  api.get("/customers/:id", (c) => c.json(s().customer(c.req.param("id"))));
  api.post("/customers", async (c) => c.json(s().createCustomer(await body(c)), 201));
  api.put("/customers/:id", async (c) => c.json(s().replaceCustomer(c.req.param("id"), await body(c))));
  api.delete("/customers/:id", (c) => {
    s().deleteCustomer(c.req.param("id"));
    return c.body(null, 204);
  });

  // ---- articles (§7) -------------------------------------------------------------------------------------------
  api.get("/articles", (c) => page(c, [...s().articles.values()]));
  api.get("/articles/:id", (c) => c.json(s().article(c.req.param("id"))));
  api.post("/articles", async (c) => c.json(s().createArticle(await body(c)), 201));
  api.put("/articles/:id", async (c) => c.json(s().replaceArticle(c.req.param("id"), await body(c))));

  // ---- cost centres, items and projects (§6) --------------------------------------------------------------------
  api.get("/costcenters", (c) => page(c, s().costCenters));
  api.put("/costcenters/:id", async (c) => c.json(s().updateCostCenter(c.req.param("id"), await body(c))));
  api.get("/costcenteritems/:id", (c) => c.json(s().costCenterItem(c.req.param("id"))));
  api.post("/costcenteritems", async (c) => c.json(s().createCostCenterItem(await body(c)), 201));
  api.put("/costcenteritems/:id", async (c) => c.json(s().updateCostCenterItem(c.req.param("id"), await body(c))));
  api.get("/projects", (c) => page(c, [...s().projects.values()]));
  api.get("/projects/:id", (c) => c.json(s().project(c.req.param("id"))));
  api.post("/projects", async (c) => c.json(s().createProject(await body(c)), 201));

  // ---- invoice drafts and invoices (§8) -----------------------------------------------------------------------------
  api.get("/customerinvoicedrafts", (c) => page(c, [...inv().drafts.values()]));
  api.get("/customerinvoicedrafts/:id", (c) => c.json(inv().draft(c.req.param("id"))));
  api.post("/customerinvoicedrafts", async (c) => c.json(inv().createDraft(await body(c)), 201));
  api.put("/customerinvoicedrafts/:id", async (c) => c.json(inv().replaceDraft(c.req.param("id"), await body(c))));
  api.delete("/customerinvoicedrafts/:id", (c) => {
    inv().deleteDraft(c.req.param("id"));
    return c.body(null, 204);
  });
  api.post("/customerinvoicedrafts/:id/convert", (c) =>
    c.json(inv().convert(c.req.param("id"), c.req.query("keepOriginalDraftDate") === "true"), 201),
  );
  api.get("/customerinvoices", (c) =>
    page(
      c,
      [...inv().invoices.values()].map((i) => inv().read(i)),
    ),
  );
  api.get("/customerinvoices/:id", (c) => c.json(inv().invoice(c.req.param("id"))));

  // ---- supplier invoices (§10) ----------------------------------------------------------------------------------
  api.get("/supplierinvoices", (c) => page(c, [...inv().supplierInvoices.values()]));
  api.get("/supplierinvoices/:id", (c) => {
    const row = inv().supplierInvoices.get(c.req.param("id"));
    if (!row) throw new EaError(404, 3000, "Supplier invoice not found.");
    return c.json(row);
  });

  api.notFound((c) => c.json(envelope(3000, `ResourceNotFound: No route ${c.req.method} ${new URL(c.req.url).pathname}.`), 404));
  return api;
}
