// A faithful test double of the Uni Micro platform (Uni Economy / DnB Regnskap / SpareBank 1 Regnskap):
// identity server, /api/init/companies, /api/endpoints, the Files service and /api/biz with internal IDs,
// `_createguid`, the invoice transition and credit drafts, the error envelope, and fault injection.
// Run standalone: `bun connectors/unimicro/sandbox/index.ts [profile]` prints a kontobro.toml snippet.
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { registerRequestCounts, RequestCounts } from "../../sandbox.ts";
import { IdentityServer, type SandboxClient } from "./auth.ts";
import { faultRoutes } from "../../sandbox-faults.ts";
import { FaultRulesBody, newFaults } from "./faults.ts";
import { QueryError } from "./query.ts";
import { ApiError, COLLECTIONS, CompanyStore, DELETABLE, notFound, WRITABLE, type Profile, type StoreOptions } from "./store.ts";

export interface UniMicroSandboxOptions {
  /** "dnb-regnskap" / "sparebank1-regnskap" enforce the number rules server-side. Default "unimicro". */
  profile?: Profile;
  /** Server clients and the public key their assertions are checked with. None: a demo client is generated. */
  clients?: SandboxClient[];
  companies?: { ID?: number; Name: string; Key: string; IsTest?: boolean }[];
  /** expires_in of issued tokens; short values let tests exercise refresh. Default 3600. */
  tokenLifetimeSeconds?: number;
  /** Default: only the generic "unimicro" profile accepts invoice attachments (KB: Uni Economy does not). */
  attachments?: boolean;
  invoiceNumbers?: StoreOptions["invoiceNumbers"];
  voucherNumbers?: StoreOptions["voucherNumbers"];
  /** A PUT deleting an already deleted child row: refused ("gone", default) or accepted as a no-op ("kept"); unverified. */
  deletedChildren?: StoreOptions["deletedChildren"];
  /** A VatType's rate in VatPercent ("percent", default: unimicro.md §8.1) or only in dated VatTypePercentages ("dated"); unverified. */
  vatRates?: StoreOptions["vatRates"];
  /** The invoice transition answers 204 (conventions) or 200 (2019 swagger). Default 204. */
  transitionStatus?: 200 | 204;
}

export const DEMO_COMPANY = { ID: 8639, Name: "Demo AS", Key: "910c715b-0000-4000-8000-000000000000", IsTest: true };
export const DEMO_CLIENT_ID = "kontobro-demo";

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  fault?: string;
}

