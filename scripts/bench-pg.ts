// The benchmark's PostgreSQL section (issue 17, item 5): the hosted installation as an operator runs it (the
// compiled `kontobro run` as 1, 2 and 4 worker processes on one real PostgreSQL server, tenants added with
// `kontobro tenant add`, each request with its tenant's token, requests spread over the workers and the tenants),
// printed beside the SQLite agent's figures of the same run. Every figure is a ratio to a baseline measured in the
// same run:
//   intake    batches of 1,000 events and single events at concurrency 64; baseline: the same payload straight into
//             the same server, 1,000 rows per multi-row INSERT and transaction, and one INSERT per commit (the
//             server's own synchronous_commit, which the workers do not change).
//   dispatch  N workers draining one backlog (spread over the tenants) to the sandbox; baseline: raw round trips
//             to that sandbox, as for the SQLite figure.
//   claim     a tenant's claim of 50 through its runner (row-level security, as a worker claims) with --backlog
//             pending over --backlog/1,000 tenants, against 1,000 pending in a database of one tenant; also the claim
//             of a tenant whose 1,000 pending came before all the others'.
// The server runs with fsync on (startPgServer's durable). Without PostgreSQL (no initdb) the section says why and
// is skipped; the rest of the benchmark runs as always.
import { SQL } from "bun";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { openPostgres } from "../agent/db/pg/open.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { Outbox } from "../agent/outbox.ts";
import type { BenchAdapter } from "../connectors/sandbox.ts";
import { pgUnavailable, startPgServer, type PgServer } from "../test/pg-server.ts";
import {
  cpuMicros,
  cpuPerItem,
  customer,
  describeCpu,
  type Figure,
  freePort,
  load,
  median,
  postEvents,
  type Proc,
  startAgentProcess,
  startSandboxProcess,
  targetToml,
  treeCpuMicros,
  until,
} from "./bench-support.ts";
import { addTenantWithCli, eachLimited } from "./chaos-pg.ts";

export interface PgBenchOptions {
  /** Single-event requests per worker count. */
  single: number;
  /** Batches of 1,000 events per worker count. */
  batches: number;
  /** Deliveries drained per worker count. */
  dispatch: number;
  /** Pending deliveries of the large claim figure (over `claimTenants` tenants). */
  backlog: number;
  /** Tenants the intake and dispatch figures spread their requests and backlog over. */
  tenants: number;
  claimTenants: number;
}

/** The SQLite agent's figures of the same run (measured once, shared with the benchmark's own sections). */
export interface SqliteSide {
  intake(): Promise<{ single: number; batched: number; rawSingle: number; rawBatched: number }>;
  dispatch(): Promise<{ rate: number; raw: number }>;
  claimScaling(pending: number): Promise<{ small: number; large: number }>;
}

export interface PgSectionContext {
  binary: string;
  sandboxKind: string;
  sandboxTitle: string;
  sandboxOf: BenchAdapter;
  opts: PgBenchOptions;
  sqlite: SqliteSide;
  add(f: Figure): void;
  say(s: string): void;
}

const WORKER_COUNTS = [1, 2, 4];
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `kontobro-bench-pg-${p}-`));
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en") : n.toFixed(2));
const withRatio = (v: number, base: number) => `${fmt(v)} (${(v / base).toFixed(2)}×)`;

export async function pgSection(ctx: PgSectionContext): Promise<void> {
  const unavailable = pgUnavailable();
  if (unavailable) {
    console.log(`\nPostgreSQL figures skipped: ${unavailable}`);
    return;
  }
  let server: PgServer;
  try {
    server = await startPgServer({ durable: true, database: "bench_raw" });
  } catch (e) {
    console.log(`\nPostgreSQL figures skipped: the server did not start: ${(e as Error).message}`);
    return;
  }
  try {
    await measure(ctx, server);
  } catch (e) {
    // A failure here is a defect of the section, said loudly; the benchmark's other figures still print.
    console.log(`\nPostgreSQL figures FAILED: ${(e as Error).stack ?? e}`);
  } finally {
    await server.stop();
  }
}

