// OAuth tokens on both engines (issue 17), against the eAccounting sandbox's identity server over loopback: two workers
// (on PostgreSQL each a connection pool of its own, as two `kontobro run` processes; on SQLite two connectors sharing
// the data directory) refreshing one tenant's token at the same moment make one refresh call, and both go on with the
// new token; so do two workers whose first refresh uses the configuration's bootstrap refresh token; a refused refresh
// token becomes the stored reconnect state with one call. On PostgreSQL: an invoice booked at the target with the
// tenant's tokens (another tenant reads none of them), and `kontobro tenant connect` (errors for a tenant or target
// that does not exist, the tokens stored in the tenant's rows), `kontobro connect` pointing there, `kontobro tenant set`.
import { describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { storedCredentials, tenantCredentialStore } from "../agent/credentials.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { silentLogger } from "../agent/log.ts";
import type { CredentialStore } from "../connectors/contract.ts";
import { tokenUrl } from "../connectors/eaccounting/config.ts";
import type { EaccountingConnector } from "../connectors/eaccounting/connector.ts";
import { eaccounting } from "../connectors/eaccounting/index.ts";
import { startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";
import { type EngineStorage, workerEngines } from "./engines.ts";
import * as fx from "./eaccounting-fixtures.ts";
import { targetConfig } from "./eaccounting-fixtures.ts";
import { tempDir } from "./helpers.ts";

const ROOT = resolve(import.meta.dir, "..");
const { engines, open } = workerEngines("OAuth tokens of hosted tenants");

type Sandbox = ReturnType<typeof startEaccountingSandbox>;

async function control(srv: Sandbox, path: string, body: unknown = {}) {
  const res = await fetch(`${srv.url}/__sandbox/${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  return (await res.json()) as any;
}

/** Requests that reached the identity server's token endpoint. */
const tokenCalls = (srv: Sandbox) => srv.sandbox.state().requests.filter((r) => r.path.startsWith("/connect/token")).length;

/** The target's credential store on a worker's runner, as that engine's agent makes it. */
function storeOn(s: EngineStorage, runner: SqlRunner): CredentialStore {
  return s.engine === "sqlite" ? storedCredentials(runner, "ledger", { lockFile: s.dataDir }) : tenantCredentialStore(runner, "ledger");
}

function connectorWith(srv: Sandbox, store: CredentialStore, over: Record<string, unknown> = {}, signIn?: string): EaccountingConnector {
  const cfg = eaccounting.configSchema.parse(targetConfig(srv.url, { refresh_token: undefined, ...over }));
  return eaccounting.create("ledger", cfg, {
    log: silentLogger,
    credentials: store,
    ...(signIn ? { signIn } : {}),
  }) as EaccountingConnector;
}

/** How the engine's agent says to sign the target in again: a hosted tenant's command names the tenant. */
const signInOn = (s: EngineStorage) => (s.engine === "sqlite" ? undefined : "kontobro tenant connect initech ledger");

/** A sandbox whose token endpoint answers slowly, so that two refreshes started together overlap. */
async function slowTokenSandbox(): Promise<Sandbox> {
  const srv = startEaccountingSandbox();
  await control(srv, "faults", { path: "^/connect/token", fault: "latency", latencyMs: 400, count: 10 });
  return srv;
}

describe.each(engines)("OAuth tokens on %s", (engine) => {
  test("two workers refresh the tenant's expired token at the same moment: one refresh call, both go on with the new token", async () => {
    const s = await open(engine);
    const srv = await slowTokenSandbox();
    try {
      const { refresh_token } = await control(srv, "oauth/grant");
      const [a, b] = [storeOn(s, s.storage), storeOn(s, await s.worker())];
      await a.write({
        issuer: tokenUrl(eaccounting.configSchema.parse(targetConfig(srv.url))),
        clientId: "kontobro-sandbox",
        refreshToken: refresh_token,
        accessToken: null,
        accessExpiresAt: null,
        scope: null,
        state: "connected",
        problem: null,
      });
      const [ca, cb] = [connectorWith(srv, a), connectorWith(srv, b)];
      const answers = await Promise.all([ca.client.get("/customers"), cb.client.get("/customers"), cb.client.get("/units")]);
      for (const answer of answers) expect(answer.Meta).toBeDefined();
      expect(tokenCalls(srv)).toBe(1);
      expect(srv.sandbox.identity.stats).toMatchObject({ refreshed: 1, reused: 0, rejected: 0 });
      const stored = (await b.read())!;
      expect(stored.refreshToken).not.toBe(refresh_token);
      expect([await ca.tokens.get(), await cb.tokens.get()]).toEqual([stored.accessToken!, stored.accessToken!]);
      expect((await control(srv, "oauth/check", { refreshToken: refresh_token })).valid).toBe(false);
      expect((await control(srv, "oauth/check", { refreshToken: stored.refreshToken })).valid).toBe(true);
    } finally {
      await srv.stop();
    }
  }, 30_000);

  test("nothing stored yet: the configuration's bootstrap refresh token is used once by two workers starting together", async () => {
    const s = await open(engine);
    const srv = await slowTokenSandbox();
    try {
      const { refresh_token } = await control(srv, "oauth/grant");
      const a = storeOn(s, s.storage);
      const workers = [connectorWith(srv, a, { refresh_token }), connectorWith(srv, storeOn(s, await s.worker()), { refresh_token })];
      await Promise.all(workers.map((c) => c.client.get("/customers")));
      expect(tokenCalls(srv)).toBe(1);
      expect(srv.sandbox.identity.stats).toMatchObject({ refreshed: 1, reused: 0 });
      expect(await a.read()).toMatchObject({ state: "connected", issuer: expect.stringContaining("/connect/token") });
      // The row a refresh locks while nothing is stored is never left behind (nor seen by anyone).
      expect(await s.storage.all("SELECT target FROM credentials WHERE issuer = ''")).toEqual([]);
    } finally {
      await srv.stop();
    }
  }, 30_000);

  test("a refused refresh token: one call, and the reconnect state is stored though the refresh threw; both workers say reconnect, naming the engine's sign-in command", async () => {
    const s = await open(engine);
    const srv = await slowTokenSandbox();
    try {
      const { refresh_token } = await control(srv, "oauth/grant");
      await control(srv, "oauth/revoke");
      const a = storeOn(s, s.storage);
      const signIn = signInOn(s);
      const workers = [
        connectorWith(srv, a, { refresh_token }, signIn),
        connectorWith(srv, storeOn(s, await s.worker()), { refresh_token }, signIn),
      ];
      const results = await Promise.allSettled(workers.map((c) => c.client.get("/customers")));
      const command = signIn ?? "kontobro connect ledger";
      for (const r of results) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toMatchObject({
          code: "eaccounting.reconnect",
          hint: expect.stringContaining(`Run \`${command}\``),
        });
      }
      expect(tokenCalls(srv)).toBe(1);
      expect(await a.read()).toMatchObject({ state: "reconnect", problem: expect.stringContaining("invalid_grant") });
      for (const c of workers)
        expect((await c.check())[0]).toMatchObject({ ok: false, name: "authorisation", hint: expect.stringContaining(command) });
    } finally {
      await srv.stop();
    }
  }, 30_000);
});

