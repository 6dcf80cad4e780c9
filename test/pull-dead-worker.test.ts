// A pull run whose worker dies, on a real PostgreSQL (test/pg-server.ts; issue 17, agent/db/pg/README.md §6): a job
// has one running run at most, so a dead worker's run must end or the job never runs again. A worker process
// (test/pg-pull-child.ts) is SIGKILLed mid-run; a live worker's recovery ends its run as interrupted, and the next
// slot continues from the stored cursor, storing no item twice. A worker declared dead while it still runs (a
// partition) comes back with a late page: it changes neither the cursor, nor the inbox, nor the run's record.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { silentLogger } from "../agent/log.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { type JobRef, recentRuns, runPull, type RunnerDeps } from "../agent/pulls/runner.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { pagedTarget } from "./paged-target.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";
import { jsonLines } from "./json-lines.ts";

const HEARTBEAT_MS = 250;
const DEAD_AFTER_MS = 3_000;
const beatErrors: unknown[] = [];
const TIMING = { heartbeatMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, onError: (e: unknown) => beatErrors.push(e) };
const JOB: JobRef = { target: "eco", stream: "expenses", timezone: "UTC" };
const SLOT = Date.UTC(2026, 11, 1, 6);
const NEXT_SLOT = SLOT + 86_400_000;

const unavailable = pgUnavailable();
if (unavailable) console.warn(`Dead workers' pull runs on PostgreSQL skipped: ${unavailable}`);

let server: PgServer;
let storage: PostgresStorage;
let tenants = 0;
const children: Subprocess[] = [];

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  storage = await openPostgres(server.url);
}, 120_000);
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await storage?.close();
  await server?.stop();
});

/** A new tenant: an empty inbox, no cursors, no runs. */
async function newTenant(): Promise<{ id: number; runner: SqlRunner }> {
  const slug = `t-${++tenants}`;
  const [row] = (await storage.client.unsafe(
    `INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ($1, $1, $1, 1, 1) RETURNING id`,
    [slug],
  )) as { id: number }[];
  return { id: row!.id, runner: storage.runner(row!.id) };
}

function depsOf(runner: SqlRunner, worker: number, target: ReturnType<typeof pagedTarget>): RunnerDeps {
  return {
    db: openDatabase(join(tempDir("kontobro-dead-pull-"), "k.db")),
    storage: runner,
    inbox: new Inbox(runner),
    dataDir: null,
    worker,
    connectors: new Map([["eco", target.connector]]),
    log: silentLogger,
  };
}

const inboxIds = async (runner: SqlRunner) => (await new Inbox(runner).feed({ after: 0, limit: 100 })).rows.map((r) => r.remoteId);
const runRow = (runner: SqlRunner, id: number) =>
  runner.get<{ status: string; worker: number; pages: number; errorCode: string | null; errorMessage: string | null }>(
    `SELECT status, worker, pages, error_code AS "errorCode", error_message AS "errorMessage" FROM job_runs WHERE id = ?1`,
    id,
  );

