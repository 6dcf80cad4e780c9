// `kontobro run` on PostgreSQL (issue 17, agent/hosted/): two real worker processes (`bun agent/main.ts run`) on one
// real PostgreSQL server (test/pg-server.ts), tenants added with the real `kontobro tenant add`, each with its own
// e-conomic sandbox over loopback. Invoices posted to either worker with a tenant's token are booked exactly once at
// that tenant's target and nowhere else; one tenant's token sees and writes nothing of another's; a disabled
// tenant's API answers 403 on every worker and its deliveries are not sent until it is enabled; a target with master
// data per entity runs there too (nothing is held) and a tenant whose stored configuration went bad answers 503; a
// worker stopped with SIGTERM while the other goes on loses nothing; one paused past dead-after has its leases taken
// by the other and exits 1 when it wakes, and still nothing is booked twice; /readyz and the API answer 503 once the database is gone.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { IntakeWriter } from "../agent/intake.ts";
import { postgresRunner } from "../agent/db/pg/runner.ts";
import { parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";
import { freePort, type RunningWorker, startWorkerProcess, writeWorkerConfig } from "./hosted-process.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const ROOT = resolve(import.meta.dir, "..");
const ADMIN_TOKEN = "hosted-admin-token-0123456789";
const unavailable = pgUnavailable();
if (unavailable) console.warn(`hosted workers on PostgreSQL skipped: ${unavailable}`);

interface TenantUnderTest {
  slug: string;
  token: string;
  sandbox: StartedEconomicSandbox;
  id: number;
}

const dir = tempDir("kontobro-hosted-");
let server: PgServer;
let admin: SQL;
const workers: Record<"a" | "b", RunningWorker> = {} as any;
const tenants: Record<"acme" | "globex" | "initech", TenantUnderTest> = {} as any;

function workerConfig(name: string, port: number, tenantsRefreshMs = 300): string {
  return writeWorkerConfig(dir, name, server.url, port, {
    workers: { tenants_refresh_ms: tenantsRefreshMs },
    admin: { token: ADMIN_TOKEN },
  });
}

function startWorker(name: "a" | "b"): Promise<RunningWorker> {
  const port = freePort();
  // Worker B reads the tenants by itself only every ten minutes: it learns of a change from its announcement, or from
  // the tenant's row read with a request's token.
  return startWorkerProcess(name, workerConfig(name, port, name === "b" ? 600_000 : 300), port);
}

/** `kontobro tenant add` as the operator runs it; returns the API token it prints once. */
function addTenant(slug: string, sandbox: StartedEconomicSandbox, config: string, moreTargets = ""): string {
  const file = join(dir, `${slug}.toml`);
  writeFileSync(
    file,
    `[[targets]]
name = "books"
kind = "economic"
rest_url = "${sandbox.url}"
projects_url = "${sandbox.url}/projectsapi/v1.1.0"
app_secret_token = "demo-app-secret"
agreement_grant_token = "demo-agreement-grant"
requests_per_second = 0
# A lease taken back from a worker declared dead waits this long (a write of it may still land): short for the test.
request_timeout_ms = 1500
late_answer_wait_ms = 3000
${moreTargets}`,
  );
  const res = Bun.spawnSync([process.execPath, "agent/main.ts", "tenant", "add", slug, "--file", file, "--config", config], { cwd: ROOT });
  const out = res.stdout.toString();
  if (res.exitCode !== 0) throw new Error(`tenant add ${slug} failed: ${res.stderr.toString()}`);
  return /shown only now[^\n]*\n {2}(\S+)/.exec(out)![1]!;
}

async function post(worker: RunningWorker, token: string, body: unknown) {
  const res = await fetch(`${worker.url}/api/v1/events`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function status(worker: RunningWorker, token: string) {
  const res = await fetch(`${worker.url}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as any };
}

/** Every delivery of the tenant is done (its status counts nothing else). */
async function allDone(worker: RunningWorker, token: string): Promise<boolean> {
  const { counts } = (await status(worker, token)).body;
  return counts.length === 1 && counts[0].status === "done";
}

async function adminPost(worker: RunningWorker, path: string) {
  const res = await fetch(`${worker.url}/admin/v1${path}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return { status: res.status, body: (await res.json()) as any };
}

async function adminPut(worker: RunningWorker, path: string, body: unknown, contentType = "application/json") {
  const res = await fetch(`${worker.url}/admin/v1${path}`, {
    method: "PUT",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": contentType },
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** Booked invoice numbers at a sandbox, each as often as it was booked. */
async function bookedNumbers(sandbox: StartedEconomicSandbox): Promise<number[]> {
  const state = (await (await fetch(`${sandbox.url}/__sandbox/state`)).json()) as any;
  return state.booked.map((b: any) => b.bookedInvoiceNumber).sort((x: number, y: number) => x - y);
}

async function sandboxRequests(sandbox: StartedEconomicSandbox): Promise<number> {
  return ((await (await fetch(`${sandbox.url}/__sandbox/stats`)).json()) as any).requests.total;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  admin = new SQL({ url: server.adminUrl, max: 1 });
  const [acmeSandbox, globexSandbox] = await Promise.all([startEconomicSandbox({ port: 0 }), startEconomicSandbox({ port: 0 })]);
  // One tenant before the workers start, the other while they run.
  const acmeToken = addTenant("acme", acmeSandbox!, workerConfig("cli", 0));
  tenants.acme = { slug: "acme", token: acmeToken, sandbox: acmeSandbox!, id: 0 };
  tenants.globex = { slug: "globex", token: "", sandbox: globexSandbox!, id: 0 };
  [workers.a, workers.b] = await Promise.all([startWorker("a"), startWorker("b")]);
}, 180_000);

afterAll(async () => {
  for (const w of Object.values(workers)) w.proc.kill("SIGKILL");
  await admin?.close();
  await server?.stop();
  for (const t of Object.values(tenants)) await t.sandbox?.stop();
});

describe.skipIf(!!unavailable)("kontobro run on PostgreSQL: two workers, three tenants", () => {
  test("both workers are registered and ready; a tenant added while they run is served by either at once", async () => {
    const rows = await admin`SELECT id, pid FROM workers ORDER BY id`;
    expect(rows.map((r: any) => r.pid).sort()).toEqual([workers.a.proc.pid, workers.b.proc.pid].sort());
    for (const w of Object.values(workers)) {
      // Each worker counts the live ones at its heartbeat: the other may have registered after its last one.
      const readyz = async () => (await (await fetch(`${w.url}/readyz`)).json()) as any;
      await waitFor("2 live workers counted", async () => JSON.stringify(await readyz()).includes("2 live worker(s)"), 10_000);
      const ready = await readyz();
      expect(ready).toMatchObject({
        status: "ready",
        checks: [
          { name: "database", ok: true },
          { name: "worker", ok: true, message: expect.stringContaining("2 live worker(s) share each target's request rate") },
        ],
      });
    }
    tenants.globex.token = addTenant("globex", tenants.globex.sandbox, workerConfig("cli", 0));
    const first = await post(workers.b, tenants.globex.token, [customerEvent(700)]);
    expect(first.status).toBe(202);
    expect(first.body.accepted).toBe(1);
    const ids = await admin`SELECT id, slug FROM tenants ORDER BY slug`;
    tenants.acme.id = ids.find((r: any) => r.slug === "acme").id;
    tenants.globex.id = ids.find((r: any) => r.slug === "globex").id;
  }, 60_000);

  test("invoices posted to either worker are booked exactly once, at their own tenant's target only", async () => {
    const { acme, globex } = tenants;
    // Both tenants use customer 700 and target name "books": names are per tenant.
    expect((await post(workers.a, acme.token, [customerEvent(700)])).status).toBe(202);
    const acmeNumbers = range(10_001, 12);
    const globexNumbers = range(20_001, 8);
    const sends: Promise<{ status: number; body: any }>[] = [];
    acmeNumbers.forEach((n, i) => sends.push(post(i % 2 ? workers.a : workers.b, acme.token, [invoiceEvent(n, 700)])));
    globexNumbers.forEach((n, i) => sends.push(post(i % 2 ? workers.b : workers.a, globex.token, [invoiceEvent(n, 700)])));
    // The same event sent to both workers (a PSA resending after a timeout) is stored once.
    sends.push(post(workers.a, acme.token, [invoiceEvent(10_001, 700)]), post(workers.b, acme.token, [invoiceEvent(10_001, 700)]));
    const answers = await Promise.all(sends);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));

    await waitFor("acme's invoices booked", async () => (await bookedNumbers(acme.sandbox)).length >= acmeNumbers.length, 60_000);
    await waitFor("globex's invoices booked", async () => (await bookedNumbers(globex.sandbox)).length >= globexNumbers.length, 60_000);
    expect(await bookedNumbers(acme.sandbox)).toEqual(acmeNumbers);
    expect(await bookedNumbers(globex.sandbox)).toEqual(globexNumbers);

    // Each tenant's status, through either worker, counts its own deliveries only.
    await waitFor("acme all done", () => allDone(workers.b, acme.token));
    for (const w of Object.values(workers)) {
      expect((await status(w, acme.token)).body).toMatchObject({
        tenant: "acme",
        targets: [{ name: "books", sending: true, held: null }],
        counts: [{ target: "books", status: "done", n: acmeNumbers.length + 1 }],
        needsAction: [],
      });
    }
    await waitFor("globex all done", () => allDone(workers.a, globex.token));
    expect((await status(workers.a, globex.token)).body.counts).toEqual([{ target: "books", status: "done", n: globexNumbers.length + 1 }]);
    // In the database: each tenant's events under its own id, the resend stored once.
    const events = await admin`SELECT tenant_id, count(*)::integer AS n FROM events GROUP BY tenant_id ORDER BY tenant_id`;
    expect(events).toEqual(
      [
        { tenant_id: acme.id, n: acmeNumbers.length + 1 },
        { tenant_id: globex.id, n: globexNumbers.length + 1 },
      ].sort((x, y) => x.tenant_id - y.tenant_id),
    );
  }, 120_000);

  test("one tenant's token reads and writes nothing of another's; other tokens get 401", async () => {
    const { acme, globex } = tenants;
    // A needs-action delivery at globex only: a project number e-conomic cannot take (digits only).
    const lettered = { id: "globex-bad-project", type: "project.upserted", data: { number: "P-29999", name: "Lettered" } };
    expect((await post(workers.a, globex.token, [lettered])).status).toBe(202);
    await waitFor("globex's needs action", async () => (await status(workers.b, globex.token)).body.needsAction.length === 1, 30_000);

    const acmeView = (await status(workers.b, acme.token)).body;
    expect(acmeView.tenant).toBe("acme");
    expect(acmeView.needsAction).toEqual([]);
    expect(JSON.stringify(acmeView)).not.toContain("29999");
    expect(JSON.stringify(acmeView)).not.toContain("2000");
    // Events sent with acme's token are acme's, whichever numbers they carry: globex's target never sees them.
    const before = await bookedNumbers(globex.sandbox);
    expect((await post(workers.b, acme.token, [invoiceEvent(20_050, 700)])).status).toBe(202);
    await waitFor("acme's 20050 booked at acme", async () => (await bookedNumbers(acme.sandbox)).includes(20_050), 30_000);
    expect(await bookedNumbers(globex.sandbox)).toEqual(before);

    for (const w of Object.values(workers)) {
      for (const token of ["not-a-token-of-anyone-0123456789", ADMIN_TOKEN]) {
        expect((await status(w, token)).status).toBe(401);
        expect((await post(w, token, [customerEvent(1)])).status).toBe(401);
      }
      // A tenant's token is not the admin's.
      const res = await fetch(`${w.url}/admin/v1/tenants`, { headers: { authorization: `Bearer ${acme.token}` } });
      expect(res.status).toBe(401);
    }
  }, 60_000);

  test("the deliveries API is the tenant's own on every worker: another's delivery is not found, for reading or retry", async () => {
    const { acme, globex } = tenants;
    const api = async (worker: RunningWorker, token: string, path: string, method = "GET") => {
      const res = await fetch(`${worker.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as any };
    };
    // globex's needs-action project from the test before.
    const listed = await api(workers.a, globex.token, "/deliveries?status=needs_action");
    expect(listed.status).toBe(200);
    expect(listed.body.deliveries.map((d: any) => d.key)).toEqual(["P-29999"]);
    const id = listed.body.deliveries[0].id as number;
    expect((await api(workers.b, acme.token, "/deliveries?status=needs_action")).body.deliveries).toEqual([]);
    for (const w of Object.values(workers)) {
      expect((await api(w, acme.token, `/deliveries/${id}`)).status).toBe(404);
      expect((await api(w, acme.token, `/deliveries/${id}/retry`, "POST")).status).toBe(404);
      expect((await api(w, globex.token, `/deliveries/${id}`)).body).toMatchObject({ id, key: "P-29999" });
      expect((await api(w, globex.token, "/deliveries/not-a-number")).status).toBe(404);
    }
    expect((await api(workers.b, globex.token, `/deliveries/${id}/retry`, "POST")).body).toEqual({ id, status: "pending" });
  }, 60_000);

  test("the API token rotated while the PSA keeps sending: the old one is refused at once on both workers, nothing lost or booked twice, the tenant not restarted", async () => {
    const { acme } = tenants;
    const startsBefore = (w: RunningWorker) => w.log().split('"msg":"tenant started","tenant":"acme"').length;
    const starts = Object.values(workers).map(startsBefore);
    // The PSA sends an invoice every 20 ms, to either worker, with the token it has; a refused one it sends again
    // once it has the new token (as a PSA that keeps what the API did not take).
    let token = acme.token;
    let fresh: string | null = null;
    const numbers = range(11_001, 40);
    const answers: { n: number; status: number; old: boolean }[] = [];
    const sender = (async () => {
      for (const [i, n] of numbers.entries()) {
        for (;;) {
          const used = token;
          const { status } = await post(i % 2 ? workers.a : workers.b, used, [invoiceEvent(n, 700)]);
          answers.push({ n, status, old: used === acme.token });
          if (status === 202) break;
          await waitFor("the PSA given the new token", () => fresh !== null);
          token = fresh!;
        }
        await Bun.sleep(20);
      }
    })();
    await waitFor("a few invoices sent", () => answers.length >= 10);
    const rotated = await adminPost(workers.b, "/tenants/acme/rotate-token");
    expect(rotated.status).toBe(200);
    const newToken: string = rotated.body.apiToken;
    expect(newToken).not.toBe(acme.token);
    // From the rotation's answer on, the old token is refused on every worker; the new one is taken.
    for (const w of Object.values(workers)) {
      expect((await post(w, acme.token, [customerEvent(700)])).status).toBe(401);
      expect((await status(w, acme.token)).status).toBe(401);
      expect((await status(w, newToken)).body.tenant).toBe("acme");
    }
    fresh = newToken;
    await sender;
    expect(answers.filter((a) => a.status !== 202).every((a) => a.status === 401 && a.old)).toBe(true);
    await waitFor(
      "every invoice booked",
      async () => {
        const booked = await bookedNumbers(acme.sandbox);
        return numbers.every((n) => booked.includes(n));
      },
      60_000,
    );
    const booked = await bookedNumbers(acme.sandbox);
    expect(booked.filter((n) => numbers.includes(n))).toEqual(numbers);
    // Nothing else of the tenant changed: no worker started it afresh.
    expect(Object.values(workers).map(startsBefore)).toEqual(starts);
    acme.token = newToken;
  }, 120_000);

  test("a target's credentials changed while its pushes are in flight: what the target refused waits, and one retry of all sends it once the right ones are in", async () => {
    const { acme } = tenants;
    const books = (secret: string) => ({
      targets: [
        {
          name: "books",
          kind: "economic",
          rest_url: acme.sandbox.url,
          projects_url: `${acme.sandbox.url}/projectsapi/v1.1.0`,
          app_secret_token: secret,
          agreement_grant_token: "demo-agreement-grant",
          requests_per_second: 0,
          request_timeout_ms: 1500,
          late_answer_wait_ms: 3000,
        },
      ],
    });
    // Slow drafts: pushes are in flight when the credentials change.
    await fetch(`${acme.sandbox.url}/__sandbox/faults`, {
      method: "POST",
      body: JSON.stringify({ rules: [{ method: "POST", path: "^/invoices/drafts$", kind: "latency", latencyMs: 800, count: 12 }] }),
      headers: { "content-type": "application/json" },
    });
    const numbers = range(12_001, 12);
    const send = async (ns: number[]) => {
      for (const [i, n] of ns.entries())
        expect((await post(i % 2 ? workers.a : workers.b, acme.token, [invoiceEvent(n, 700)])).status).toBe(202);
    };
    expect((await post(workers.a, acme.token, [customerEvent(700)])).status).toBe(202);
    await send(numbers.slice(0, 6));
    // The secret the target does not take (a rotation at the target not yet known here, or a typo), while those are
    // in flight: they finish with the secret they were sent with; the invoices after are refused by the target.
    expect((await adminPut(workers.a, "/tenants/acme/config", books("not-the-app-secret"))).status).toBe(200);
    await send(numbers.slice(6));
    // Those sent after the change are refused; of those sent before, the ones a loaded machine had not yet pushed when
    // the change came are refused too: each invoice is either booked or refused, none both, none twice.
    await waitFor(
      "each invoice booked or refused by the target",
      async () => {
        const refused = (await status(workers.b, acme.token)).body.needsAction.length;
        const booked = (await bookedNumbers(acme.sandbox)).filter((n) => numbers.includes(n)).length;
        return refused >= 6 && refused + booked === numbers.length;
      },
      30_000,
    );
    const bookedBefore = (await bookedNumbers(acme.sandbox)).filter((n) => numbers.includes(n));
    expect(bookedBefore).toEqual(numbers.slice(0, bookedBefore.length));
    // The right secret back: what needs action stays until a person retries it, all at once.
    expect((await adminPut(workers.b, "/tenants/acme/config", books("demo-app-secret"))).status).toBe(200);
    const waiting = (await status(workers.a, acme.token)).body.needsAction.length;
    const retried = await fetch(`${workers.a.url}/api/v1/deliveries/retry?target=books`, {
      method: "POST",
      headers: { authorization: `Bearer ${acme.token}` },
    });
    expect([retried.status, await retried.json()]).toEqual([200, { retried: waiting, target: "books" }]);
    await waitFor(
      "every invoice booked",
      async () => {
        const booked = await bookedNumbers(acme.sandbox);
        return numbers.every((n) => booked.includes(n));
      },
      60_000,
    );
    expect((await bookedNumbers(acme.sandbox)).filter((n) => numbers.includes(n))).toEqual(numbers);
    await waitFor("acme all done", () => allDone(workers.b, acme.token), 30_000);
  }, 120_000);

  test("a disabled tenant's API answers 403 on every worker and nothing of it is sent until it is enabled", async () => {
    const { globex } = tenants;
    expect((await adminPost(workers.a, "/tenants/globex/disable")).body.tenant.state).toBe("disabled");
    for (const w of Object.values(workers)) {
      const refused = await post(w, globex.token, [invoiceEvent(21_001, 700)]);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe("tenant_disabled");
      expect((await status(w, globex.token)).status).toBe(403);
    }
    // Worker A stopped it at once (its admin API disabled it), B when it heard the announcement: both say so.
    for (const w of Object.values(workers))
      await waitFor(`worker ${w.name} stopped globex`, () => w.log().includes('"msg":"tenant stopped","tenant":"globex"'));
    // Events that reached the database anyway (stored before the disable took effect) wait: simulated by storing
    // them with the tenant's own intake, in this process.
    const client = new SQL({ url: server.url, max: 2 });
    try {
      const outbox = new Outbox(postgresRunner(client, globex.id));
      const intake = new IntakeWriter(outbox, (entity) => (entity === "invoice" ? ["books"] : []));
      const parsed = parseEvents([invoiceEvent(21_002, 700), invoiceEvent(21_003, 700)]);
      if (!parsed.ok) throw new Error(parsed.message);
      await intake.submit(parsed.events);
      await intake.close();
    } finally {
      await client.close();
    }
    const requests = await sandboxRequests(globex.sandbox);
    // Several refreshes (300 ms) and idle polls (50 ms) of both workers pass: neither sends anything of globex.
    await Bun.sleep(1_500);
    expect(await sandboxRequests(globex.sandbox)).toBe(requests);
    expect(await bookedNumbers(globex.sandbox)).not.toContain(21_002);

    expect((await adminPost(workers.b, "/tenants/globex/enable")).body.tenant.state).toBe("active");
    await waitFor(
      "globex's waiting invoices booked once enabled",
      async () => {
        const booked = await bookedNumbers(globex.sandbox);
        return booked.includes(21_002) && booked.includes(21_003);
      },
      30_000,
    );
    expect((await post(workers.a, globex.token, [customerEvent(701)])).status).toBe(202);
  }, 60_000);

  test("a target added to a tenant's stored configuration: the next invoice posted to the other worker at once gets a delivery for it", async () => {
    const { globex } = tenants;
    const second = await startEconomicSandbox({ port: 0 });
    try {
      const [row] = await admin`SELECT config FROM tenants WHERE slug = 'globex'`;
      const config = JSON.parse(row.config);
      config.targets.push({
        ...config.targets[0],
        name: "books2",
        rest_url: second!.url,
        projects_url: `${second!.url}/projectsapi/v1.1.0`,
      });
      // Changed by hand and announced to nobody (as a change whose announcement is still on its way): worker B's own
      // refresh is ten minutes away, but the tenant's row it reads with the request's token is newer than what it runs.
      await admin`UPDATE tenants SET config = ${JSON.stringify(config)}, updated_at = updated_at + 1 WHERE slug = 'globex'`;
      expect((await post(workers.b, globex.token, [invoiceEvent(22_001, 700)])).status).toBe(202);
      const targets = await admin`SELECT d.target FROM deliveries d JOIN events e ON e.seq = d.event_seq
        WHERE d.tenant_id = ${globex.id} AND d.entity = 'invoice' AND d.key = '22001' ORDER BY d.target`;
      expect(targets.map((t: any) => t.target)).toEqual(["books", "books2"]);
      await waitFor("invoice 22001 booked at the new target", async () => (await bookedNumbers(second!)).includes(22_001), 30_000);
      await waitFor("invoice 22001 booked at the first target", async () => (await bookedNumbers(globex.sandbox)).includes(22_001), 30_000);
    } finally {
      await second!.stop();
    }
  }, 60_000);

  test("PUT /admin/v1/tenants/:slug/config: a bad one is refused naming every problem, nothing stored; a good one restarts the tenant on both workers; a dropped target's queue stays", async () => {
    const { globex } = tenants;
    const [third, fourth] = await Promise.all([startEconomicSandbox({ port: 0 }), startEconomicSandbox({ port: 0 })]);
    try {
      const [before] = await admin`SELECT config, updated_at FROM tenants WHERE slug = 'globex'`;
      const books = JSON.parse(before.config).targets[0];
      const target = (name: string, sandbox: StartedEconomicSandbox, more: Record<string, unknown> = {}) => ({
        ...books,
        name,
        rest_url: sandbox.url,
        projects_url: `${sandbox.url}/projectsapi/v1.1.0`,
        ...more,
      });

      const bad = await adminPut(workers.a, "/tenants/globex/config", {
        targets: [{ ...books, kind: "nosuchkind" }, { name: "x" }],
        http: { port: 1 },
      });
      expect(bad.status).toBe(422);
      expect(bad.body.error).toBe("invalid_config");
      expect(bad.body.problems.join("\n")).toContain("http: is set for the whole installation");
      expect(
        (await adminPut(workers.a, "/tenants/globex/config", { targets: [{ ...books, kind: "nosuchkind" }] })).body.problems[0],
      ).toContain("targets[0].kind");
      expect((await adminPut(workers.a, "/tenants/nosuch/config", { targets: [books] })).status).toBe(404);
      expect((await adminPut(workers.a, "/tenants/globex/config", "targets = []", "text/plain")).status).toBe(415);
      expect((await adminPut(workers.a, "/tenants/globex/config", "{", "application/json")).status).toBe(400);
      expect(await admin`SELECT config, updated_at FROM tenants WHERE slug = 'globex'`).toEqual([before]);

      // books3 paused: its deliveries queue. Sent to worker A; worker B learns it from the announcement.
      const paused = await adminPut(workers.a, "/tenants/globex/config", { targets: [books, target("books3", third!, { paused: true })] });
      expect(paused.status).toBe(200);
      expect(paused.body.tenant.targets.map((t: any) => t.name)).toEqual(["books", "books3"]);
      await waitFor("both workers run globex with books3", async () => {
        for (const w of Object.values(workers))
          if (!(await status(w, globex.token)).body.targets.some((t: any) => t.name === "books3")) return false;
        return true;
      });
      expect((await post(workers.b, globex.token, [invoiceEvent(23_001, 700)])).status).toBe(202);
      await waitFor("invoice 23001 booked at books", async () => (await bookedNumbers(globex.sandbox)).includes(23_001), 30_000);

      // books3 dropped, books4 added, through worker B: the next invoices, posted to both workers, go to books4.
      const changed = await adminPut(workers.b, "/tenants/globex/config", { targets: [books, target("books4", fourth!)] });
      expect(changed.status).toBe(200);
      expect(changed.body.warnings).toHaveLength(1);
      const queued = /^target books3 is no longer in the configuration \(or is disabled\): its (\d+) queued deliver/.exec(
        changed.body.warnings[0],
      );
      expect(Number(queued?.[1])).toBeGreaterThanOrEqual(1); // the invoice (and its customer, if it went first)
      await waitFor("both workers run globex with books4", async () => {
        for (const w of Object.values(workers)) {
          const names = (await status(w, globex.token)).body.targets.map((t: any) => t.name);
          if (names.join() !== "books,books4") return false;
        }
        return true;
      });
      expect((await post(workers.a, globex.token, [invoiceEvent(23_002, 700)])).status).toBe(202);
      expect((await post(workers.b, globex.token, [invoiceEvent(23_003, 700)])).status).toBe(202);
      await waitFor("invoices 23002 and 23003 booked at books4", async () => (await bookedNumbers(fourth!)).length === 2, 30_000);
      expect(await bookedNumbers(fourth!)).toEqual([23_002, 23_003]);
      expect(await bookedNumbers(third!)).toEqual([]);
      // books3's delivery is kept and shown, not lost.
      for (const w of Object.values(workers)) {
        const open = (await status(w, globex.token)).body.counts.filter((c: any) => c.target === "books3");
        expect(open.every((c: any) => c.status === "pending" || c.status === "waiting")).toBe(true);
        expect(open.reduce((sum: number, c: any) => sum + c.n, 0)).toBe(Number(queued![1]));
      }
    } finally {
      await third!.stop();
      await fourth!.stop();
    }
  }, 90_000);

  test("a target with master data per entity (eAccounting) is not held: it sends beside the others; not connected, its delivery waits", async () => {
    const sandbox = await startEconomicSandbox({ port: 0 });
    // eAccounting keeps customers and products through master data per entity (agent/master/), which runs on
    // PostgreSQL: the target sends. It was never connected (no credentials), so its delivery does not get done.
    const oauthTarget = `[[targets]]\nname = "ledger"\nkind = "eaccounting"\nclient_id = "hosted-test"\nclient_secret = "hosted-test-secret"\n`;
    const token = addTenant("initech", sandbox, workerConfig("cli", 0), oauthTarget);
    tenants.initech = { slug: "initech", token, sandbox, id: 0 };
    expect((await post(workers.a, token, [customerEvent(800)])).status).toBe(202);
    // Worker B runs initech from the announcement of `tenant add` on (A started it for the request).
    await waitFor("initech's customer at books, and B running initech", async () => {
      const { counts, targets } = (await status(workers.b, token)).body;
      return targets.length === 2 && counts.some((c: any) => c.target === "books" && c.status === "done");
    });
    const view = (await status(workers.b, token)).body;
    expect(view.targets).toEqual([
      { name: "books", kind: "economic", sending: true, held: null },
      { name: "ledger", kind: "eaccounting", sending: true, held: null },
    ]);
    expect(view.counts.filter((c: any) => c.target === "books")).toEqual([{ target: "books", status: "done", n: 1 }]);
    const ledger = view.counts.filter((c: any) => c.target === "ledger");
    expect(ledger.reduce((sum: number, c: any) => sum + c.n, 0)).toBe(1);
    expect(ledger.some((c: any) => c.status === "done")).toBe(false);
    for (const w of Object.values(workers)) expect(w.log()).not.toContain("cannot run on PostgreSQL");
  }, 60_000);

  test("a tenant whose stored configuration is no longer valid stops, and its events get 503 saying why, nothing stored", async () => {
    const { initech } = tenants;
    // Changed by hand, announced to nobody: worker A finds it at its next refresh, worker B (ten minutes) at the next request.
    await admin`UPDATE tenants SET config = '{"targets":[{"name":"books","kind":"nosuchkind"}]}', updated_at = updated_at + 1 WHERE slug = 'initech'`;
    await waitFor("worker a gave up initech", () =>
      workers.a.log().includes("tenant initech does not run on this worker: its stored configuration is not valid"),
    );
    const [before] =
      await admin`SELECT count(*)::integer AS n FROM events WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'initech')`;
    for (const w of Object.values(workers)) {
      const refused = await post(w, initech.token, [customerEvent(801)]);
      expect(refused.status).toBe(503);
      expect(refused.body.error).toBe("tenant_not_running");
      expect(refused.body.message).toContain("targets[0].kind");
      expect((await status(w, initech.token)).body.notRunning).toContain("targets[0].kind");
      expect(w.log()).toContain("tenant initech does not run on this worker: its stored configuration is not valid");
    }
    expect(
      await admin`SELECT count(*)::integer AS n FROM events WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'initech')`,
    ).toEqual([before]);
  }, 60_000);

  test("a worker stopped with SIGTERM while the other goes on loses nothing and books nothing twice", async () => {
    const { acme } = tenants;
    const numbers = range(30_001, 30);
    const answers: number[] = [];
    // Slow drafts: worker A has pushes in flight when it is told to stop.
    await fetch(`${acme.sandbox.url}/__sandbox/faults`, {
      method: "POST",
      body: JSON.stringify({ rules: [{ method: "POST", path: "^/invoices/drafts$", kind: "latency", latencyMs: 300, count: 12 }] }),
      headers: { "content-type": "application/json" },
    });
    // Half to each worker; then worker A stops with its pushes in flight, and the rest go to B.
    for (const [i, n] of numbers.slice(0, 15).entries())
      answers.push((await post(i % 2 ? workers.a : workers.b, acme.token, [invoiceEvent(n, 700)])).status);
    workers.a.proc.kill("SIGTERM");
    for (const n of numbers.slice(15)) answers.push((await post(workers.b, acme.token, [invoiceEvent(n, 700)])).status);
    expect(answers).toEqual(numbers.map(() => 202));
    expect(await workers.a.proc.exited).toBe(0);
    expect(workers.a.log()).toContain('"msg":"stopped"');
    // Its row is gone and no delivery is left leased to it.
    expect((await admin`SELECT pid FROM workers`).map((r: any) => r.pid)).toEqual([workers.b.proc.pid]);

    await waitFor(
      "every invoice booked",
      async () => {
        const booked = await bookedNumbers(acme.sandbox);
        return numbers.every((n) => booked.includes(n));
      },
      60_000,
    );
    const all = await bookedNumbers(acme.sandbox);
    expect(all.filter((n) => n >= 30_001)).toEqual(numbers);
    expect(new Set(all).size).toBe(all.length);
    await waitFor("acme all done", () => allDone(workers.b, acme.token));
  }, 120_000);

  test("a worker paused past dead-after loses its leases to the other, exits 1 when it wakes, and nothing is booked twice", async () => {
    const { acme } = tenants;
    workers.a = await startWorker("a");
    const [paused] = await admin`SELECT id FROM workers WHERE pid = ${workers.b.proc.pid}`;
    // Slow drafts, so that B holds leases while it is paused.
    await fetch(`${acme.sandbox.url}/__sandbox/faults`, {
      method: "POST",
      body: JSON.stringify({ rules: [{ method: "POST", path: "^/invoices/drafts$", kind: "latency", latencyMs: 1_000, count: 6 }] }),
      headers: { "content-type": "application/json" },
    });
    const numbers = range(40_001, 6);
    for (const n of numbers) expect((await post(workers.b, acme.token, [invoiceEvent(n, 700)])).status).toBe(202);
    await waitFor("B holding leases", async () => {
      const [row] = await admin`SELECT count(*)::integer AS n FROM deliveries WHERE status = 'in_flight' AND lease_owner = ${paused.id}`;
      return row.n > 0;
    });
    workers.b.proc.kill("SIGSTOP");
    // Worker A hears nothing from B for longer than dead_after_ms (3 s): it declares B dead and takes its leases back
    // (a transaction B was in the middle of is ended by the server after dead_after_ms / 2, so it holds nothing up).
    await waitFor("B declared dead", async () => (await admin`SELECT id FROM workers WHERE id = ${paused.id}`).length === 0, 30_000);
    workers.b.proc.kill("SIGCONT");
    expect(await workers.b.proc.exited).toBe(1);
    expect(workers.b.log()).toContain("this worker was declared dead by the others");

    await waitFor(
      "every invoice booked",
      async () => {
        const booked = await bookedNumbers(acme.sandbox);
        return numbers.every((n) => booked.includes(n));
      },
      60_000,
    );
    await waitFor("acme all done", () => allDone(workers.a, acme.token), 30_000);
    const all = await bookedNumbers(acme.sandbox);
    expect(all.filter((n) => n >= 40_001)).toEqual(numbers);
    expect(new Set(all).size).toBe(all.length);
    const state = (await (await fetch(`${acme.sandbox.url}/__sandbox/state`)).json()) as any;
    expect(state.drafts).toEqual([]);
  }, 120_000);

  test("when the database stops answering, /readyz says so with 503 (a load balancer takes the worker out) and the PSA is told to send again (503)", async () => {
    await admin.close();
    await server.stop();
    const res = await fetch(`${workers.a.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as any;
    expect(body.status).toBe("not_ready");
    expect(body.checks[0]).toMatchObject({
      name: "database",
      ok: false,
      message: expect.stringMatching(/^The database does not answer/),
    });
    expect((await fetch(`${workers.a.url}/healthz`)).status).toBe(200);
    // The PSA is told to send again (503, Retry-After), not that kontobro failed (500).
    const sent = await post(workers.a, tenants.acme.token, [customerEvent(77_001)]);
    expect(sent.status).toBe(503);
    expect(sent.body).toMatchObject({ error: "storage_unavailable", message: expect.stringMatching(/^The database could not be reached/) });
  }, 60_000);
});