async function measure(ctx: PgSectionContext, server: PgServer): Promise<void> {
  const { opts, say } = ctx;
  const load0 = loadavg();
  say("PostgreSQL: raw baselines on the server");
  const raw = await rawInserts(server.url);
  const rows: string[][] = [];
  const columns = ["SQLite agent", ...WORKER_COUNTS.map((n) => `PG ${n} worker${n > 1 ? "s" : ""}`), "PostgreSQL baseline"];

  // ── intake ──
  const sqliteIntake = await ctx.sqlite.intake();
  const singles = Array.from({ length: opts.single }, (_, i) => JSON.stringify(customer(i + 1, "s")));
  const bodies = Array.from({ length: opts.batches }, (_, b) =>
    JSON.stringify(Array.from({ length: 1000 }, (_, k) => customer(1_000_000 + b * 1000 + k, "m"))),
  );
  const intake: { single: number; batched: number }[] = [];
  const intakeCpu: string[] = [];
  for (const n of WORKER_COUNTS) {
    say(`PostgreSQL: intake through ${n} worker(s), ${opts.tenants} tenants`);
    const inst = await installation(ctx, server, `intake_${n}`, { target: ctx.sandboxOf.target("http://127.0.0.1:9"), paused: true });
    const workers = await startWorkers(ctx.binary, inst, n);
    try {
      // Request i goes to worker i mod n, for a tenant that changes every n requests: each worker gets every tenant.
      const post = (i: number, body: string) => postEvents(workers[i % n]!.url, body, inst.tokens[Math.floor(i / n) % inst.tokens.length]!);
      // CPU per event by process: the workers together, the server (postmaster and backends), this load generator.
      const pids = {
        workers: () => workers.reduce((sum, w) => sum + cpuMicros(w.proc.pid), 0),
        PostgreSQL: () => treeCpuMicros(server.pid()),
        "load generator": "self",
      } as const;
      const single = await cpuPerItem(opts.single, pids, () => load(opts.single, 64, (i) => post(i, singles[i]!)));
      const batched = await cpuPerItem(opts.batches * 1000, pids, () => load(opts.batches, 4, (i) => post(i, bodies[i]!)));
      intake.push({ single: single.result.perSecond, batched: batched.result.perSecond * 1000 });
      intakeCpu.push(`  ${n} worker(s): batches ${describeCpu(batched.perItem)}; single events ${describeCpu(single.perItem)}`);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  }
  const intakeRow = (name: string, sqlite: number, sqliteBase: number, pg: number[], base: number, baseName: string) => {
    rows.push([`${name} (events/s)`, withRatio(sqlite, sqliteBase), ...pg.map((v) => withRatio(v, base)), `${baseName}: ${fmt(base)}`]);
    for (const [k, n] of WORKER_COUNTS.entries())
      ctx.add({
        name: `PostgreSQL ${name}, ${n} worker(s)`,
        value: pg[k]!,
        unit: "events/s",
        baseline: base,
        baselineName: `PostgreSQL ${baseName}`,
      });
  };
  intakeRow(
    "intake, batches of 1,000 events",
    sqliteIntake.batched,
    sqliteIntake.rawBatched,
    intake.map((x) => x.batched),
    raw.batched,
    "multi-row INSERT, 1,000 rows a transaction",
  );
  intakeRow(
    "intake, single events, concurrency 64",
    sqliteIntake.single,
    sqliteIntake.rawSingle,
    intake.map((x) => x.single),
    raw.single,
    "one INSERT a commit",
  );

  // ── dispatch ──
  const sqliteDispatch = await ctx.sqlite.dispatch();
  say(`PostgreSQL: dispatch to the ${ctx.sandboxTitle} sandbox`);
  const sandbox = await startSandboxProcess(ctx.binary, ctx.sandboxKind);
  const dispatch: number[] = [];
  let rawHttp = 0;
  try {
    rawHttp = (await load(5000, 64, (i) => ctx.sandboxOf.rawCustomer.request(sandbox.url, i))).perSecond;
    for (const n of WORKER_COUNTS) {
      say(`PostgreSQL: ${n} worker(s) draining ${opts.dispatch.toLocaleString("en")} deliveries`);
      const inst = await installation(ctx, server, `dispatch_${n}`, { target: ctx.sandboxOf.target(sandbox.url), paused: false });
      const total = await fillPending(inst.url, {
        perTenant: Math.ceil(opts.dispatch / opts.tenants),
        numbersFrom: 100_000_000 + n * 10_000_000,
      });
      const before = await ctx.sandboxOf.customers(sandbox.url);
      const workers = await startWorkers(ctx.binary, inst, n);
      try {
        // Timed from the moment every worker answers, as the SQLite figure is (start-up is not dispatch).
        const t0 = performance.now();
        const atStart = (await ctx.sandboxOf.customers(sandbox.url)) - before;
        await until(
          "the PostgreSQL backlog to drain",
          async () => (await ctx.sandboxOf.customers(sandbox.url)) - before >= total,
          900_000,
          200,
        );
        dispatch.push((total - atStart) / ((performance.now() - t0) / 1000));
      } finally {
        await Promise.all(workers.map((w) => w.stop()));
      }
    }
  } finally {
    await sandbox.stop();
  }
  const dispatchName = `dispatch to the ${ctx.sandboxTitle} sandbox`;
  rows.push([
    `${dispatchName} (deliveries/s)`,
    withRatio(sqliteDispatch.rate, sqliteDispatch.raw),
    ...dispatch.map((v) => withRatio(v, rawHttp)),
    `${ctx.sandboxOf.rawCustomer.title}, concurrency 64: ${fmt(rawHttp)}`,
  ]);
  for (const [k, n] of WORKER_COUNTS.entries())
    ctx.add({
      name: `PostgreSQL ${dispatchName}, ${n} worker(s)`,
      value: dispatch[k]!,
      unit: "deliveries/s",
      baseline: rawHttp,
      baselineName: `${ctx.sandboxOf.rawCustomer.title}, concurrency 64`,
    });

  // ── claim ──
  say(`PostgreSQL: claim with ${opts.backlog.toLocaleString("en")} pending over ${opts.claimTenants.toLocaleString("en")} tenants`);
  const pgSmall = (await pgClaimMs(server, "claim_small", 0)).busy;
  const pgLarge = await pgClaimMs(server, "claim_large", opts.claimTenants);
  const { small: sqliteSmall, large: sqliteLarge } = await ctx.sqlite.claimScaling(opts.backlog);
  const over = `over ${opts.claimTenants.toLocaleString("en")} tenants`;
  // A claim is one worker's transaction: the PostgreSQL figures stand in the first worker column.
  rows.push([
    `claim 50 with ${opts.backlog.toLocaleString("en")} pending (ms)`,
    withRatio(sqliteLarge, sqliteSmall),
    withRatio(pgLarge.busy, pgSmall),
    "",
    "",
    `1,000 pending: ${fmt(pgSmall)} (SQLite ${fmt(sqliteSmall)}); PostgreSQL's pending ${over}`,
  ]);
  rows.push([
    "  the same, a tenant quiet since the others began (ms)",
    "",
    withRatio(pgLarge.quiet, pgSmall),
    "",
    "",
    `its 1,000 pending older than the others' ${opts.backlog.toLocaleString("en")}`,
  ]);
  const claimFigure = (what: string, value: number) =>
    ctx.add({
      name: `PostgreSQL claim 50 deliveries with ${opts.backlog.toLocaleString("en")} pending ${over}, ${what}`,
      value,
      unit: "ms",
      baseline: pgSmall,
      baselineName: "the same with 1,000 pending (one tenant)",
      target: "ratio ≤ 1.5 (as SQLite's, issue 16)",
      met: value / pgSmall <= 1.5,
    });
  claimFigure("a tenant among them", pgLarge.busy);
  claimFigure("a tenant quiet since they began", pgLarge.quiet);

  const header = ["figure", ...columns];
  const width = header.map((_, c) => Math.max(header[c]!.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => `  ${r.map((x, c) => (x ?? "").padEnd(width[c]!)).join("  ")}`.trimEnd();
  console.log(
    `\nPostgreSQL ${raw.version} beside SQLite, same run (fsync ${raw.fsync}, synchronous_commit ${raw.synchronousCommit}; ` +
      `intake and dispatch over ${opts.tenants} tenants; load average ${load0.map((x) => x.toFixed(1)).join(" ")} at the start, ` +
      `${loadavg()
        .map((x) => x.toFixed(1))
        .join(" ")} at the end)\n`,
  );
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log(
    "\n  (×): SQLite's to its own baselines (bun:sqlite, above); PostgreSQL's to the baseline in the last column; claim: to 1,000 pending.",
  );
  console.log(`\n  intake, CPU per event by process:\n${intakeCpu.join("\n")}`);
}

/** One insert per commit, then 1,000 rows per multi-row INSERT and transaction, the payload of the SQLite baselines. */
async function rawInserts(
  url: string,
  seconds = 2,
): Promise<{ single: number; batched: number; version: string; fsync: string; synchronousCommit: string }> {
  const sql = new SQL({ url, max: 1 });
  try {
    const [facts] = (await sql.unsafe(
      `SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc`,
    )) as { version: string; fsync: string; sc: string }[];
    await sql.unsafe("CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, event_id text UNIQUE, payload text)");
    const payload = JSON.stringify(customer(1).data);
    let n = 0;
    let t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000)
      await sql.unsafe("INSERT INTO t (event_id, payload) VALUES ($1, $2)", [`e${n++}`, payload]);
    const single = n / ((performance.now() - t0) / 1000);
    const values = Array.from({ length: 1000 }, (_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(", ");
    n = 0;
    t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      const params = Array.from({ length: 1000 }, (_, i) => [`b${n + i}`, JSON.stringify(customer(n + i).data)]).flat();
      await sql.begin((tx) => tx.unsafe(`INSERT INTO t (event_id, payload) VALUES ${values}`, params));
      n += 1000;
    }
    const batched = n / ((performance.now() - t0) / 1000);
    return { single, batched, version: facts!.version, fsync: facts!.fsync, synchronousCommit: facts!.sc };
  } finally {
    await sql.close();
  }
}

interface Installation {
  /** The database's URL as the workers' role. */
  url: string;
  dir: string;
  /** Each tenant's API token, in the order added. */
  tokens: string[];
}

/** A worker's kontobro.toml: the SQLite agent's [dispatch] settings (writeAgentConfig), on the PostgreSQL url. */
function workerToml(dir: string, index: number, port: number, url: string): string {
  return (
    `[agent]\ndata_dir = "${dir}/data-${index}"\nlog_level = "error"\n[storage]\nurl = "${url}"\n[http]\nport = ${port}\n` +
    `[dispatch]\nconcurrency = 64\nidle_poll_ms = 1000\n`
  );
}

/** A fresh database with `opts.tenants` tenants added with `kontobro tenant add`, each with the one target "eco". */
async function installation(
  ctx: PgSectionContext,
  server: PgServer,
  name: string,
  o: { target: Record<string, unknown>; paused: boolean },
): Promise<Installation> {
  const url = await server.createDatabase(name);
  const dir = tmp(name);
  const cliConfig = join(dir, "cli.toml");
  writeFileSync(cliConfig, workerToml(dir, 0, 0, url), { mode: 0o600 });
  const slugs = Array.from({ length: ctx.opts.tenants }, (_, k) => `bench-${k + 1}`);
  const tokens: string[] = [];
  // The first creates the tables; the others would only wait on its migration lock.
  tokens[0] = await addTenantWithCli(ctx.binary, {
    slug: slugs[0]!,
    toml: targetToml(o.target, o.paused),
    file: join(dir, `${slugs[0]}.toml`),
    cliConfig,
  });
  await eachLimited([...slugs.keys()].slice(1), 4, async (k) => {
    tokens[k] = await addTenantWithCli(ctx.binary, {
      slug: slugs[k]!,
      toml: targetToml(o.target, o.paused),
      file: join(dir, `${slugs[k]}.toml`),
      cliConfig,
    });
  });
  return { url, dir, tokens };
}

/** `n` workers of an installation, each in a directory of its own (its log: agent.log there), all answering. */
async function startWorkers(binary: string, inst: Installation, n: number): Promise<Proc[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const dir = join(inst.dir, `worker-${i}`);
      mkdirSync(dir, { recursive: true });
      const port = await freePort();
      const config = join(dir, "kontobro.toml");
      writeFileSync(config, workerToml(dir, i, port, inst.url), { mode: 0o600 });
      return startAgentProcess(binary, dir, config, port);
    }),
  );
}

