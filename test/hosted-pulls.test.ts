// Pulls on hosted workers (issue 17): two real `kontobro run` processes on one real PostgreSQL server
// (test/pg-server.ts), two tenants added with the real `kontobro tenant add`, each with its own e-conomic sandbox and
// its own PSA webhook endpoint (its [psa] section), all over loopback. Booked supplier costs and invoice payments
// reach each tenant's inbox once, whichever worker pulls; each tenant's feed, runs and PSA webhook hold only its own
// items; a schedule slot runs once across both workers; a webhook hint on either worker starts the tenant's pull; a
// wrong token, another tenant's token or an unknown tenant is refused, saying so.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";
import { freePort, type RunningWorker, startWorkerProcess, writeWorkerConfig } from "./hosted-process.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";
import { day, startPsaReceiver } from "./pull-harness.ts";

const ROOT = resolve(import.meta.dir, "..");
const unavailable = pgUnavailable();
if (unavailable) console.warn(`pulls on hosted workers skipped: ${unavailable}`);

interface TenantUnderTest {
  slug: string;
  token: string;
  /** The webhook token `kontobro tenant add` showed for its target "books". */
  webhookToken: string;
  sandbox: StartedEconomicSandbox;
  psa: ReturnType<typeof startPsaReceiver>;
}

const dir = tempDir("kontobro-hosted-pulls-");
let server: PgServer;
let admin: SQL;
const workers: RunningWorker[] = [];
const tenants: Record<"acme" | "globex", TenantUnderTest> = {} as any;

function workerConfig(name: string, port: number): string {
  return writeWorkerConfig(dir, name, server.url, port, { pulls: { webhook_debounce_ms: 50 } });
}

function startWorker(name: string): Promise<RunningWorker> {
  const port = freePort();
  return startWorkerProcess(name, workerConfig(name, port), port);
}

/**
 * `kontobro tenant add` with an e-conomic target whose payments are pulled every 2 seconds (both workers fire every
 * slot) and whose expenses only when asked or hinted; the tenant's own PSA webhook. Returns its API and webhook tokens.
 */
function addTenant(
  slug: string,
  sandbox: StartedEconomicSandbox,
  psa: { url: string; secret: string },
): { token: string; webhookToken: string } {
  const file = join(dir, `${slug}.toml`);
  writeFileSync(
    file,
    `[psa]
webhook_url = "${psa.url}"
webhook_secret = "${psa.secret}"
retry_base_ms = 20
retry_max_ms = 200
poll_ms = 50

[[targets]]
name = "books"
kind = "economic"
rest_url = "${sandbox.url}"
projects_url = "${sandbox.url}/projectsapi/v1.1.0"
app_secret_token = "demo-app-secret"
agreement_grant_token = "demo-agreement-grant"
requests_per_second = 0

[targets.pulls.expenses]
cron = "0 6 * * *"
timezone = "Europe/Copenhagen"
enabled = false

[targets.pulls.payments]
cron = "*/2 * * * * *"
timezone = "Europe/Copenhagen"
`,
  );
  const res = Bun.spawnSync(
    [process.execPath, "agent/main.ts", "tenant", "add", slug, "--file", file, "--config", workerConfig("cli", 0)],
    {
      cwd: ROOT,
    },
  );
  const out = res.stdout.toString();
  if (res.exitCode !== 0) throw new Error(`tenant add ${slug} failed: ${res.stderr.toString()}`);
  return { token: /shown only now[^\n]*\n {2}(\S+)/.exec(out)![1]!, webhookToken: /\n {2}books {2}(\S+)/.exec(out)![1]! };
}

