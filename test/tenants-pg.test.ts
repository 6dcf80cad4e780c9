// Tenants on a real PostgreSQL server (issue 17; test/pg-server.ts): added with a validated slug and a
// configuration checked by kontobro.toml's own validators, their tokens shown once and stored as hashes, an
// API token resolves its tenant, a disabled tenant's API answers 403, and removing a tenant deletes its rows
// in every tenant table and nothing of another tenant's. Through the store and through the admin API over HTTP.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { Hono } from "hono";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { postgresRunner } from "../agent/db/pg/runner.ts";
import { adminRoutes } from "../agent/http/admin-api.ts";
import { requireTenant, type TenantVariables } from "../agent/http/tenant-auth.ts";
import { TenantError } from "../agent/tenants/errors.ts";
import { TENANTS_CHANNEL, TenantStore } from "../agent/tenants/store.ts";
import { TENANT_TABLES } from "../agent/tenants/tables.ts";
import { tokenHash } from "../agent/tenants/tokens.ts";
import { waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`Tenant tests on PostgreSQL skipped: ${unavailable}`);

let server: PgServer;
let client: SQL;
/** The superuser: reads across tenants, as no tenant can. */
let su: SQL;
let store: TenantStore;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  client = new SQL({ url: server.url, max: 4 });
  su = new SQL({ url: server.adminUrl, max: 1 });
  await migratePostgres(client, embeddedMigrations);
  store = new TenantStore(client);
}, 120_000);
afterAll(async () => {
  await client?.close();
  await su?.close();
  await server?.stop();
});

/** A tenant's configuration as `kontobro tenant add` reads it: kontobro.toml's keys. */
const configOf = (secret = "tenants-pg-app-secret") => ({
  targets: [
    { name: "books", kind: "economic", app_secret_token: secret, agreement_grant_token: "tenants-pg-grant" },
    { name: "ledger", kind: "uniconta", company_id: 7, username: "u", password: "p" },
  ],
  psa: { webhook_url: "https://psa.example.com/hooks/kontobro", webhook_secret: "tenants-pg-psa-secret" },
});

/** What the store refuses: the TenantError's code and problems. */
async function refusal(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    if (e instanceof TenantError) return { code: e.code, problems: e.problems };
    throw e;
  }
  throw new Error("expected a TenantError");
}

const rowsOf = async (tenantId: number) => {
  let n = 0;
  for (const table of TENANT_TABLES)
    n += (await su.unsafe(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [tenantId]))[0].n;
  return n;
};