export function createUniMicroSandbox(opts: UniMicroSandboxOptions = {}) {
  const profile = opts.profile ?? "unimicro";
  const storeOptions: StoreOptions = {
    profile,
    attachments: opts.attachments ?? profile === "unimicro",
    invoiceNumbers: opts.invoiceNumbers ?? "client",
    voucherNumbers: opts.voucherNumbers ?? "payment-id",
    deletedChildren: opts.deletedChildren ?? "gone",
    vatRates: opts.vatRates ?? "percent",
  };
  let demo: { clientId: string; privateKeyPem: string } | undefined;
  let clients = opts.clients;
  if (!clients?.length) {
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    demo = { clientId: DEMO_CLIENT_ID, privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
    clients = [{ clientId: DEMO_CLIENT_ID, publicKey: pair.publicKey }];
  }
  const companies = (opts.companies ?? [DEMO_COMPANY]).map((c, i) => ({
    ID: c.ID ?? 8639 + i,
    Name: c.Name,
    Key: c.Key,
    IsTest: c.IsTest ?? true,
  }));
  const identity = new IdentityServer(clients, opts.tokenLifetimeSeconds ?? 3600);
  const faults = newFaults();
  let stores = new Map<string, CompanyStore>();
  const freshStores = () => {
    stores = new Map(companies.map((c) => [c.Key, new CompanyStore(c, storeOptions)]));
  };
  freshStores();
  let requests: RequestLogEntry[] = [];
  // No documented quota: every request, to the API, the identity server or the Files service, counts as one call.
  const counts = new RequestCounts();

  const api = new Hono<{ Variables: { store: CompanyStore; caller: string } }>();
  api.onError((e, c) => {
    if (e instanceof ApiError) return c.json(e.body, e.status as 400);
    if (e instanceof QueryError) return c.json({ Message: e.message }, 400);
    if (e instanceof SyntaxError) return c.json({ Message: `The request body is not valid JSON: ${e.message}` }, 400);
    return c.json({ Message: `An error has occurred. ${(e as Error).message}` }, 500);
  });
  api.notFound((c) => c.json({ Message: `No resource found for ${new URL(c.req.url).pathname}` }, 404));

  // ---- identity ------------------------------------------------------------------------------------
  api.get("/.well-known/openid-configuration", (c) => {
    const origin = new URL(c.req.url).origin;
    return c.json({
      issuer: origin,
      token_endpoint: `${origin}/connect/token`,
      grant_types_supported: ["client_credentials"],
      token_endpoint_auth_methods_supported: ["private_key_jwt"],
    });
  });
  api.post("/connect/token", async (c) => {
    const form = Object.fromEntries(Object.entries(await c.req.parseBody()).map(([k, v]) => [k, String(v)]));
    const url = new URL(c.req.url);
    const answer = identity.token(form, `${url.origin}${url.pathname}`);
    return c.json(answer.body, answer.status as 200);
  });

  // ---- authenticated API -----------------------------------------------------------------------------
  const unauthorized = (c: any) => c.json({ Message: "Unauthorized" }, 401, { "www-authenticate": 'Bearer error="invalid_token"' });
  api.use("/api/*", async (c, next) => {
    const caller = identity.authenticate(c.req.header("authorization"));
    if (!caller) return unauthorized(c);
    c.set("caller", caller);
    await next();
  });
  api.get("/api/init/companies", (c) => c.json(companies));
  api.get("/api/endpoints", (c) => {
    const origin = new URL(c.req.url).origin;
    return c.json({ AppFramework: origin, Identity: origin, Files: `${origin}/files-service` });
  });
  api.use("/api/biz/*", async (c, next) => {
    const key = c.req.header("companykey");
    if (!key) return c.json({ Message: "Missing CompanyKey header" }, 401);
    const store = stores.get(key);
    if (!store) return c.json({ Message: `No access to company with key ${key}` }, 403);
    c.set("store", store);
    await next();
  });

  // The Files service is a separate host on the real platform; here it is a path prefix named in /api/endpoints.
  api.post("/files-service/api/file", async (c) => {
    const body = await c.req.parseBody();
    const token = c.req.header("authorization") ?? (body.Token ? `Bearer ${body.Token}` : undefined);
    if (!identity.authenticate(token)) return unauthorized(c);
    const store = stores.get(c.req.header("companykey") ?? String(body.Key ?? ""));
    if (!store) return c.json({ Message: "Unknown company key" }, 403);
    const file = body.File;
    // The platform's trap: any other field name stores nothing and still answers 200.
    if (!(file instanceof File)) return c.json({}, 200);
    return c.json(store.addFile(file.name, file.type || "application/octet-stream", file.size), 200);
  });

  const collection = (name: string) => {
    if (!COLLECTIONS[name]) throw notFound(`Entity ${name}`); // unknown entity and missing record: both 404
    return name;
  };
  const intId = (v: string) => {
    if (!/^\d+$/.test(v)) throw notFound(`ID ${v}`);
    return Number(v);
  };
  const jsonBody = async (c: any) => {
    const b = await c.req.json();
    if (!b || typeof b !== "object" || Array.isArray(b)) throw new ApiError(400, { Message: "The request body must be a JSON object" });
    return b;
  };

  api.get("/api/biz/files/:entitytype/:entityid", (c) =>
    c.json(c.get("store").filesOf(c.req.param("entitytype"), intId(c.req.param("entityid")))),
  );
  api.get("/api/biz/:coll", (c) => c.json(c.get("store").list(collection(c.req.param("coll")), c.req.query())));
  api.get("/api/biz/:coll/:id", (c) =>
    c.json(c.get("store").get(collection(c.req.param("coll")), intId(c.req.param("id")), c.req.query("expand"))),
  );
  api.post("/api/biz/:coll", async (c) => {
    const coll = collection(c.req.param("coll"));
    if (!WRITABLE.has(coll)) throw new ApiError(405, { Message: `${COLLECTIONS[coll]} cannot be created through this API` });
    return c.json(c.get("store").create(coll, await jsonBody(c), c.get("caller")), 201);
  });
  api.put("/api/biz/:coll/:id", async (c) => {
    const coll = collection(c.req.param("coll")),
      id = intId(c.req.param("id")),
      action = c.req.query("action");
    const store = c.get("store");
    if (coll === "invoices" && action === "create-credit-draft-invoice") return c.json(store.creditDraft(id, c.get("caller")));
    if (action) throw notFound(`Action ${action} on ${coll}`);
    if (!WRITABLE.has(coll)) throw new ApiError(405, { Message: `${COLLECTIONS[coll]} cannot be changed through this API` });
    return c.json(store.update(coll, id, await jsonBody(c)));
  });
  api.delete("/api/biz/:coll/:id", (c) => {
    const coll = collection(c.req.param("coll"));
    if (!DELETABLE.has(coll)) throw new ApiError(405, { Message: `${COLLECTIONS[coll]} cannot be deleted through this API` });
    c.get("store").remove(coll, intId(c.req.param("id")));
    return c.body(null, 204);
  });
  api.post("/api/biz/:coll/:id", async (c) => {
    const coll = collection(c.req.param("coll")),
      id = intId(c.req.param("id")),
      action = c.req.query("action");
    const store = c.get("store");
    if (coll === "invoices" && action === "invoice") {
      const inv = store.invoice(id);
      return opts.transitionStatus === 200 ? c.json(inv) : c.body(null, 204);
    }
    if (coll === "files" && action === "link")
      return c.json(store.linkFile(id, c.req.query("entitytype") ?? "", intId(c.req.query("entityid") ?? "")));
    throw notFound(`Action ${action ?? "(none)"} on ${coll}`);
  });

  // ---- the outer server: control API, request log and faults around everything else -----------------------
  const app = new Hono();
  faultRoutes(app, faults, FaultRulesBody);
  app.get("/__sandbox/state", (c) => c.json(state()));
  /** The ledger lines (journalentrylines) of a company: what the bookings did to the accounts. */
  app.get("/__sandbox/ledger", (c) => c.json(stores.get(c.req.query("companyKey") ?? companies[0]!.Key)?.rows.journalentrylines ?? []));
  /** A fault: a company's lines on these products (by PartName) are booked at these prices ({"1": 1500}; {} ends it). */
  app.put("/__sandbox/price-list", async (c) => {
    const store = stores.get(c.req.query("companyKey") ?? companies[0]!.Key);
    const prices = await c.req.json().catch(() => null);
    if (!store || !prices || typeof prices !== "object" || Object.values(prices).some((v) => typeof v !== "number"))
      return c.json({ error: "need a known companyKey and a JSON object of PartName: price" }, 400);
    store.priceList = new Map(Object.entries(prices as Record<string, number>));
    return c.json(prices);
  });
  app.post("/__sandbox/reset", (c) => {
    reset();
    return c.json({ reset: true });
  });
  app.post("/__sandbox/tokens/expire", (c) => {
    identity.expireAll();
    return c.json({ ok: true });
  });
  app.post("/__sandbox/payments", async (c) => {
    const b = await c.req.json().catch(() => ({}));
    const store = stores.get(b.companyKey ?? companies[0]!.Key);
    const inv = store?.rows.invoices?.find((r) => r.InvoiceNumber === String(b.invoiceNumber) && r.StatusCode !== 42001);
    if (!store || !inv || typeof b.amount !== "number")
      return c.json({ error: "need invoiceNumber of a booked invoice and a numeric amount" }, 400);
    return c.json(store.registerPayment(inv.ID, b.amount));
  });
  // What a user does by hand in the app, as `user`: a customer, project or invoice (draft, or booked with
  // `book`), a credit draft of a booked invoice (`creditOf`, its lines optionally rewritten), or an edit of a
  // field such as InternalNote (PATCH, allowed on booked invoices too).
  const manual = async (c: any, work: (store: CompanyStore, b: any, user: string) => unknown) => {
    const b = await c.req.json().catch(() => ({}));
    const store = stores.get(b.companyKey ?? companies[0]!.Key);
    if (!store) return c.json({ error: "unknown companyKey" }, 400);
    try {
      return c.json(work(store, b, typeof b.user === "string" ? b.user : "user:kari.nordmann"), 201);
    } catch (e) {
      if (e instanceof ApiError) return c.json(e.body, e.status as 400);
      throw e;
    }
  };
  app.post("/__sandbox/manual/invoices", (c) =>
    manual(c, (store, b, user) => {
      let row = typeof b.creditOf === "number" ? store.creditDraft(b.creditOf, user) : store.create("invoices", b.invoice ?? {}, user);
      if (b.creditOf !== undefined && b.invoice) {
        const items = [
          ...(row.Items ?? []).map((i: any) => ({ ID: i.ID, Deleted: true })),
          ...(b.invoice.Items ?? []).map((i: any) => ({ _createguid: crypto.randomUUID(), ...i })),
        ];
        row = store.update("invoices", row.ID, { ...b.invoice, Items: items });
      }
      return b.book ? store.invoice(row.ID) : row;
    }),
  );
  app.post("/__sandbox/manual/:coll{customers|projects}", (c) =>
    manual(c, (store, b, user) => store.create(c.req.param("coll"), b.row ?? {}, user)),
  );
  /** A customer, project or product a user deletes in the app, by its ID (as `DELETE /api/biz/customers/42` does). */
  app.delete("/__sandbox/manual/:coll{customers|projects|products}/:id", (c) =>
    manual(c, (store) => {
      store.remove(c.req.param("coll"), Number(c.req.param("id")));
      return { deleted: Number(c.req.param("id")) };
    }),
  );
  app.patch("/__sandbox/manual/invoices/:id", (c) =>
    manual(c, (store, b) => {
      const row = store.rows.invoices!.find((r) => r.ID === Number(c.req.param("id")));
      if (!row) throw notFound(`CustomerInvoice ${c.req.param("id")}`);
      return Object.assign(row, b.set ?? {});
    }),
  );
  registerRequestCounts(app, counts);
  app.all("/__sandbox/*", (c) => c.json({ message: `No control endpoint ${c.req.method} ${c.req.path}.` }, 404));
  app.all("*", async (c) => {
    const req = c.req.raw;
    const url = new URL(req.url);
    const decision = faults.decide(req.method, url.pathname, url.search);
    const res = await faults.apply(decision, async () => api.fetch(req));
    counts.add(req.method, url.pathname + url.search);
    requests.push({
      method: req.method,
      path: decodeURIComponent(url.pathname + url.search),
      status: res.status,
      ...(decision.fired.length ? { fault: decision.fired.join(",") } : {}),
    });
    return res;
  });

  function state() {
    return {
      profile,
      tokensIssued: identity.issued,
      tokensRejected: identity.rejected,
      requests,
      faults: faults.list(),
      companies: Object.fromEntries(
        [...stores].map(([key, s]) => [
          key,
          {
            name: s.company.Name,
            counts: Object.fromEntries(Object.entries(s.rows).map(([k, v]) => [k, v.length])),
            customers: s.rows.customers,
            projects: s.rows.projects,
            products: s.rows.products,
            invoices: s.rows.invoices,
            journalentries: s.rows.journalentries,
            files: s.rows.files,
            fileLinks: s.fileLinks,
          },
        ]),
      ),
    };
  }

  function reset() {
    freshStores();
    faults.clear();
    requests = [];
    counts.clear();
    identity.resetCounters();
  }

  return {
    app,
    fetch: (req: Request) => app.fetch(req),
    identity,
    faults,
    /** Credentials of the generated demo client, when no clients were configured. */
    demo,
    companies,
    store: (key: string = companies[0]!.Key) => stores.get(key)!,
    state,
    reset,
  };
}
export type UniMicroSandbox = ReturnType<typeof createUniMicroSandbox>;

export function startUniMicroSandbox(opts: UniMicroSandboxOptions & { port?: number; hostname?: string } = {}) {
  const sandbox = createUniMicroSandbox(opts);
  const server = Bun.serve({ port: opts.port ?? 0, hostname: opts.hostname ?? "127.0.0.1", fetch: sandbox.fetch });
  const url = `http://${server.hostname}:${server.port}`;
  return { url, sandbox, server, stop: () => server.stop(true) };
}

if (import.meta.main) {
  const profile = (process.argv[2] ?? "dnb-regnskap") as Profile;
  const { url, sandbox } = startUniMicroSandbox({ port: Number(process.env.PORT ?? 8792), profile });
  const keyPath = join(tmpdir(), "kontobro-unimicro-sandbox-key.pem");
  writeFileSync(keyPath, sandbox.demo!.privateKeyPem, { mode: 0o600 });
  const platform = profile === "unimicro" ? "custom" : profile;
  console.log(
    `Uni Micro sandbox (${profile}) on ${url}\n\n[[targets]]\nname = "unimicro-sandbox"\nkind = "unimicro"\nplatform = "${platform}"\nbase_url = "${url}"\nidentity_url = "${url}/connect/token"\nclient_id = "${DEMO_CLIENT_ID}"\nprivate_key = "${keyPath}"\ncompany_key = "${DEMO_COMPANY.Key}"\naccounts = { hours = 3000, expenses = 3400, products = 3000 }\nvat_codes = { hours = "3", expenses = "3", products = "3" }\nproduct_numbers = { hours = "1", expenses = "2", products = "3" }\n`,
  );
}