const pgOnly = engines.includes("postgres") ? describe : describe.skip;

pgOnly("OAuth targets of hosted tenants (PostgreSQL)", () => {
  test("an invoice is booked with the tenant's tokens; another tenant reads none of them", async () => {
    const s = await open("postgres");
    const other = await open("postgres");
    const srv = startEaccountingSandbox();
    try {
      const { refresh_token } = await control(srv, "oauth/grant");
      const store = tenantCredentialStore(s.storage, "ledger");
      const connector = connectorWith(srv, store, { refresh_token });
      const customer = await connector.push("customer", fx.customer(), fx.ctx());
      await connector.push("project", fx.project(), fx.ctx());
      const booked = await connector.push("invoice", fx.invoice(), fx.ctx({ record: fx.related({ customer: fx.customer() }) }));
      expect(customer.remoteId).toBeTruthy();
      expect(booked.remoteId).toBeTruthy();
      expect(srv.sandbox.state().drafts.length).toBe(1);
      expect((await store.read())!.state).toBe("connected");
      expect(await tenantCredentialStore(other.storage, "ledger").read()).toBeNull();
    } finally {
      await srv.stop();
    }
  }, 30_000);

  test("kontobro tenant connect and tenant set: a clear error for a tenant or target that does not exist; the tokens go to the tenant's rows; a refused configuration stores nothing", async () => {
    const s = await open("postgres");
    const dir = tempDir("kontobro-tenant-connect-");
    const srv = startEaccountingSandbox();
    try {
      const pg = s.server!;
      const config = join(dir, "kontobro.toml");
      writeFileSync(config, `[agent]\ndata_dir = "${join(dir, "data")}"\n\n[storage]\nurl = "${pg.url}"\n`);
      const tenantFile = join(dir, "initech.toml");
      const redirect = "http://127.0.0.1:9/callback";
      const ledger = targetConfig(srv.url, { refresh_token: undefined, redirect_uri: redirect });
      writeFileSync(
        tenantFile,
        `[[targets]]\nname = "ledger"\nkind = "eaccounting"\n${Object.entries(ledger)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
          .join("\n")}\n\n[[targets]]\nname = "books"\nkind = "economic"\napp_secret_token = "x"\nagreement_grant_token = "y"\n`,
      );
      // Spawned, not spawnSync: the sandbox answering the command runs in this process.
      const cli = async (...args: string[]) => {
        const p = Bun.spawn([process.execPath, "agent/main.ts", ...args, "--config", config], {
          cwd: ROOT,
          stdin: "ignore",
          stdout: "pipe",
          stderr: "pipe",
        });
        const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        return { code, out, err };
      };
      const added = await cli("tenant", "add", "initech", "--file", tenantFile);
      expect(added.err).toBe("");
      expect(added.code).toBe(0);

      // The refusals, at once (each a process of its own).
      const [noTenant, noTarget, notOauth, single] = await Promise.all([
        cli("tenant", "connect", "nosuch", "ledger", "--code", "abc"),
        cli("tenant", "connect", "initech", "nosuch", "--code", "abc"),
        cli("tenant", "connect", "initech", "books", "--code", "abc"),
        cli("connect", "ledger"),
      ]);
      expect(noTenant.code).not.toBe(0);
      expect(noTenant.err).toContain('there is no tenant "nosuch"');
      expect(noTarget.code).toBe(2);
      expect(noTarget.err).toContain('tenant initech has no target "nosuch"; its targets that sign in with OAuth: ledger');
      expect(notOauth.code).toBe(2);
      expect(notOauth.err).toContain('a target "books", but it does not sign in with OAuth');
      expect(single.code).toBe(2);
      expect(single.err).toContain("kontobro tenant connect SLUG ledger");

      // The browser's part: the consent screen sends it back to the redirect URI with a code.
      const q = new URLSearchParams({
        client_id: "kontobro-sandbox",
        redirect_uri: redirect,
        response_type: "code",
        scope: "ea:api offline_access ea:sales ea:accounting ea:purchase",
        state: "s",
      });
      const consent = await fetch(`${srv.url}/connect/authorize?${q}`, { redirect: "manual" });
      const connected = await cli("tenant", "connect", "initech", "ledger", "--code", consent.headers.get("location")!);
      expect(connected.out).toContain("Connected ledger; the tokens are stored in tenant initech's rows in PostgreSQL");
      expect(connected.out).toContain("ok   company");
      expect(connected.code).toBe(0);
      const admin = new SQL(pg.adminUrl);
      try {
        const rows =
          await admin`SELECT t.slug, c.target, c.state FROM credentials c JOIN tenants t ON t.id = c.tenant_id WHERE t.slug = 'initech'`;
        expect(rows.map((r: any) => ({ ...r }))).toEqual([{ slug: "initech", target: "ledger", state: "connected" }]);

        // kontobro tenant set: checked as tenant add checks, nothing stored when refused.
        const storedConfig = async () => (await admin`SELECT config FROM tenants WHERE slug = 'initech'`)[0].config;
        const before = await storedConfig();
        const badFile = join(dir, "bad.toml");
        writeFileSync(badFile, `[[targets]]\nname = "books"\nkind = "nosuchkind"\n\n[http]\nport = 1\n`);
        const [bad, noFile, noSuch] = await Promise.all([
          cli("tenant", "set", "initech", "--file", badFile),
          cli("tenant", "set", "initech"),
          cli("tenant", "set", "nosuch", "--file", tenantFile),
        ]);
        expect(bad.code).toBe(2);
        expect(bad.err).toContain("http: is set for the whole installation");
        expect(noFile.err).toContain("--file FILE is required");
        expect(noSuch.err).toContain('there is no tenant "nosuch"');
        expect(await storedConfig()).toBe(before);
        const onlyLedger = join(dir, "only-ledger.toml");
        writeFileSync(onlyLedger, readFileSync(tenantFile, "utf8").split("\n\n[[targets]]")[0]!);
        const set = await cli("tenant", "set", "initech", "--file", onlyLedger);
        expect(set.out).toContain("Tenant initech changed; targets: ledger (eaccounting). Every worker restarts it now.");
        expect(set.code).toBe(0);
        expect(JSON.parse(await storedConfig()).targets.map((t: any) => t.name)).toEqual(["ledger"]);
      } finally {
        await admin.close();
      }
    } finally {
      await srv.stop();
    }
  }, 180_000);
});