async function api(worker: RunningWorker, token: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${worker.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(init.headers as Record<string, string>) },
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** The tenant's whole feed (after=0 acknowledges nothing). */
async function feed(worker: RunningWorker, t: TenantUnderTest): Promise<any[]> {
  const { status, body } = await api(worker, t.token, "/api/v1/inbox?after=0&limit=1000");
  expect(status).toBe(200);
  return body.items;
}

const descriptions = (items: any[]) => items.filter((i) => i.type === "expense.posted").map((i) => i.data.description as string);

async function book(t: TenantUnderTest, texts: string[]) {
  const vouchers = texts.map((text) => ({
    date: day(0),
    supplierNumber: 1,
    text,
    lines: [{ account: 2800, amount: 125, vatCode: "I25", projectNumber: 4711, costTypeNumber: 1 }],
  }));
  const res = await fetch(`${t.sandbox.url}/__sandbox/book/supplier-invoices`, {
    method: "POST",
    body: JSON.stringify({ vouchers }),
    headers: { "content-type": "application/json" },
  });
  expect(res.status).toBeLessThan(300);
}

/** The tenant's runs as stored (the admin connection sees every tenant's rows). */
const runsOf = (t: TenantUnderTest) =>
  admin`SELECT r.id, r.stream, r.trigger, r.status, r.slot, r.worker, r.imported FROM job_runs r JOIN tenants t ON t.id = r.tenant_id
        WHERE t.slug = ${t.slug} ORDER BY r.id`;

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  admin = new SQL({ url: server.adminUrl, max: 1 });
  for (const slug of ["acme", "globex"] as const) {
    const sandbox = await startEconomicSandbox({ port: 0 });
    const secret = `${slug}-psa-secret-0123456789`;
    const psa = startPsaReceiver(secret);
    tenants[slug] = { slug, sandbox, psa, ...addTenant(slug, sandbox, { url: psa.url, secret }) };
  }
  workers.push(...(await Promise.all([startWorker("a"), startWorker("b")])));
  // The PSA's records at each tenant's e-conomic: a customer, project 4711 (expenses on it reach the PSA) and
  // invoices 20001-20002 (their payment status is pulled), each tenant's through its own token on another worker.
  for (const [i, t] of [tenants.acme, tenants.globex].entries()) {
    const events = [customerEvent(10042), projectEvent(4711, 10042), invoiceEvent(20001, 10042), invoiceEvent(20002, 10042)];
    expect((await api(workers[i]!, t.token, "/api/v1/events", { method: "POST", body: JSON.stringify(events) })).status).toBe(202);
  }
  for (const t of [tenants.acme, tenants.globex])
    await waitFor(
      `${t.slug}'s records booked`,
      async () => {
        const { counts } = (await api(workers[0]!, t.token, "/api/v1/status")).body;
        return counts.length === 1 && counts[0].status === "done" && counts[0].n === 4;
      },
      60_000,
    );
}, 180_000);

afterAll(async () => {
  for (const w of workers) w.proc.kill("SIGKILL");
  await admin?.close();
  await server?.stop();
  for (const t of Object.values(tenants)) {
    await t.sandbox?.stop();
    t.psa?.stop();
  }
});

