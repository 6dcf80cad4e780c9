// Master data per entity on hosted workers (issue 17): two real `kontobro run` processes on one real PostgreSQL
// server (test/pg-server.ts), a tenant added with the real `kontobro tenant add` whose target is Visma eAccounting
// (its sandbox and the tenant's PSA webhook over loopback), its OAuth tokens in the tenant's credentials rows as
// `kontobro tenant connect` stores them. An invoice whose customer is new is booked through a worker: the customer is
// created by master per entity and remembered in the tenant's master_records, the invoice a draft for it. An article
// eAccounting owns comes back by the pull run on the other worker and reaches the tenant's PSA; a change made in
// eAccounting to the customer (the PSA is master) is reported once on the tenant's status page, not delivered.
// Before master data ran on PostgreSQL the target was held: its deliveries stayed pending and nothing was booked.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tenantCredentialStore } from "../agent/credentials.ts";
import { postgresRunner } from "../agent/db/pg/runner.ts";
import { eaccounting } from "../connectors/eaccounting/index.ts";
import { tokenUrl } from "../connectors/eaccounting/config.ts";
import { startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";
import { customerData, invoiceData, projectData, targetConfig } from "./eaccounting-fixtures.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { freePort, type RunningWorker, startWorkerProcess, writeWorkerConfig } from "./hosted-process.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";
import { startPsaReceiver } from "./pull-harness.ts";

const ROOT = resolve(import.meta.dir, "..");
const unavailable = pgUnavailable();
if (unavailable) console.warn(`master data on hosted workers skipped: ${unavailable}`);

const dir = tempDir("kontobro-hosted-master-");
const PSA_SECRET = "initech-psa-secret-0123456789";
let server: PgServer;
let admin: SQL;
let app: SQL;
let sandbox: ReturnType<typeof startEaccountingSandbox>;
let psa: ReturnType<typeof startPsaReceiver>;
const workers: RunningWorker[] = [];
let token = "";

function workerConfig(name: string, port: number): string {
  return writeWorkerConfig(dir, name, server.url, port);
}

/** The tenant's file: its PSA webhook, and the eAccounting target without a refresh token (it is connected apart). */
function tenantFile(): string {
  const ledger = targetConfig(sandbox.url, { refresh_token: undefined });
  const settings = Object.entries(ledger)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join("\n");
  // Pulls only when asked (run now), never on a schedule.
  const pulls = ["customers", "products", "invoices", "expenses"]
    .map((s) => `[targets.pulls.${s}]\ncron = "0 0 1 1 *"\ntimezone = "Europe/Stockholm"\nenabled = false`)
    .join("\n\n");
  const file = join(dir, "initech.toml");
  writeFileSync(
    file,
    `[psa]
webhook_url = "${psa.url}"
webhook_secret = "${PSA_SECRET}"
retry_base_ms = 20
retry_max_ms = 200
poll_ms = 50

[[targets]]
name = "ledger"
kind = "eaccounting"
${settings}

${pulls}
`,
  );
  return file;
}

async function api(worker: RunningWorker, path: string, init: RequestInit = {}) {
  const res = await fetch(`${worker.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(init.headers as Record<string, string>) },
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function control(path: string, body?: unknown, method = body === undefined ? "GET" : "POST") {
  const res = await fetch(`${sandbox.url}/__sandbox/${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  const out = (await res.json()) as any;
  if (res.status >= 300) throw new Error(`sandbox ${path}: ${res.status} ${JSON.stringify(out)}`);
  return out;
}

const masterRows = () =>
  admin`SELECT m.entity, m.key, m.remote_id AS "remoteId", m.pending_fingerprint AS pending FROM master_records m
        JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = 'initech' ORDER BY m.entity, m.key`;
const openReports = () =>
  admin`SELECT r.entity, r.key, r.kind, r.count::int AS count FROM master_reports r JOIN tenants t ON t.id = r.tenant_id
        WHERE t.slug = 'initech' AND r.resolved_at IS NULL AND r.kind <> 'attention' ORDER BY r.entity, r.key`;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  admin = new SQL({ url: server.adminUrl, max: 1 });
  sandbox = startEaccountingSandbox();
  psa = startPsaReceiver(PSA_SECRET);
  const added = Bun.spawnSync(
    [process.execPath, "agent/main.ts", "tenant", "add", "initech", "--file", tenantFile(), "--config", workerConfig("cli", 0)],
    { cwd: ROOT },
  );
  if (added.exitCode !== 0) throw new Error(`tenant add failed: ${added.stderr.toString()}`);
  token = /shown only now[^\n]*\n {2}(\S+)/.exec(added.stdout.toString())![1]!;
  // Connected as `kontobro tenant connect` leaves it: the grant's tokens in the tenant's credentials row.
  const { refresh_token } = await control("oauth/grant", {});
  app = new SQL({ url: server.url, max: 2 });
  const [{ id }] = await admin`SELECT id FROM tenants WHERE slug = 'initech'`;
  await tenantCredentialStore(postgresRunner(app, Number(id)), "ledger").write({
    issuer: tokenUrl(eaccounting.configSchema.parse(targetConfig(sandbox.url))),
    clientId: "kontobro-sandbox",
    refreshToken: refresh_token,
    accessToken: null,
    accessExpiresAt: null,
    scope: null,
    state: "connected",
    problem: null,
  });
  const start = (name: string) => {
    const port = freePort();
    return startWorkerProcess(name, workerConfig(name, port), port, (w) => workers.push(w));
  };
  await Promise.all([start("a"), start("b")]);
}, 180_000);

afterAll(async () => {
  for (const w of workers) w.proc.kill("SIGKILL");
  await app?.close();
  await admin?.close();
  await server?.stop();
  await sandbox?.stop();
  psa?.stop();
});

describe.skipIf(!!unavailable)("master data per entity on hosted workers", () => {
  test("an invoice with a new customer is booked through a worker; an article eAccounting owns comes back by the pull on the other; a change in eAccounting is reported on the tenant's page", async () => {
    const [a, b] = workers as [RunningWorker, RunningWorker];
    const events = [
      { id: "c-10042", type: "customer.upserted", data: customerData() },
      { id: "p-24017", type: "project.upserted", data: projectData() },
      { id: "i-20001", type: "invoice.finalized", data: invoiceData() },
    ];
    expect((await api(a, "/api/v1/events", { method: "POST", body: JSON.stringify(events) })).status).toBe(202);
    await waitFor(
      "customer, project and invoice done at ledger",
      async () => {
        const { counts } = (await api(a, "/api/v1/status")).body;
        return counts.length === 1 && counts[0].status === "done" && counts[0].n === 3;
      },
      60_000,
    );
    const state = await control("state");
    expect(state.customers.map((c: any) => [c.CustomerNumber, c.Name])).toEqual([["10042", "Fjordkraft Consulting AB"]]);
    expect(state.drafts).toHaveLength(1);
    expect(state.drafts[0]).toMatchObject({ CustomerNumber: "10042", ElectronicReference: "kontobro:psa-inv-20001" });
    // Master per entity remembered the customer as eAccounting holds it, in the tenant's rows.
    expect((await masterRows()).map((r: any) => ({ ...r }))).toEqual([
      { entity: "customer", key: "10042", remoteId: state.customers[0].Id, pending: null },
    ]);
    const done = (await api(b, "/api/v1/deliveries?status=done&limit=10")).body.deliveries;
    expect(done.find((d: any) => d.entity === "customer").remoteId).toBe(state.customers[0].Id);

    // An article made in eAccounting (the target's own) comes back by the pull run on the other worker, to the PSA.
    await control("articles", { Number: "EA-1", Name: "Artikel från eAccounting", NetPrice: 100 });
    const pulled = await api(b, "/api/v1/pulls/ledger/products", { method: "POST" });
    expect(pulled.status).toBe(200);
    expect(pulled.body).toMatchObject({ status: "ok", ignored: 0 });
    expect(pulled.body.imported).toBeGreaterThanOrEqual(1);
    await waitFor("the article at the PSA", () => psa.accepted().some((i) => i.type === "product.upserted" && i.data.code === "EA-1"));
    const article = psa.accepted().find((i) => i.data.code === "EA-1");
    expect(article).toMatchObject({ target: "ledger", stream: "products", data: { code: "EA-1", name: "Artikel från eAccounting" } });
    expect((await masterRows()).some((r: any) => r.entity === "product" && r.key === "EA-1")).toBe(true);

    // The customer comes back unchanged (our own push): skipped. Changed in eAccounting (the PSA is master): reported
    // once however often it is seen, not delivered; the tenant's status page on either worker shows it.
    expect((await api(a, "/api/v1/pulls/ledger/customers", { method: "POST" })).body).toMatchObject({
      status: "ok",
      imported: 0,
      ignored: 0,
    });
    await control("clock", { advanceMs: 2000 });
    await control("customers/10042", { Name: "Fjordkraft (ändrad i eAccounting)" }, "PUT");
    expect((await api(a, "/api/v1/pulls/ledger/customers", { method: "POST" })).body).toMatchObject({ imported: 0, ignored: 1 });
    await control("clock", { advanceMs: 2000 });
    await control("customers/10042", { Telephone: "+46 8 999" }, "PUT");
    expect((await api(b, "/api/v1/pulls/ledger/customers", { method: "POST" })).body).toMatchObject({ imported: 0, ignored: 1 });
    expect((await openReports()).map((r: any) => ({ ...r }))).toEqual([
      { entity: "customer", key: "10042", kind: "changed_in_non_master", count: 2 },
    ]);
    expect(psa.accepted().filter((i) => i.type === "customer.upserted")).toEqual([]);
    for (const w of workers) {
      const res = await fetch(`${w.url}/t/initech/`, {
        headers: { authorization: `Basic ${Buffer.from(`initech:${token}`).toString("base64")}` },
      });
      expect(res.status).toBe(200);
      const page = await res.text();
      expect(page.match(/data-master-report="changed_in_non_master"/g)).toHaveLength(1);
      expect(page).toContain("changed in the non-master system");
    }
    for (const w of workers) expect(w.log()).not.toContain("cannot run on PostgreSQL");
  }, 120_000);
});
