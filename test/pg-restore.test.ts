// A restored PostgreSQL database books nothing twice (issue 17, H7; agent/db/pg/restore-watch.ts). Real parts only:
// a PostgreSQL server (test/pg-server.ts), its own pg_dump and pg_restore, `kontobro run` worker processes, a tenant
// added with `kontobro tenant add`, an e-conomic sandbox over loopback. The database is dumped mid-run, more invoices
// are booked, the dump is restored into a new database and a worker started on it: the PSA sends everything again
// and every invoice is booked exactly once. A restart of the worker, or of the server, is not taken for a restore; a
// database rolled back under a running worker is; and so is the operator's `kontobro storage restored`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { historyChange, identityChanges, type DatabaseIdentity, type StoredHistory } from "../agent/db/pg/restore-watch.ts";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";
import { freePort, type RunningWorker, startWorkerProcess, writeWorkerConfig } from "./hosted-process.ts";
import { findPgBin, pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const ROOT = resolve(import.meta.dir, "..");
const unavailable = pgUnavailable();
if (unavailable) console.warn(`restores on PostgreSQL skipped: ${unavailable}`);

describe("what tells a restore or a move (pure)", () => {
  const identity: DatabaseIdentity = { systemIdentifier: "7001", databaseOid: 16385, tableOid: 17000, timeline: 1 };
  const stored: StoredHistory = { ...identity, incarnation: "aa", replacedIncarnation: null, generation: 40 };

  test("the same database says nothing; a row never written (fresh install) compares nothing", () => {
    expect(identityChanges(stored, identity)).toEqual([]);
    expect(
      identityChanges(
        { ...stored, systemIdentifier: null, databaseOid: null, tableOid: null, timeline: null },
        { ...identity, databaseOid: 9 },
      ),
    ).toEqual([]);
  });

  test("another cluster, another database, the table created anew, a new timeline: each is named", () => {
    expect(identityChanges(stored, { ...identity, systemIdentifier: "7002", databaseOid: 1 })).toEqual([
      expect.stringContaining("another PostgreSQL cluster (system identifier 7002, was 7001)"),
    ]);
    expect(identityChanges(stored, { ...identity, databaseOid: 16999 })).toEqual([expect.stringContaining("oid 16999, was 16385")]);
    expect(identityChanges(stored, { ...identity, tableOid: 18000 })).toEqual([
      expect.stringContaining("database_history was created anew"),
    ]);
    expect(identityChanges(stored, { ...identity, timeline: 2 })).toEqual([expect.stringContaining("timeline is 2, was 1")]);
  });

  test("a role that may not read the cluster's identity compares the oids only", () => {
    expect(identityChanges(stored, { ...identity, systemIdentifier: null, timeline: null })).toEqual([]);
  });

  test("a running worker: the generation going back is a restore; another worker's handled restore is taken quietly", () => {
    expect(historyChange(null, stored)).toEqual({ reason: null, replaced: false });
    expect(historyChange({ incarnation: "aa", generation: 40 }, stored)).toEqual({ reason: null, replaced: false });
    expect(historyChange({ incarnation: "aa", generation: 41 }, stored).reason).toContain("generation 40, this worker wrote 41");
    expect(historyChange({ incarnation: "zz", generation: 3 }, { ...stored, replacedIncarnation: "zz" })).toEqual({
      reason: null,
      replaced: true,
    });
    expect(historyChange({ incarnation: "zz", generation: 3 }, stored).reason).toContain("this running worker knew zz");
  });
});

const dir = tempDir("kontobro-pg-restore-");
let server: PgServer;
let sandbox: StartedEconomicSandbox;
let token = "";
let restoredUrl = "";
const running: RunningWorker[] = [];

function configFor(name: string, url: string, port = 0): string {
  return writeWorkerConfig(dir, name, url, port);
}

function startWorker(name: string, url: string): Promise<RunningWorker> {
  const port = freePort();
  return startWorkerProcess(name, configFor(name, url, port), port, (w) => running.push(w));
}

async function stopWorker(w: RunningWorker): Promise<void> {
  w.proc.kill("SIGTERM");
  expect(await w.proc.exited).toBe(0);
}

function cli(args: string[]): { code: number; out: string; err: string } {
  const res = Bun.spawnSync([process.execPath, "agent/main.ts", ...args], { cwd: ROOT });
  return { code: res.exitCode ?? -1, out: res.stdout.toString(), err: res.stderr.toString() };
}

/** A PostgreSQL client program (pg_dump, pg_restore) of the server's version. */
function pgTool(tool: string, args: string[]): void {
  const res = Bun.spawnSync([join(findPgBin()!, tool), ...args], { stdout: "pipe", stderr: "pipe" });
  if (res.exitCode !== 0) throw new Error(`${tool} failed (exit ${res.exitCode}): ${res.stderr.toString()}`);
}

async function post(w: RunningWorker, body: unknown) {
  const res = await fetch(`${w.url}/api/v1/events`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  return res.status;
}

async function status(w: RunningWorker) {
  const res = await fetch(`${w.url}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  return (await res.json()) as any;
}

async function allDone(w: RunningWorker): Promise<boolean> {
  const { counts } = await status(w);
  return counts.length === 1 && counts[0].status === "done";
}

async function bookedNumbers(): Promise<number[]> {
  const state = (await (await fetch(`${sandbox.url}/__sandbox/state`)).json()) as any;
  return state.booked.map((b: any) => b.bookedInvoiceNumber).sort((x: number, y: number) => x - y);
}

/** Drafts made at the sandbox since its request counts were last cleared (a draft is how an invoice is created there). */
async function draftsMade(): Promise<number> {
  const { families } = (await (await fetch(`${sandbox.url}/__sandbox/requests`)).json()) as any;
  return Object.entries(families as Record<string, { requests: number }>)
    .filter(([family]) => /^POST .*\/invoices\/drafts$/.test(family))
    .reduce((n, [, c]) => n + c.requests, 0);
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const FIRST = range(30_001, 5);
const AFTER_DUMP = range(30_006, 5);
const EVERYTHING = [customerEvent(700), ...[...FIRST, ...AFTER_DUMP].map((n) => invoiceEvent(n, 700))];

// The target's late_answer_wait_ms (with the request timeout it never goes below) is short: the dump catches the three
// invoices in flight, the restored database's worker declares the dumping one dead and holds them that long (a write
// of their push may still land), 10 minutes by default.
beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  sandbox = (await startEconomicSandbox({ port: 0 }))!;
  const file = join(dir, "acme.toml");
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
request_timeout_ms = 1000
late_answer_wait_ms = 1000
`,
  );
  const added = cli(["tenant", "add", "acme", "--file", file, "--config", configFor("cli", server.url)]);
  if (added.code !== 0) throw new Error(`tenant add failed: ${added.err}`);
  token = /shown only now[^\n]*\n {2}(\S+)/.exec(added.out)![1]!;
}, 120_000);

afterAll(async () => {
  for (const w of running) w.proc.kill("SIGKILL");
  await server?.stop();
  await sandbox?.stop();
});

describe.skipIf(!!unavailable)("a restored PostgreSQL database", () => {
  test("dumped mid-run, more booked, restored into a new database: the PSA resends everything and each invoice is booked once", async () => {
    const a = await startWorker("a", server.url);
    expect(await post(a, EVERYTHING.slice(0, 1 + FIRST.length))).toBe(202);
    await waitFor("the first invoices booked", async () => (await bookedNumbers()).length === FIRST.length, 60_000);
    await waitFor("all done", () => allDone(a));
    // Three more invoices wait for a target that answers 503 when the dump is taken: open (pending) in the dump.
    const faults = `${sandbox.url}/__sandbox/faults`;
    await fetch(faults, { method: "POST", body: JSON.stringify({ rules: [{ kind: "503", method: "POST", path: "^/invoices/drafts" }] }) });
    expect(await post(a, EVERYTHING.slice(1 + FIRST.length, 4 + FIRST.length))).toBe(202);
    await waitFor("three deliveries pending, retried", async () => {
      const { counts } = await status(a);
      return counts.some((c: any) => c.status === "pending" && c.n === 3);
    });
    // The nightly dump, as the superuser: the tables force row-level security on their owner, so the app role's
    // pg_dump (row_security off) would stop at the first table.
    const dump = join(dir, "nightly.dump");
    pgTool("pg_dump", ["--format=custom", "--file", dump, server.adminUrl]);
    // After the dump: the three are booked, and two more invoices the dump never saw.
    await fetch(faults, { method: "DELETE" });
    expect(await post(a, EVERYTHING.slice(4 + FIRST.length))).toBe(202);
    await waitFor("the later invoices booked", async () => (await bookedNumbers()).length === FIRST.length + AFTER_DUMP.length, 60_000);
    await stopWorker(a);

    // The server is lost; the dump goes into a new database, and the workers are pointed at it.
    restoredUrl = await server.createDatabase("restored");
    pgTool("pg_restore", ["--exit-on-error", "--dbname", restoredUrl.replace("kontobro@", "postgres@"), dump]);
    const b = await startWorker("b", restoredUrl);
    expect(b.log()).toContain("restore detected");
    const after = await status(b);
    expect(after.restore).toMatchObject({
      reason: expect.stringContaining("the database is another one"),
      openDeliveries: 3,
      lookupsUntil: expect.any(String),
    });
    // The three open in the dump are looked up, found booked. The PSA sends everything again: what the dump has is
    // a duplicate, the two it lacks are new here and looked up first.
    await fetch(`${sandbox.url}/__sandbox/requests`, { method: "DELETE" });
    expect(await post(b, EVERYTHING)).toBe(202);
    await waitFor("all done after the resend", () => allDone(b), 60_000);
    expect(await bookedNumbers()).toEqual([...FIRST, ...AFTER_DUMP]);
    // Found booked, not created again: without the restore noticed, each of the five got a second draft (its booking
    // then refused for the number, the draft swept); a target without a number guard would have booked it twice.
    expect(await draftsMade()).toBe(0);
    await stopWorker(b);
  }, 180_000);

  test("a restart of the worker or of the server is not taken for a restore", async () => {
    const admin = new SQL({ url: restoredUrl.replace("kontobro@", "postgres@"), max: 1 });
    try {
      const [before] = await admin`SELECT incarnation, generation::integer AS generation FROM database_history`;
      const c = await startWorker("c", restoredUrl);
      const detectedAt = (await status(c)).restore.detectedAt;
      server.restart();
      // The worker reconnects and goes on looking at every heartbeat.
      await waitFor("looks after the server's restart", async () => {
        const [row] = await admin`SELECT generation::integer AS generation FROM database_history`.catch(() => [{ generation: 0 }]);
        return row.generation > before.generation + 10;
      });
      expect(await post(c, [invoiceEvent(30_011, 700)])).toBe(202);
      await waitFor("the new invoice booked", async () => (await bookedNumbers()).includes(30_011), 60_000);
      expect(c.log()).not.toContain("restore detected");
      expect((await status(c)).restore.detectedAt).toBe(detectedAt);
      const [now] = await admin`SELECT incarnation FROM database_history`;
      expect(now.incarnation).toBe(before.incarnation);
      await stopWorker(c);
    } finally {
      await admin.close();
    }
  }, 120_000);

  test("a database that goes back under a running worker is noticed; so is the operator's `kontobro storage restored`", async () => {
    const admin = new SQL({ url: restoredUrl.replace("kontobro@", "postgres@"), max: 1 });
    try {
      const d = await startWorker("d", restoredUrl);
      const first = (await status(d)).restore.detectedAt;
      // What a dump restored in place, or a snapshot of the server, does to the row while this worker runs.
      await admin`UPDATE database_history SET generation = 1`;
      await waitFor("the rollback noticed", async () => (await status(d)).restore.detectedAt !== first);
      expect((await status(d)).restore.reason).toContain("the database went back under a running worker");
      expect(d.log()).toContain("restore detected");

      const second = (await status(d)).restore.detectedAt;
      const said = cli(["storage", "restored", "--config", configFor("cli-restored", restoredUrl)]);
      expect(said.code).toBe(0);
      expect(said.out).toContain("Restore recorded for 1 tenant(s)");
      expect((await status(d)).restore).toMatchObject({ reason: expect.stringContaining("the operator said so") });
      expect((await status(d)).restore.detectedAt).not.toBe(second);
      // The running worker takes the new incarnation without a second alarm, and starts its tenant afresh.
      await waitFor("the worker takes the operator's restore", () => d.log().includes("another worker noticed a restore"));
      // Resent after all that: still once.
      expect(await post(d, EVERYTHING)).toBe(202);
      await waitFor("all done", () => allDone(d), 60_000);
      expect(await bookedNumbers()).toEqual([...FIRST, ...AFTER_DUMP, 30_011]);
      await stopWorker(d);
    } finally {
      await admin.close();
    }
  }, 120_000);

  test("`kontobro storage restored` on the SQLite file points at `kontobro restore`", () => {
    const path = join(dir, "sqlite.toml");
    writeFileSync(path, `[agent]\ndata_dir = "${join(dir, "data-sqlite")}"\n`);
    const res = cli(["storage", "restored", "--config", path]);
    expect(res.code).toBe(2);
    expect(res.err).toContain("kontobro restore FILE");
  });
});