describe.skipIf(!!unavailable)("a dead worker's pull run (postgres)", () => {
  test("a worker killed mid-run: a live one ends its run, and the next slot continues from the stored cursor, no item twice", async () => {
    const tenant = await newTenant();
    const live = await Worker.register(storage.client, TIMING);
    live.start();
    const child = spawnPuller(tenant.id, SLOT);
    const { id: doomed } = await child.line((l) => "id" in l);
    await child.line((l) => l.pulling === "1"); // page 1 stored with its cursor, page 2 never comes
    const [running] = await recentRuns(tenant.runner, "eco", "expenses");
    expect(await runRow(tenant.runner, running!.id)).toMatchObject({ status: "running", worker: doomed, pages: 1 });
    expect(await new Inbox(tenant.runner).cursor("eco", "expenses")).toBe("1");

    // While it runs, the job cannot run again.
    const next = pagedTarget({ pages: 3 });
    const deps = depsOf(tenant.runner, live.id, next);
    expect(await runPull(deps, JOB, "schedule", NEXT_SLOT)).toEqual({ status: "busy" });

    child.proc.kill("SIGKILL");
    await child.proc.exited;
    await waitFor(
      "the killed worker's run to be ended",
      async () => (await runRow(tenant.runner, running!.id))?.status !== "running",
      30_000,
    );
    expect(await runRow(tenant.runner, running!.id)).toEqual({
      status: "interrupted",
      worker: doomed,
      pages: 1,
      errorCode: "interrupted",
      errorMessage: expect.stringContaining(`worker ${doomed} (`),
    });

    expect(await runPull(deps, JOB, "schedule", NEXT_SLOT)).toMatchObject({ status: "ok", pages: 2, imported: 2, duplicates: 0 });
    expect(next.calls).toEqual(["1", "2"]);
    expect(await inboxIds(tenant.runner)).toEqual(["entry:1", "entry:2", "entry:3"]);
    expect(await new Inbox(tenant.runner).cursor("eco", "expenses")).toBe("3");
    expect((await recentRuns(tenant.runner, "eco", "expenses")).map((r) => r.status)).toEqual(["ok", "interrupted"]);
    await live.stop();
    expect(beatErrors.map(String)).toEqual([]);
  }, 60_000);

  test("a worker declared dead while it still runs: its late page changes neither the cursor, nor the inbox, nor its run", async () => {
    const tenant = await newTenant();
    // `cut` never beats (its heartbeats do not reach the server); `live` beats and recovers.
    const cut = await Worker.register(storage.client, TIMING);
    const live = await Worker.register(storage.client, TIMING);
    live.start();
    const stuck = pagedTarget({ pages: 3, prefix: "late:", holdAt: "1" });
    const late = runPull(depsOf(tenant.runner, cut.id, stuck), JOB, "schedule", SLOT);
    await waitFor("the cut-off worker's second page under way", () => stuck.calls.length === 2);
    const [run] = await recentRuns(tenant.runner, "eco", "expenses");
    await waitFor(
      "the cut-off worker's run to be ended",
      async () => (await runRow(tenant.runner, run!.id))?.status === "interrupted",
      30_000,
    );

    const next = pagedTarget({ pages: 3 });
    expect(await runPull(depsOf(tenant.runner, live.id, next), JOB, "schedule", NEXT_SLOT)).toMatchObject({ status: "ok", imported: 2 });
    const before = await runRow(tenant.runner, run!.id);

    // Its second page arrives now: refused, and its run's record stays what the recovery wrote.
    stuck.release();
    expect(await late).toMatchObject({ status: "failed", pages: 1, problem: { code: "interrupted" } });
    expect(await inboxIds(tenant.runner)).toEqual(["late:1", "entry:2", "entry:3"]);
    expect(await new Inbox(tenant.runner).cursor("eco", "expenses")).toBe("3");
    expect(await runRow(tenant.runner, run!.id)).toEqual(before);
    expect((await recentRuns(tenant.runner, "eco", "expenses")).map((r) => r.status)).toEqual(["ok", "interrupted"]);
    await live.stop();
    expect(beatErrors.map(String)).toEqual([]);
  }, 60_000);
});

/** A worker process running one pull in `tenant` (test/pg-pull-child.ts); `line(match)` waits for a line it printed. */
function spawnPuller(tenant: number, slot: number) {
  const proc = Bun.spawn(
    [
      process.execPath,
      join(import.meta.dir, "pg-pull-child.ts"),
      server.url,
      String(tenant),
      String(HEARTBEAT_MS),
      String(DEAD_AFTER_MS),
      String(slot),
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  children.push(proc);
  const lines = jsonLines(proc.stdout, (line) => {
    if ("error" in line) beatErrors.push(`worker process: ${line.error}`);
  });
  return {
    proc,
    line: (match: (l: Record<string, any>) => boolean) =>
      waitFor("a line from the worker process", () => lines.find(match), 30_000) as Promise<Record<string, any>>,
  };
}