/** The same database as the server's superuser, which row-level security does not hold (filling every tenant at once). */
function asSuperuser(url: string): string {
  const u = new URL(url);
  u.username = "postgres";
  return u.toString();
}

/**
 * `perTenant` pending customer deliveries to target "eco" for every tenant, written straight into the tables (as the
 * SQLite claim figure fills its file), the tenants' rows interleaved as a day's intake would leave them; customer
 * numbers from `numbersFrom`, unique across tenants. Then VACUUM ANALYZE, as autovacuum would. Returns the count.
 */
async function fillPending(url: string, o: { perTenant: number; numbersFrom: number; firstSlug?: string }): Promise<number> {
  const sql = new SQL({ url: asSuperuser(url), max: 1 });
  try {
    const number = `(${o.numbersFrom} + t.id * 1000000 + g)`;
    await sql.unsafe(`INSERT INTO events (tenant_id, event_id, type, entity, key, payload, received_at)
      SELECT t.id, 'e' || g, 'customer.upserted', 'customer', ${number}::text,
             json_build_object('number', ${number}, 'name', 'Bench customer ' || ${number}, 'currency', 'NOK', 'email', 'c' || ${number} || '@example.no')::text, 0
        FROM generate_series(1, ${o.perTenant}) g CROSS JOIN tenants t ORDER BY t.slug = '${o.firstSlug ?? ""}' DESC, g, t.id`);
    const [{ n }] = (await sql.unsafe(`WITH ins AS (
      INSERT INTO deliveries (tenant_id, event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at)
      SELECT tenant_id, seq, 'eco', 'customer', key, 'pending', seq, 0, 0 FROM events ORDER BY seq RETURNING 1)
      SELECT count(*)::integer AS n FROM ins`)) as { n: number }[];
    await sql.unsafe("VACUUM ANALYZE");
    return n;
  } finally {
    await sql.close();
  }
}

