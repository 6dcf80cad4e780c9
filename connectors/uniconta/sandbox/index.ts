// A faithful test double of Uniconta's REST-like OData API (odata.uniconta.com) and of a customer-run .NET
// gateway that posts invoices (rmja/unicontarest's routes), with the daily call quota, a number series
// that numbers posted invoices, project costs and payments to pull, and fault injection.
// Follows ../../../../shared/reference/api-notes/uniconta.md (§n below); its unverified points are options.
// Run standalone: `bun connectors/uniconta/sandbox/index.ts` prints a kontobro.toml snippet.
import { Hono, type Context } from "hono";
import { registerRequestCounts, RequestCounts } from "../../sandbox.ts";
import { registerControl } from "./control.ts";
import fixtures from "./fixtures.json";
import { newFaults, withConnectionClose } from "./faults.ts";
import { QueryError, runQuery } from "./odata.ts";
import { postOrder, type PostingOptions } from "./posting.ts";
import { authenticate, dayIn, Quota, type Caller, type QuotaOptions, type User } from "./quota.ts";
import { CompanyStore, TYPES, UcError, type ErrorCode, type Row, type StoreOptions } from "./store.ts";

export const DEMO = { companyId: 12114, user: "kontobro", password: "demo-password" } as const;

export interface UnicontaSandboxOptions extends Partial<StoreOptions>, Partial<PostingOptions> {
  quota?: Partial<QuotaOptions>;
  /** OData list answers: `{"value":[…]}` (OData v4) or a bare array (§8: unverified). */
  listShape?: "value" | "array";
  /** What an insert answers: the stored entity (keys assigned) or an empty 200 (Q3: unverified). */
  insertAnswer?: "entity" | "empty";
  /** Error bodies: `{ErrorCode, Message}` or the bare enum name as a gateway sends it (Q3: unverified). */
  errorBody?: "object" | "name";
  /** HTTP status per error code (Q3: unverified); default 400, NoRights 403. */
  errorStatus?: Partial<Record<ErrorCode, number>>;
  skipSupported?: boolean;
  /** Server calls one gateway posting costs (read order, query lines, PostInvoice). */
  gatewayPostCalls?: number;
  /** How long the gateway keeps its session (rmja/unicontarest: 10 minutes); a login costs 2 calls. */
  gatewaySessionMinutes?: number;
  random?: () => number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  user?: string;
  calls: number;
  fault?: string;
}

/** A minimal valid PDF, for answers with `Accept: application/pdf`. */
const PDF = Buffer.from("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n");