describe.skipIf(!!unavailable)("pulls on two hosted workers, two tenants", () => {
  test("booked supplier costs land once in their own tenant's inbox, whichever worker pulls, and reach only that tenant's PSA webhook", async () => {
    const { acme, globex } = tenants;
    await book(acme, ["acme cost 1", "acme cost 2"]);
    await book(globex, ["globex cost 1"]);
    // Both workers are asked at once for acme's pull: one runs it, the other says a run is under way or finds
    // nothing new; globex's on the second worker.
    const [onA, onB, other] = await Promise.all([
      api(workers[0]!, acme.token, "/api/v1/pulls/books/expenses", { method: "POST" }),
      api(workers[1]!, acme.token, "/api/v1/pulls/books/expenses", { method: "POST" }),
      api(workers[1]!, globex.token, "/api/v1/pulls/books/expenses", { method: "POST" }),
    ]);
    const acmeRuns = [onA, onB].filter((r) => r.status === 200);
    expect(acmeRuns.length).toBeGreaterThanOrEqual(1);
    for (const r of [onA, onB]) if (r.status !== 200) expect([r.status, r.body.error]).toEqual([409, "busy"]);
    expect(acmeRuns.reduce((n, r) => n + r.body.imported, 0)).toBe(2);
    expect(other).toMatchObject({ status: 200, body: { status: "ok", imported: 1 } });

    // Each feed, on either worker, holds its own tenant's items, once.
    for (const w of workers) {
      expect(descriptions(await feed(w, acme)).sort()).toEqual(["acme cost 1", "acme cost 2"]);
      expect(descriptions(await feed(w, globex))).toEqual(["globex cost 1"]);
    }
    // Each tenant's PSA gets its own items, signed with its own secret, once (the deliverers of both workers share
    // the tenant's inbox).
    await waitFor("acme's PSA has its two items", () => descriptions(acme.psa.accepted()).length === 2);
    await waitFor("globex's PSA has its item", () => descriptions(globex.psa.accepted()).length === 1);
    await waitFor("every item marked delivered", async () => {
      const [row] = await admin`SELECT count(*)::int AS n FROM inbox WHERE type = 'expense.posted' AND state = 'delivered'`;
      return row.n === 3;
    });
    expect(descriptions(acme.psa.accepted()).sort()).toEqual(["acme cost 1", "acme cost 2"]);
    expect(descriptions(globex.psa.accepted())).toEqual(["globex cost 1"]);
    for (const psa of [acme.psa, globex.psa]) expect(psa.calls.every((c) => c.verified && c.status === 200)).toBe(true);
    // A pull's runs are the tenant's: each tenant lists its own manual runs only.
    expect((await runsOf(acme)).filter((r: any) => r.trigger === "manual").length).toBe(acmeRuns.length);
    expect((await runsOf(globex)).filter((r: any) => r.trigger === "manual").length).toBe(1);
    const listed = (await api(workers[0]!, globex.token, "/api/v1/pulls")).body;
    expect(listed.jobs.map((j: any) => [j.stream, j.runs.filter((r: any) => r.trigger === "manual").length])).toEqual([
      ["expenses", 1],
      ["payments", 0],
    ]);
  }, 90_000);

  test("a schedule slot runs once across both workers; payment status changes land once", async () => {
    const { acme, globex } = tenants;
    for (const t of [acme, globex]) {
      const res = await fetch(`${t.sandbox.url}/__sandbox/invoices/booked/20001`, {
        method: "PATCH",
        body: JSON.stringify({ dueDate: day(30), sent: true }),
        headers: { "content-type": "application/json" },
      });
      expect(res.status).toBeLessThan(300);
    }
    // The payments schedule has run since the workers started (how often depends on how long the set-up took): only
    // runs claimed after the invoices changed are sure to have fetched the change.
    const [{ last }] = await admin`SELECT coalesce(max(id), 0)::int AS last FROM job_runs`;
    // Every 2 seconds both workers fire the slot; the first to record its run runs it.
    for (const t of [acme, globex])
      await waitFor(
        `${t.slug}: four scheduled payment runs since the change`,
        async () => (await runsOf(t)).filter((r: any) => r.trigger === "schedule" && r.status === "ok" && Number(r.id) > last).length >= 4,
        30_000,
      );
    const slots = await admin`SELECT tenant_id, slot, count(*)::int AS n FROM job_runs WHERE trigger = 'schedule' GROUP BY tenant_id, slot`;
    expect(slots.length).toBeGreaterThanOrEqual(8);
    expect(slots.filter((s: any) => s.n !== 1)).toEqual([]);
    // The other worker fired the same slots and found them run.
    expect(workers.some((w) => w.log().includes("this slot already run elsewhere"))).toBe(true);
    // The change of invoice 20001 is one item in each tenant's inbox, however many runs saw it.
    for (const t of [acme, globex]) {
      const items = (await feed(workers[1]!, t)).filter((i) => i.type !== "expense.posted");
      expect(items.map((i) => [i.type, i.data.invoiceNumber, i.data.status])).toEqual([["invoice.status_changed", "20001", "sent"]]);
    }
  }, 60_000);

  test("a webhook hint on either worker starts the tenant's pull; the URLs are the tenant's own", async () => {
    const { acme, globex } = tenants;
    // The tenant's API lists its webhook URLs, with the token `kontobro tenant add` showed.
    const hooks = (await api(workers[0]!, acme.token, "/api/v1/pulls")).body.webhooks;
    expect(hooks).toEqual([
      {
        target: "books",
        kind: "economic",
        paths: expect.arrayContaining([`/t/acme/webhooks/economic/${acme.webhookToken}?type=invoice&invoice=[INVOICENO]`]),
      },
    ]);
    expect(acme.webhookToken).not.toBe(globex.webhookToken);
    await book(acme, ["acme cost 3"]);
    await book(globex, ["globex cost 2"]);
    const hint = (w: RunningWorker, t: TenantUnderTest) =>
      fetch(`${w.url}/t/${t.slug}/webhooks/economic/${t.webhookToken}?type=daybook&daybook=1&from=1&to=9`, { method: "POST" });
    const [toB, toA] = await Promise.all([hint(workers[1]!, acme), hint(workers[0]!, globex)]);
    expect([toB.status, await toB.json()]).toEqual([202, { accepted: true, target: "books", pulls: ["expenses"] }]);
    expect(toA.status).toBe(202);
    await waitFor("acme's hinted pull brought its new cost", async () =>
      descriptions(await feed(workers[0]!, acme)).includes("acme cost 3"),
    );
    await waitFor("globex's hinted pull brought its new cost", async () =>
      descriptions(await feed(workers[1]!, globex)).includes("globex cost 2"),
    );
    expect(descriptions(await feed(workers[0]!, acme)).sort()).toEqual(["acme cost 1", "acme cost 2", "acme cost 3"]);
    expect(descriptions(await feed(workers[0]!, globex)).sort()).toEqual(["globex cost 1", "globex cost 2"]);
    // The hinted runs ran on the worker that got the hint.
    const webhookRuns = async (t: TenantUnderTest) => (await runsOf(t)).filter((r: any) => r.trigger === "webhook");
    const byPid = new Map((await admin`SELECT id, pid FROM workers`).map((r: any) => [Number(r.pid), Number(r.id)] as [number, number]));
    expect((await webhookRuns(acme)).map((r: any) => Number(r.worker))).toEqual([byPid.get(workers[1]!.proc.pid)!]);
    expect((await webhookRuns(globex)).map((r: any) => Number(r.worker))).toEqual([byPid.get(workers[0]!.proc.pid)!]);
  }, 60_000);

  test("a wrong token, another tenant's token or an unknown tenant is refused, saying so; nothing is pulled", async () => {
    const { acme, globex } = tenants;
    const before = (await runsOf(acme)).filter((r: any) => r.trigger === "webhook").length;
    const call = async (path: string) => {
      const res = await fetch(`${workers[0]!.url}${path}?type=daybook`, { method: "POST" });
      return { status: res.status, body: (await res.json()) as any };
    };
    for (const path of [
      `/t/acme/webhooks/economic/${globex.webhookToken}`,
      `/t/acme/webhooks/economic/${acme.webhookToken}x`,
      `/t/globex/webhooks/economic/${acme.webhookToken}`,
      `/t/acme/webhooks/uniconta/${acme.webhookToken}`,
    ]) {
      const refused = await call(path);
      expect(refused.status).toBe(401);
      expect(refused.body).toEqual({ error: "unauthorized", message: "Unauthorized.", hint: expect.stringContaining("GET /api/v1/pulls") });
    }
    const unknown = await call(`/t/initech/webhooks/economic/${acme.webhookToken}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: "not_found", message: 'There is no tenant "initech" on this kontobro installation.' });
    // The two feeds share no item.
    const acmeFeedIds = (await feed(workers[1]!, acme)).map((i) => i.id);
    const globexFeedIds = (await feed(workers[1]!, globex)).map((i) => i.id);
    expect(acmeFeedIds.filter((id) => globexFeedIds.includes(id))).toEqual([]);
    // Once a right hint has run, no other webhook run of acme's was started by the refused ones.
    await book(acme, ["acme cost 4"]);
    const ok = await fetch(`${workers[0]!.url}/t/acme/webhooks/economic/${acme.webhookToken}?type=daybook`, { method: "POST" });
    expect(ok.status).toBe(202);
    await waitFor("acme's hinted pull", async () => descriptions(await feed(workers[0]!, acme)).includes("acme cost 4"));
    expect((await runsOf(acme)).filter((r: any) => r.trigger === "webhook").length).toBe(before + 1);
  }, 60_000);
});