/**
 * Median time of a tenant's claim of 50 (through its runner and a registered worker, as a worker claims) in a fresh
 * database of 1,000 pending deliveries for each of `tenants` tenants and one more: the middle tenant's claim (its
 * rows among the others', as a day's intake leaves them) and the one more's, whose events all came before the
 * others' (a tenant that sent nothing for a while: its target paused, a quiet customer). With no tenants but that
 * one, its claim is both.
 */
async function pgClaimMs(server: PgServer, name: string, tenants: number): Promise<{ busy: number; quiet: number }> {
  const url = await server.createDatabase(name);
  const storage = await openPostgres(url, { max: 2 });
  try {
    await storage.client.unsafe(
      `INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at)
       SELECT 'claim-' || g, 'claim-' || g, md5('claim-' || g), 0, 0 FROM generate_series(0, ${tenants}) g`,
    );
    await fillPending(url, { perTenant: 1000, numbersFrom: 0, firstSlug: "claim-0" });
    const worker = await Worker.register(storage.client);
    const claimOf = async (slug: string) => {
      const [{ id }] = (await storage.client.unsafe(`SELECT id FROM tenants WHERE slug = $1`, [slug])) as { id: number }[];
      const outbox = new Outbox(storage.runner(id), Date.now, undefined, { leaseOwner: worker.id });
      const times: number[] = [];
      // As for SQLite: three rounds warm the caches, the median of the next 15 is the figure.
      for (let round = 0; round < 18; round++) {
        const t0 = performance.now();
        const got = await outbox.claim("eco", 50, 60_000, () => true);
        if (got.length !== 50) throw new Error(`the claim of ${slug} in ${name} leased ${got.length} deliveries, not 50`);
        if (round >= 3) times.push(performance.now() - t0);
      }
      return median(times);
    };
    const quiet = await claimOf("claim-0");
    const busy = tenants > 0 ? await claimOf(`claim-${Math.ceil(tenants / 2)}`) : quiet;
    await worker.stop();
    return { busy, quiet };
  } finally {
    await storage.close();
  }
}