describe.skipIf(!!unavailable)("tenants in the store", () => {
  test("slug and configuration are validated before anything is stored, naming the key", async () => {
    for (const slug of ["Acme", "acme_x", "-acme", "acme-", "", "a".repeat(41), "acme corp"]) {
      expect(await refusal(store.add({ slug, config: configOf() }, {}))).toEqual({ code: "invalid_slug", problems: [] });
    }
    expect(await refusal(store.add({ slug: "acme", config: { ...configOf(), http: { port: 1 }, colour: "red" } }, {}))).toEqual({
      code: "invalid_config",
      problems: [
        "http: is set for the whole installation in kontobro.toml, not per tenant; remove it from the tenant's configuration",
        "colour: unknown key; a tenant's configuration holds only targets, psa, exports, notifications",
      ],
    });
    const badTarget = {
      targets: [
        { name: "books", kind: "economic", agreement_grant_token: "g" },
        { name: "x", kind: "nope" },
      ],
    };
    const bad = await refusal(store.add({ slug: "acme", config: badTarget }, {}));
    expect(bad.code).toBe("invalid_config");
    expect(bad.problems).toContainEqual(expect.stringMatching(/^targets\[0\]\.app_secret_token: /));
    expect(bad.problems).toContainEqual(expect.stringMatching(/^targets\[1\]\.kind: unknown kind "nope"/));
    expect(await refusal(store.add({ slug: "acme", config: configOf("${ACME_SECRET}") }, {}))).toEqual({
      code: "invalid_config",
      problems: ["targets[0].app_secret_token: environment variable ACME_SECRET is not set (export it, or write the value in the file)"],
    });
    expect(await store.list()).toEqual([]);
  });

  test("the tokens are shown once and stored as sha256; the API token resolves its tenant", async () => {
    const added = await store.add(
      { slug: "acme", name: "Acme A/S", config: configOf("${ACME_SECRET}") },
      { ACME_SECRET: "tenants-pg-from-env" },
    );
    expect(added.apiToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Only the target whose connector takes webhook hints gets a webhook token.
    expect(Object.keys(added.webhookTokens)).toEqual(["books"]);
    expect(added.tenant).toMatchObject({ slug: "acme", name: "Acme A/S", state: "active" });
    expect(added.tenant.targets).toEqual([
      { name: "books", kind: "economic" },
      { name: "ledger", kind: "uniconta" },
    ]);
    const [row] = await su`SELECT * FROM tenants WHERE slug = 'acme'`;
    expect(row.api_token_hash).toBe(tokenHash(added.apiToken));
    // ${NAME} was resolved when the tenant was added: every worker reads the same value without the environment.
    expect(JSON.parse(row.config).targets[0].app_secret_token).toBe("tenants-pg-from-env");
    // The API token itself is nowhere in the database; the webhook token is in the tenant's own settings, where its
    // workers check it (and its API lists it again), and nowhere else.
    const dump = JSON.stringify(await su`SELECT * FROM tenants`);
    expect(dump).not.toContain(added.apiToken);
    expect(dump).not.toContain(added.webhookTokens.books!);
    // The tenants row holds no webhook token column of its own (tenants.webhook_token_hashes was never read: 0009).
    expect(Object.keys(row).sort()).toEqual(["api_token_hash", "config", "created_at", "id", "name", "slug", "state", "updated_at"]);
    expect(await su`SELECT tenant_id, name, value FROM settings WHERE value = ${added.webhookTokens.books!}`).toEqual([
      { tenant_id: added.tenant.id, name: "webhook_token:books", value: added.webhookTokens.books! },
    ]);

    expect(await store.resolveApiToken(added.apiToken)).toEqual({
      id: added.tenant.id,
      slug: "acme",
      state: "active",
      updatedAt: added.tenant.updatedAt,
    });
    expect(await store.resolveApiToken(`${added.apiToken}x`)).toBeNull();
    expect(await store.resolveApiToken(tokenHash(added.apiToken))).toBeNull();
    expect(await refusal(store.add({ slug: "acme", config: {} }, {}))).toEqual({ code: "duplicate_slug", problems: [] });
  });

  test("two rotations of an API token at once: one is refused, so no caller is shown a token already replaced", async () => {
    const added = await store.add({ slug: "rotating", config: configOf() }, {});
    // Both rotations read the token, then wait at their UPDATE for the row this transaction holds.
    // (Returned in an object: a transaction's callback that returns an array has its promises awaited inside it.)
    const { settling, waited } = await su.begin(async (tx) => {
      await tx`SELECT 1 FROM tenants WHERE slug = 'rotating' FOR UPDATE`;
      // Settled from the start: a rotation that ends early is seen here, not as an unhandled rejection.
      const settling = Promise.allSettled([store.rotateApiToken("rotating"), store.rotateApiToken("rotating")]);
      let waited = 0;
      for (let i = 0; i < 600 && waited < 2; i++) {
        const [{ n }] = await tx`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'`; // (its query text lags)
        waited = n;
        if (n < 2) await Bun.sleep(25);
      }
      return { settling, waited };
    });
    expect(waited).toBe(2);
    const settled = await settling;
    const won = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const lost = settled.flatMap((s) => (s.status === "rejected" ? [s.reason] : []));
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toBeInstanceOf(TenantError);
    expect(lost[0].code).toBe("token_rotated");
    expect(lost[0].message).toContain("rotated by another request at the same time");
    // The token shown is the one that works; the first one is refused.
    expect((await store.resolveApiToken(won[0]!.apiToken))?.slug).toBe("rotating");
    expect(await store.resolveApiToken(added.apiToken)).toBeNull();
  });

  test("a second tenant cannot see the first's rows, and removing the first leaves the second's", async () => {
    const a = await store.add({ slug: "tenant-a", config: configOf() }, {});
    const b = await store.add({ slug: "tenant-b", config: configOf() }, {});
    const seed = async (tenant: number, key: string) => {
      const db = postgresRunner(client, tenant);
      await db.transaction(async (tx) => {
        const ev = await tx.get<{ seq: number }>(
          `INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES ('e-1', 'customer.upserted', 'customer', ?1, '{}', 1) RETURNING seq`,
          key,
        );
        await tx.run(
          `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at) VALUES (?1, 'books', 'customer', ?2, 'pending', 1, 1, 1)`,
          ev!.seq,
          key,
        );
        await tx.run(`INSERT INTO cursors (target, stream, value, updated_at) VALUES ('books', 'expenses', ?1, 1)`, key);
        await tx.run(`INSERT INTO settings (name, value) VALUES ('api_token', ?1)`, key);
      });
    };
    await seed(a.tenant.id, "a-1000");
    const reads =
      "SELECT e.key FROM events e JOIN deliveries d ON d.event_seq = e.seq UNION ALL SELECT value FROM cursors UNION ALL SELECT value FROM settings WHERE name = 'api_token'";
    expect(await postgresRunner(client, a.tenant.id).all(reads)).toHaveLength(3);
    // B sees nothing of A's, and cannot change or delete it.
    const asB = postgresRunner(client, b.tenant.id);
    expect(await asB.all(reads)).toEqual([]);
    expect(await asB.run("UPDATE cursors SET value = 'x'")).toEqual({ changes: 0 });
    expect(await asB.run("DELETE FROM events")).toEqual({ changes: 0 });
    await seed(b.tenant.id, "b-2000");
    expect((await asB.all<{ key: string }>(reads)).map((r) => r.key)).toEqual(["b-2000", "b-2000", "b-2000"]);

    expect(await refusal(store.remove("tenant-a"))).toEqual({ code: "still_active", problems: [] });
    // Its rows: the event, delivery, cursor and setting seeded, and its target's webhook token (kept by tenant add).
    expect(await rowsOf(a.tenant.id)).toBe(5);
    expect((await store.setState("tenant-a", "disabled")).state).toBe("disabled");
    // The seeded delivery was pending: it goes undelivered, and the removal says so.
    expect(await store.remove("tenant-a")).toEqual({ slug: "tenant-a", rows: 5, dropped: [{ target: "books", n: 1 }] });
    expect(await rowsOf(a.tenant.id)).toBe(0);
    expect(await su`SELECT slug FROM tenants WHERE id = ${a.tenant.id}`).toEqual([]);
    expect(await rowsOf(b.tenant.id)).toBe(5);
    expect((await asB.all<{ key: string }>(reads)).map((r) => r.key)).toEqual(["b-2000", "b-2000", "b-2000"]);
    expect(await refusal(store.remove("tenant-a"))).toEqual({ code: "not_found", problems: [] });
  });

  test("every change of a tenant is announced to the workers at its commit (LISTEN kontobro_tenants), a refused one not", async () => {
    const listener = new SQL({ url: server.url, max: 1 });
    const heard: string[] = [];
    const subscription = await listener.listen(TENANTS_CHANNEL, (payload) => heard.push(payload));
    try {
      const { tenant } = await store.add({ slug: "announced", config: configOf() }, {});
      await store.setState("announced", "disabled");
      await store.setState("announced", "active");
      expect(await refusal(store.remove("announced"))).toMatchObject({ code: "still_active" });
      expect(await refusal(store.add({ slug: "announced", config: configOf() }, {}))).toMatchObject({ code: "duplicate_slug" });
      await store.setState("announced", "disabled");
      await store.remove("announced");
      const id = String(tenant.id);
      await waitFor("five announcements", () => heard.length >= 5);
      // The refused remove and the duplicate add announced nothing.
      await client`SELECT pg_notify(${TENANTS_CHANNEL}, 'flush')`;
      await waitFor("the flush", () => heard.includes("flush"));
      expect(heard).toEqual([id, id, id, id, id, "flush"]);
    } finally {
      await subscription.unlisten();
      await listener.close();
    }
  });

  test("every tenant table comes before the tables it references, and all of them are in the list", async () => {
    const tables = await su`SELECT c.relname AS name FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attname = 'tenant_id' ORDER BY 1`;
    expect([...TENANT_TABLES].sort()).toEqual(tables.map((t: { name: string }) => t.name));
    const fks = await su`SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent FROM pg_constraint c
      WHERE c.contype = 'f' AND c.confrelid <> 'tenants'::regclass`;
    expect(fks.length).toBeGreaterThan(0);
    for (const { child, parent } of fks) expect(TENANT_TABLES.indexOf(child)).toBeLessThan(TENANT_TABLES.indexOf(parent));
  });
});

/** Serves `app` on a free loopback port; a fetch helper for it. */
function serve(app: Hono) {
  const srv = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  const call = async (method: string, path: string, opts: { token?: string; body?: unknown } = {}) => {
    const res = await fetch(`http://127.0.0.1:${srv.port}${path}`, {
      method,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any, headers: res.headers };
  };
  return { call, stop: () => srv.stop(true) };
}

describe.skipIf(!!unavailable)("the admin API and a tenant's API token over HTTP", () => {
  const ADMIN = "admin-token-0123456789abcdef";

  test("add, list, disable, enable and remove through /admin/v1; a disabled tenant's API answers 403", async () => {
    const app = new Hono();
    app.route("/admin/v1", adminRoutes({ token: ADMIN, tenants: store }));
    // A tenant's API (the later /api/v1 per tenant): the tenant is the token's.
    const tenantApi = new Hono<{ Variables: TenantVariables }>();
    tenantApi.use(
      "*",
      requireTenant((t) => store.resolveApiToken(t)),
    );
    tenantApi.get("/whoami", (c) => c.json({ slug: c.get("tenant").slug }));
    app.route("/api/v1", tenantApi);
    const { call, stop } = serve(app);
    try {
      expect((await call("GET", "/admin/v1/tenants")).status).toBe(401);
      const wrong = await call("GET", "/admin/v1/tenants", { token: "not-the-admin-token" });
      expect([wrong.status, wrong.body.hint]).toEqual([401, expect.stringContaining("[admin] token_file")]);

      const added = await call("POST", "/admin/v1/tenants", { token: ADMIN, body: { slug: "globex", name: "Globex", config: configOf() } });
      expect(added.status).toBe(201);
      expect(added.headers.get("cache-control")).toBe("no-store");
      expect(added.body.tenant).toMatchObject({
        slug: "globex",
        name: "Globex",
        state: "active",
        targets: [{ name: "books" }, { name: "ledger" }],
      });
      expect(Object.keys(added.body.webhookTokens)).toEqual(["books"]);
      const token: string = added.body.apiToken;
      // A tenant's token is not the admin's.
      expect((await call("GET", "/admin/v1/tenants", { token })).status).toBe(401);
      expect(await call("GET", "/api/v1/whoami", { token })).toMatchObject({ status: 200, body: { slug: "globex" } });
      expect((await call("GET", "/api/v1/whoami", { token: ADMIN })).status).toBe(401);

      const list = await call("GET", "/admin/v1/tenants", { token: ADMIN });
      const globex = list.body.tenants.find((t: any) => t.slug === "globex");
      expect(globex).toEqual({
        slug: "globex",
        name: "Globex",
        state: "active",
        targets: [
          { name: "books", kind: "economic" },
          { name: "ledger", kind: "uniconta" },
        ],
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        updatedAt: expect.any(String),
      });
      // No secret in the listing: neither the targets' nor the tokens or their hashes.
      expect(JSON.stringify(list.body)).not.toMatch(/app-secret|tenants-pg-grant|psa-secret|token/i);

      const badSlug = await call("POST", "/admin/v1/tenants", { token: ADMIN, body: { slug: "Globex Inc", config: {} } });
      expect([badSlug.status, badSlug.body.error, badSlug.body.hint]).toEqual([
        400,
        "invalid_slug",
        expect.stringContaining("lowercase letters"),
      ]);
      const dup = await call("POST", "/admin/v1/tenants", { token: ADMIN, body: { slug: "globex", config: {} } });
      expect([dup.status, dup.body.error]).toEqual([409, "duplicate_slug"]);
      const badConfig = await call("POST", "/admin/v1/tenants", {
        token: ADMIN,
        body: {
          slug: "initech",
          config: { targets: [{ name: "books", kind: "economic", app_secret_token: "s", agreement_grant_token: "g", vat_zone: "x" }] },
        },
      });
      expect([badConfig.status, badConfig.body.error]).toEqual([422, "invalid_config"]);
      expect(badConfig.body.problems).toEqual([expect.stringMatching(/^targets\[0\]\.vat_zone: /)]);
      const noConfig = await call("POST", "/admin/v1/tenants", { token: ADMIN, body: { slug: "initech", extra: 1 } });
      expect([noConfig.status, noConfig.body.problems]).toEqual([
        400,
        ["config: Invalid input: expected record, received undefined", "(body): unknown key(s) extra"],
      ]);
      expect((await store.get("initech")) ?? "not stored").toBe("not stored");

      expect((await call("DELETE", "/admin/v1/tenants/globex", { token: ADMIN })).body.error).toBe("still_active");
      const disabled = await call("POST", "/admin/v1/tenants/globex/disable", { token: ADMIN });
      expect([disabled.status, disabled.body.tenant.state]).toEqual([200, "disabled"]);
      const refused = await call("GET", "/api/v1/whoami", { token });
      expect([refused.status, refused.body.error, refused.body.message]).toEqual([
        403,
        "tenant_disabled",
        'Tenant "globex" is disabled: its API takes no requests and nothing of it is being sent.',
      ]);
      expect((await call("POST", "/admin/v1/tenants/globex/enable", { token: ADMIN })).body.tenant.state).toBe("active");
      expect((await call("GET", "/api/v1/whoami", { token })).status).toBe(200);
      await call("POST", "/admin/v1/tenants/globex/disable", { token: ADMIN });
      const removed = await call("DELETE", "/admin/v1/tenants/globex", { token: ADMIN });
      // Its one row: its target's webhook token.
      expect([removed.status, removed.body]).toEqual([200, { removed: { slug: "globex", rows: 1, dropped: [] } }]);
      expect((await call("GET", "/api/v1/whoami", { token })).status).toBe(401);
      const gone = await call("DELETE", "/admin/v1/tenants/globex", { token: ADMIN });
      expect([gone.status, gone.body.error]).toEqual([404, "not_found"]);
      expect((await call("POST", "/admin/v1/tenants/nobody/disable", { token: ADMIN })).status).toBe(404);
    } finally {
      stop();
    }
  });
});