export function createUnicontaSandbox(opts: UnicontaSandboxOptions = {}) {
  const storeOptions: StoreOptions = {
    unknownProperties: opts.unknownProperties ?? "ignore",
    itemlessLines: opts.itemlessLines ?? true,
    categoryRequired: opts.categoryRequired ?? true,
    maxFileBytes: opts.maxFileBytes ?? 10 * 1024 * 1024,
    pricesInclVatFromDebtor: opts.pricesInclVatFromDebtor ?? "when_unset",
  };
  const posting: PostingOptions = {
    honourInvoiceNumber: opts.honourInvoiceNumber ?? false,
    deleteOrderAfterPosting: opts.deleteOrderAfterPosting ?? true,
    invoiceDate: opts.invoiceDate ?? "order",
  };
  const users: User[] = fixtures.users.map((u) => ({ ...u }));
  const quota = new Quota({ limit: 5000, mode: "slow", slowMs: 1000, timezone: "Europe/Copenhagen", ...opts.quota });
  const faults = newFaults(opts.random);
  let stores = new Map<number, CompanyStore>();
  const fresh = () => {
    stores = new Map(fixtures.companies.map((c) => [c.CompanyId, new CompanyStore(c, storeOptions)]));
  };
  fresh();
  let requests: RequestLogEntry[] = [];
  // Counted in server calls, as the quota counts them (a gateway posting costs several; see charge()).
  const counts = new RequestCounts();
  const gatewaySessions = new Map<string, number>();
  const today = () => dayIn(quota.o.timezone);

  const errorStatus = (code: ErrorCode) => opts.errorStatus?.[code] ?? (code === "NoRights" ? 403 : 400);
  const fail = (c: Context, e: UcError) => {
    const body = opts.errorBody === "name" ? e.code : { ErrorCode: e.code, Message: e.message, ...(e.field ? { Field: e.field } : {}) };
    return c.json(body, errorStatus(e.code) as 400);
  };

  type Env = { Variables: { caller: Caller } };
  const app = new Hono<Env>();
  app.onError((e, c) => {
    if (e instanceof UcError) return fail(c, e);
    if (e instanceof QueryError) return c.json({ ErrorCode: "Exception", Message: e.message }, 400);
    if (e instanceof SyntaxError) return fail(c, new UcError("Exception", `The body is not valid JSON: ${e.message}`));
    return c.json(opts.errorBody === "name" ? "Exception" : { ErrorCode: "Exception", Message: (e as Error).message }, 500);
  });

  /** What each request was charged to whom (read by the request log). */
  const charges = new WeakMap<Request, { user: string; calls: number }>();
  /** Charges `calls` to the caller's quota; an error answer when a refusing quota is used up. */
  const charge = async (c: Context<Env>, caller: Caller, calls: number): Promise<Response | null> => {
    const held = quota.charge(caller.user.user, calls);
    if (held === "refused")
      return fail(
        c,
        new UcError(
          "NoSubscription",
          `The daily call quota of ${quota.o.limit} calls for ${caller.user.user} is used up; it resets at midnight.`,
        ),
      );
    charges.set(c.req.raw, { user: caller.user.user, calls });
    if (held > 0) await Bun.sleep(held);
    return null;
  };
  const loginFailed = (c: Context) =>
    c.json(opts.errorBody === "name" ? "NoRights" : { ErrorCode: "NoRights", Message: "Login failed" }, 401, {
      "www-authenticate": 'Basic realm="Uniconta"',
    });

  app.use("*", async (c, next) => {
    const path = new URL(c.req.url).pathname;
    if (/^\/(api|odata)(\/|$)/.test(path)) {
      // OData and CRUD: stateless Basic auth on every call (§2); one server call each.
      const caller = authenticate(c.req.header("authorization"), users, true);
      if (!caller) return loginFailed(c);
      c.set("caller", caller);
      return (await charge(c, caller, 1)) ?? next();
    }
    if (path.startsWith("/gateway/Companies/")) {
      // rmja/unicontarest: a failed login is "Forbid" (403); it caches its session for 10 minutes and tries
      // GetCompanies() up to 5 times (each a login and a call); still empty is 502.
      const caller = authenticate(c.req.header("authorization"), users, false);
      if (!caller) return c.body(null, c.req.header("authorization") ? 403 : 401);
      const user = caller.user.user;
      let calls = c.req.method === "POST" ? (opts.gatewayPostCalls ?? 3) : 0;
      const at = gatewaySessions.get(user);
      if (at === undefined || Date.now() - at >= (opts.gatewaySessionMinutes ?? 10) * 60_000) {
        let listed = false;
        for (let trial = 1; trial <= 5 && !listed; trial++) {
          calls += 2;
          listed = !faults.take("empty_companies", c.req.method, path);
        }
        if (!listed) {
          await charge(c, caller, calls - (c.req.method === "POST" ? (opts.gatewayPostCalls ?? 3) : 0));
          return c.body(null, 502);
        }
        gatewaySessions.set(user, Date.now());
      }
      c.set("caller", caller);
      return (await charge(c, caller, calls)) ?? next();
    }
    return next();
  });

  const company = (caller: Caller, id?: string): CompanyStore => {
    const cid = id !== undefined ? Number(id) : (caller.companyId ?? caller.user.companies[0]!);
    if (!caller.user.companies.includes(cid)) throw new UcError("NoRights", `User ${caller.user.user} has no rights in company ${cid}`);
    const store = stores.get(cid);
    if (!store) throw new UcError("NoRights", `Company ${cid} does not exist`);
    return store;
  };
  const knownType = (type: string) => {
    if (!TYPES[type]) throw new UcError("CouldNotFind", `The entity type ${type} does not exist`);
    return type;
  };
  const companies = (caller: Caller, c: Context) =>
    faults.take("empty_companies", c.req.method, new URL(c.req.url).pathname)
      ? []
      : fixtures.companies.filter((x) => caller.user.companies.includes(x.CompanyId));
  const listAnswer = (c: Context, rows: Row[]) => c.json(opts.listShape === "array" ? rows : { value: rows });

  // ---- the CRUD side (§1 "OData CRUD", §5) -------------------------------------------------------------
  app.get("/api/Entities/:type", (c) => {
    const type = knownType(c.req.param("type"));
    const caller = c.get("caller");
    if (type === "CompanyClient") return c.json(companies(caller, c));
    const rows = company(caller).read(type);
    const name = c.req.query("Name"),
      value = c.req.query("Value");
    return c.json(name ? rows.filter((r) => String(r[name]) === value) : rows);
  });
  app.get("/api/Entities/Read/:type", (c) => {
    const type = knownType(c.req.param("type"));
    const name = c.req.query("Name") ?? TYPES[type]!.key,
      value = c.req.query("Value");
    const row = company(c.get("caller"))
      .read(type)
      .find((r) => String(r[name]) === value);
    if (!row) throw new UcError("CouldNotFind", `${type} with ${name} ${value} was not found`, name);
    return c.json(row);
  });
  app.post("/api/Entities/Insert/:type", async (c) => {
    const body = await c.req.json();
    const stored = company(c.get("caller")).insert(knownType(c.req.param("type")), body);
    if (opts.insertAnswer === "empty") return c.body(null, 200);
    return c.json(Array.isArray(body) ? stored : stored[0]);
  });
  app.put("/api/Entities/Update/:type", async (c) => {
    const body = await c.req.json();
    const stored = company(c.get("caller")).update(knownType(c.req.param("type")), body);
    return c.json(Array.isArray(body) ? stored : stored[0]);
  });
  app.delete("/api/Entities/Delete/:type", async (c) => {
    const deleted = company(c.get("caller")).delete(knownType(c.req.param("type")), await c.req.json());
    return c.json({ deleted });
  });

  // ---- the OData read side (§1, §8, §10) -----------------------------------------------------------------
  const endpoints = (c: Context) => c.json({ value: Object.keys(TYPES).map((t) => ({ name: t, kind: "EntitySet", url: t })) });
  app.get("/odata", endpoints);
  app.get("/odata/", endpoints);
  app.get("/odata/:a{\\d+}", endpoints);
  const odata = (c: Context<Env>, cid: string | undefined, type: string) => {
    knownType(type);
    const caller = c.get("caller");
    if (type === "CompanyClient") return listAnswer(c, companies(caller, c));
    return listAnswer(c, runQuery(company(caller, cid).read(type), c.req.query(), { skipSupported: opts.skipSupported ?? true }));
  };
  app.get("/odata/:cid{\\d+}/:type", (c) => odata(c, c.req.param("cid"), c.req.param("type")));
  app.get("/odata/:type", (c) => odata(c, undefined, c.req.param("type")));

  // ---- the gateway (§1 "self-hosted .NET gateway", §6) -------------------------------------------------
  app.get("/gateway", (c) =>
    c.json({ QueryEndpoint: "/Companies/:companyId/Query/:type", CrudEndpoint: "/Companies/:companyId/Crud/:type" }),
  );
  app.get("/gateway/", (c) =>
    c.json({ QueryEndpoint: "/Companies/:companyId/Query/:type", CrudEndpoint: "/Companies/:companyId/Crud/:type" }),
  );
  const gatewayPost = (c: Context<Env>) => {
    const caller = c.get("caller");
    const cid = Number(c.req.param("cid"));
    if (!caller.user.companies.includes(cid)) return c.body(null, 404);
    const invoiceNumber = Number(c.req.query("invoiceNumber") ?? 0) || undefined;
    try {
      const result = postOrder(
        stores.get(cid)!,
        Number(c.req.param("n")),
        { simulate: c.req.query("simulate") === "true", invoiceNumber, today: today() },
        posting,
      );
      if ((c.req.header("accept") ?? "").toLowerCase().includes("application/pdf"))
        return c.body(PDF, 200, { "content-type": "application/pdf" });
      return c.json(result);
    } catch (e) {
      if (e instanceof UcError) return c.json(e.code, 500); // StatusCode(500, invoice.Err) with StringEnumConverter
      throw e;
    }
  };
  app.post("/gateway/Companies/:cid{\\d+}/Invoice/DebtorOrders/:n{\\d+}", gatewayPost);
  app.post("/gateway/Companies/:cid{\\d+}/Invoice/Orders/:n{\\d+}", gatewayPost);
  app.notFound((c) => c.json({ ErrorCode: "CouldNotFind", Message: `No route ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  // ---- control API, request log and faults around everything else ---------------------------------------
  const outer = new Hono();
  registerRequestCounts(outer, counts);
  registerControl(outer, {
    faults,
    quota,
    store: (cid?: number) => stores.get(cid ?? DEMO.companyId),
    stores: () => stores,
    today,
    posting,
    state,
    reset: () => {
      fresh();
      faults.clear();
      faults.resetCounts();
      requests = [];
      counts.clear();
      gatewaySessions.clear();
      quota.used.clear();
      quota.over.clear();
    },
  });
  outer.all("*", async (c) => {
    const req = c.req.raw;
    const url = new URL(req.url);
    const decision = faults.decide(req.method, url.pathname, url.search);
    const res = await faults.apply(decision, async () => app.fetch(req));
    const charged = charges.get(req);
    counts.add(req.method, url.pathname + url.search, charged?.calls ?? 0);
    let path = url.pathname + url.search;
    try {
      path = decodeURIComponent(path.replace(/\+/g, " "));
    } catch {}
    requests.push({
      method: req.method,
      path,
      status: res.status,
      ...(charged ? { user: charged.user } : {}),
      calls: charged?.calls ?? 0,
      ...(decision.fired.length ? { fault: decision.fired.join(",") } : {}),
    });
    return res;
  });

  function state() {
    return {
      quota: quota.state(),
      requests,
      faults: faults.list(),
      faultsInjected: { ...faults.injected },
      companies: Object.fromEntries(
        [...stores].map(([cid, s]) => [
          cid,
          {
            name: s.company.Name,
            counts: Object.fromEntries([...s.rows].filter(([, v]) => v.length > 0).map(([k, v]) => [k, v.length])),
            rows: Object.fromEntries([...s.rows].filter(([t]) => !SETUP_TYPES.has(t)).map(([k, v]) => [k, v])),
            ignoredProperties: s.ignored,
            nextInvoiceNumber: s.raw("NumberSerieClient").find((r) => r.Use === "Invoice")?.NextNumber,
          },
        ]),
      ),
    };
  }

  return {
    fetch: (req: Request) => outer.fetch(req),
    faults,
    quota,
    state,
    store: (cid: number = DEMO.companyId) => stores.get(cid)!,
    reset: () => outer.fetch(new Request("http://sandbox/__sandbox/reset", { method: "POST" })),
  };
}
export type UnicontaSandbox = ReturnType<typeof createUnicontaSandbox>;

const SETUP_TYPES = new Set(Object.keys(fixtures.setup));

/** The sandbox on a loopback port (0 = a free one). `kontobro sandbox uniconta` and the demo use this. */
export function startUnicontaSandbox(opts: UnicontaSandboxOptions & { port?: number; hostname?: string } = {}) {
  let server: ReturnType<typeof Bun.serve> | undefined;
  const sandbox = createUnicontaSandbox(opts);
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
    `[[targets]]\nname = "uniconta-sandbox"\nkind = "uniconta"\napi_url = "${url}"\ngateway_url = "${url}/gateway"\nposting = "gateway"\n` +
    `company_id = ${DEMO.companyId}\nusername = "${DEMO.user}"\npassword = "${DEMO.password}"\ndefault_customer_group = "ERHVERV"\n` +
    `credit_note_payment_terms = "NK0"\naccounts = { hours = "1000", expenses = "1020", products = "1010" }\n` +
    `vat_codes = { hours = "U25", expenses = "U25", products = "U25" }\ncategories = { hours = "TIMER", expenses = "UDLÆG", products = "VARER" }\n`
  );
}

if (import.meta.main) {
  const { url } = startUnicontaSandbox({ port: Number(process.env.PORT ?? 8793) });
  console.log(`Uniconta sandbox on ${url} (gateway at ${url}/gateway, control at ${url}/__sandbox/state)\n\n${sandboxToml(url)}`);
}

export { withConnectionClose };
