// SQL written once: the SQLite text of a statement as PostgreSQL runs it (agent/db/pg/dialect.ts), and
// PostgreSQL's rows read as SQLite's (pure), and every SQL statement under agent/ prepared on a real PostgreSQL
// server; test/pg-schema.test.ts runs such statements on both engines.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { rowsFromPostgres, toPostgres } from "../agent/db/pg/dialect.ts";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";
import { agentStatements, statementsOf, type SqlStatement } from "./sql-statements.ts";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { postgresRunner, sqliteRunner, type SqlRunner } from "../agent/db/pg/runner.ts";
import { tempDir } from "./helpers.ts";
import { creditsSentUnchecked } from "../agent/notify/credited-after-push.ts";

describe("toPostgres", () => {
  test("numbered parameters become $N, reused numbers stay the same parameter", () => {
    expect(toPostgres("UPDATE deliveries SET next_attempt_at = ?2, updated_at = ?2 WHERE caused_by = ?1 AND status = 'needs_action'")).toBe(
      "UPDATE deliveries SET next_attempt_at = $2, updated_at = $2 WHERE caused_by = $1 AND status = 'needs_action'",
    );
  });

  test("a bare ? takes the next number after the highest so far, as in SQLite", () => {
    expect(toPostgres("SELECT 1 WHERE a = ? AND b = ?3 AND c = ?")).toBe("SELECT 1 WHERE a = $1 AND b = $3 AND c = $4");
  });

  test("question marks in string literals, quoted names and comments are not parameters", () => {
    const text = `SELECT 'why?' AS "what?", 'it''s ?1' FROM t -- ?2 in a comment\nWHERE x = ?1`;
    expect(toPostgres(text)).toBe(`SELECT 'why?' AS "what?", 'it''s ?1' FROM t -- ?2 in a comment\nWHERE x = $1`);
  });

  test("every ON CONFLICT target starts with the tenant; DO NOTHING without a target stays as it is", () => {
    expect(
      toPostgres("INSERT INTO links (target, entity, key) VALUES (?1, ?2, ?3) ON CONFLICT (target, entity, key) DO UPDATE SET x = 1"),
    ).toBe("INSERT INTO links (target, entity, key) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, target, entity, key) DO UPDATE SET x = 1");
    expect(toPostgres("INSERT INTO settings (name, value) VALUES (?1, ?2)\n  on conflict(name) DO NOTHING")).toBe(
      "INSERT INTO settings (name, value) VALUES ($1, $2)\n  ON CONFLICT (tenant_id, name) DO NOTHING",
    );
    expect(toPostgres("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING")).toBe("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING");
    expect(toPostgres("SELECT 'ON CONFLICT (x)' AS note")).toBe("SELECT 'ON CONFLICT (x)' AS note");
  });

  test("camelCase aliases are quoted so PostgreSQL keeps their case; types in CAST and lower-case aliases are not", () => {
    expect(toPostgres("SELECT d.event_seq AS eventSeq, e.payload AS payload, CAST(?1 AS BIGINT) AS t, CAST(x as integer) FROM d")).toBe(
      'SELECT d.event_seq AS "eventSeq", e.payload AS payload, CAST($1 AS BIGINT) AS t, CAST(x as integer) FROM d',
    );
  });

  test("json_each over a JSON array parameter becomes json_array_elements_text, whose rows are also called value", () => {
    expect(toPostgres("SELECT key FROM records WHERE entity = ?1 AND key IN (SELECT value FROM json_each(?2))")).toBe(
      "SELECT key FROM records WHERE entity = $1 AND key IN (SELECT value FROM json_array_elements_text(CAST(CAST($2 AS text) AS json)))",
    );
  });

  test("json_extract of a top-level field of a column becomes ->> on the column read as json", () => {
    expect(toPostgres("SELECT payload FROM records r WHERE json_extract(r.payload, '$.date') BETWEEN ?1 AND ?2")).toBe(
      "SELECT payload FROM records r WHERE (CAST(r.payload AS json) ->> 'date') BETWEEN $1 AND $2",
    );
    expect(toPostgres("SELECT JSON_EXTRACT( payload , '$.customerNumber' ) AS n FROM records")).toBe(
      `SELECT (CAST(payload AS json) ->> 'customerNumber') AS n FROM records`,
    );
  });

  test("json_object(name, value, …) becomes json_build_object; json_object_agg and a quoted json_object( stay", () => {
    expect(
      toPostgres("SELECT CAST(json_object('v', r.version, 'p', r.payload) AS TEXT), json_object_agg(a, b), 'json_object(' FROM records r"),
    ).toBe("SELECT CAST(json_build_object('v', r.version, 'p', r.payload) AS TEXT), json_object_agg(a, b), 'json_object(' FROM records r");
  });

  test("SQLite's planner hints are dropped: INDEXED BY and a unary + before a column; a binary + stays", () => {
    expect(
      toPostgres("UPDATE deliveries INDEXED BY deliveries_caused_by SET n = n + 1, m = m+1 WHERE a = ?1 AND +entity = 'invoice'"),
    ).toBe("UPDATE deliveries SET n = n + 1, m = m+1 WHERE a = $1 AND entity = 'invoice'");
  });

  test("an unterminated literal is an error that shows where", () => {
    expect(() => toPostgres("SELECT 'oops FROM t")).toThrow("unterminated string in SQL: 'oops FROM t");
  });
});

describe("rowsFromPostgres", () => {
  test("int8 and numeric columns become numbers, others are left alone", () => {
    const rows = [{ seq: "1796162344790", n: "3", total: "12.5", name: "7", flag: 1 }];
    const columns = [
      { name: "seq", type: 20 },
      { name: "n", type: 20 },
      { name: "total", type: 1700 },
      { name: "name", type: 25 },
      { name: "flag", type: 21 },
    ];
    expect(rowsFromPostgres(rows, columns)).toEqual([{ seq: 1796162344790, n: 3, total: 12.5, name: "7", flag: 1 }]);
  });

  test("an int8 beyond 2^53 is an error rather than a silently different number", () => {
    expect(() => rowsFromPostgres([{ id: "9007199254740993" }], [{ name: "id", type: 20 }])).toThrow("id: 9007199254740993 is beyond");
  });
});

describe("agentStatements finds the SQL in the source", () => {
  test("literals, constants filled in, multi-row statements completed, run-time parts named", () => {
    const src = [
      'const ROW = "id, name";',
      "// SELECT nothing FROM a comment",
      'const re = /SELECT "x" FROM/;',
      "db.query(`SELECT ${ROW} FROM t WHERE id = ?1`);",
      'db.query("UPDATE t SET name = ?2 WHERE id = ?1");',
      "db.query(`DELETE FROM t WHERE ${where}`);",
      'const insert = multiRowSql("INSERT INTO t (id, name)", 2, `RETURNING id`);',
      'const note = "Select a target from the list";',
    ].join("\n");
    expect(statementsOf("x.ts", src).map(({ line, text, builtFrom }) => ({ line, text, builtFrom }))).toEqual([
      { line: 4, text: "SELECT id, name FROM t WHERE id = ?1", builtFrom: [] },
      { line: 5, text: "UPDATE t SET name = ?2 WHERE id = ?1", builtFrom: [] },
      { line: 6, text: "DELETE FROM t WHERE ${where}", builtFrom: ["where"] },
      { line: 7, text: "INSERT INTO t (id, name) VALUES (?, ?) RETURNING id", builtFrom: [] },
    ]);
  });
});

/**
 * Statements that are SQLite's by nature, and why; every other complete statement under agent/ must prepare
 * unchanged on PostgreSQL (write new SQL in the subset both engines share: CAST an untyped parameter, qualify a
 * column in DO UPDATE SET, no bare columns beside GROUP BY, no scalar max(a, b)).
 */
const SQLITE_ONLY = [
  { file: "agent/restore-sqlite.ts", contains: "sqlite_master", why: "reads SQLite's own catalogue of a backup file" },
  { file: "agent/db/rekey.ts", contains: "GLOB", why: "a one-time repair of SQLite files written before keys were canonical" },
  // records.credits kept with the payloads those repairs rewrite (json_extract of a parameter, SQLite's JSON functions).
  { file: "agent/db/rekey.ts", contains: "creditedInvoiceNumber", why: "the same repair, keeping records.credits with the payload" },
  {
    file: "agent/db/normalise.ts",
    contains: "creditedInvoiceNumber",
    why: "a one-time repair of SQLite payloads stored before signs were one",
  },
  { file: "agent/http/health.ts", contains: "__drizzle_migrations", why: "PostgreSQL keeps drizzle's log in drizzle.__drizzle_migrations" },
  { file: "agent/storage.ts", contains: "__drizzle_migrations", why: "the SQLite file's migration log, in `kontobro storage check`" },
  {
    file: "agent/db/index.ts",
    contains: "__drizzle_migrations",
    why: "the SQLite file's migration log: one a newer kontobro wrote is refused",
  },
];

/**
 * Statements completed at run time (a column list or a WHERE clause built in code), by file and what fills
 * them in: not checked here. A new one fails until it is listed: prefer a module constant, which is filled in.
 */
const BUILT_AT_RUN_TIME = [
  "agent/db/rekey.ts: table",
  'agent/delivery-stats.ts: COUNT_COLUMNS.join(", ")',
  'agent/delivery-stats.ts: COUNT_COLUMNS.join(", ")',
  // The hosted prune adding the hours it prunes into hour 0 (test/hosted-stats-prune runs it on PostgreSQL).
  'agent/delivery-stats.ts: COUNT_COLUMNS.join(", ")',
  "agent/exports/store.ts: marks",
  "agent/notify/alerts.ts: where",
  "agent/queries.ts: doneHint",
  // The latency columns' sums (run on PostgreSQL by test/hosted-progress-metrics.test.ts).
  'agent/tenant-metrics.ts: LATENCY_BUCKETS.map((b) => `sum(${b.column}) AS ${b.column}`).join(", ")',
  "agent/tenants/store.ts: table",
  // A bound parameter of drizzle's sql tag (the setting's name), not text built into the statement.
  "agent/tenants/store.ts: webhookTokenSetting(target)",
];

/** How many complete statements prepare on PostgreSQL today: the count may only go up (raise it when it does). */
const PREPARED_AT_LEAST = 229;

const unavailable = pgUnavailable();
if (unavailable) console.warn(`PostgreSQL dialect tests on a server skipped: ${unavailable}`);

describe.skipIf(!!unavailable)("every SQL statement of the agent on a real PostgreSQL server", () => {
  let server: PgServer;
  let client: SQL;
  const statements = agentStatements();
  beforeAll(async () => {
    server = await startPgServer();
    client = new SQL(server.url);
    await migratePostgres(client, embeddedMigrations);
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  test("each complete statement prepares unchanged (through toPostgres), apart from the SQLite-only ones", async () => {
    const complete = statements.filter((s) => s.builtFrom.length === 0);
    const failures: string[] = [];
    const sqliteOnlyFound = new Set<string>();
    let prepared = 0;
    for (const [i, s] of complete.entries()) {
      const exempt = SQLITE_ONLY.find((e) => e.file === s.file && s.text.includes(e.contains));
      try {
        await client.begin(async (tx) => {
          await tx`SELECT set_config('kontobro.tenant', '1', true)`;
          await tx.unsafe(`PREPARE statement_${i} AS ${toPostgres(s.text)}`);
          await tx.unsafe(`DEALLOCATE statement_${i}`);
        });
        prepared++;
        if (exempt) failures.push(`${s.file}:${s.line}: listed in SQLITE_ONLY but prepares on PostgreSQL: take it off the list`);
      } catch (e) {
        if (exempt) sqliteOnlyFound.add(`${exempt.file}: ${exempt.contains}`);
        else failures.push(`${s.file}:${s.line}: ${(e as Error).message}\n    ${s.text.replace(/\s+/g, " ").trim()}`);
      }
    }
    console.log(`${prepared} of ${complete.length} complete SQL statements under agent/ prepare unchanged on PostgreSQL`);
    expect(failures).toEqual([]);
    expect([...sqliteOnlyFound].sort()).toEqual(SQLITE_ONLY.map((e) => `${e.file}: ${e.contains}`).sort());
    expect(prepared).toBeGreaterThanOrEqual(PREPARED_AT_LEAST);
  }, 60_000);

  test("the rewritten statements give the same rows on SQLite and on PostgreSQL", async () => {
    await client`INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ('acme', 'Acme', 'h', 1, 1)`;
    const sqlite = openDatabase(join(tempDir(), "k.db"));
    try {
      const onSqlite = await rewrittenStatements(sqliteRunner(sqlite.$client), statements);
      const onPostgres = await rewrittenStatements(postgresRunner(client, 1), statements);
      expect(onPostgres).toEqual(onSqlite);
      // What the statements are for, so that "the same" is not "the same nothing".
      expect(onSqlite.counters).toEqual([{ value: "2026-12-01:3" }, { value: "2026-12-01:7" }, { value: "2026-12-02:1" }]);
      expect(onSqlite.seqs).toEqual([{ seq: 5000 }, { seq: 7001 }, { seq: 9000 }]);
      expect(onSqlite.newestNeedingAction).toEqual([
        { target: "eco", entity: "customer", key: "1", attempts: 3, code: "c3" },
        { target: "eco", entity: "customer", key: "2", attempts: 1, code: "c4" },
      ]);
      expect(onSqlite.reports).toEqual([{ count: 1 }, { count: 2 }, { count: 1 }, { firstAt: 30, lastAt: 30 }]);
      expect(onSqlite.range).toEqual([{ number: "9" }, { number: "10" }, { number: "2147483648" }]);
      expect(onSqlite.listed.map((r) => r.number)).toEqual(["2147483648", "10", "9", "A-1"]);
      expect(onSqlite.wrongCredits).toEqual([["eco", "credit note:31", "invoice.credits_other_customer"]]);
      expect(onSqlite.keptRuns).toEqual([
        { stream: "payments", status: "ok", startedAt: 2 },
        { stream: "expenses", status: "failed", startedAt: 5 },
        { stream: "payments", status: "failed", startedAt: 100 },
      ]);
    } finally {
      sqlite.$client.close();
    }
  });

  test("the statements built at run time are the known ones", () => {
    const built = statements.filter((s) => s.builtFrom.length > 0).map((s) => `${s.file}: ${s.builtFrom[0]}`);
    expect(built.sort()).toEqual([...BUILT_AT_RUN_TIME].sort());
  });
});

/** The text of the one statement in `file` that contains `part`. */
function statementIn(statements: SqlStatement[], file: string, part: string): string {
  const found = statements.filter((s) => s.file === file && s.text.includes(part));
  if (found.length !== 1) throw new Error(`${found.length} statements in ${file} contain "${part}"`);
  return found[0]!.text;
}

/** The statements rewritten into the subset both engines share, run as the agent runs them (their text is read from agent/). */
async function rewrittenStatements(db: SqlRunner, statements: SqlStatement[]) {
  const counterAdd = statementIn(statements, "agent/target-counters.ts", "ON CONFLICT (name) DO UPDATE");
  const counters = [];
  for (const [period, by] of [
    ["2026-12-01", 3],
    ["2026-12-01", 4],
    ["2026-12-02", 1],
  ] as const)
    counters.push(await db.get(counterAdd, "counter:eco:calls", period, by));

  const nextSeq = statementIn(statements, "agent/pulls/inbox.ts", "coalesce(max(seq), 0) + 1");
  const insertItem = statementIn(statements, "agent/pulls/inbox.ts", "INSERT INTO inbox (seq");
  const seqs = [await db.get(nextSeq, 5000)];
  await db.run(insertItem, 7000, "eco", "payments", "r-1", "invoice.paid", "new", null, "{}", null, null, null, 1, 11, "invoice:1");
  seqs.push(await db.get(nextSeq, 10), await db.get(nextSeq, 9000));

  await db.run(
    `INSERT INTO events (event_id, type, entity, key, payload, received_at) VALUES ('e-1', 'customer.upserted', 'customer', '1', '{}', 1)`,
  );
  const delivery = `INSERT INTO deliveries (event_seq, target, entity, key, status, attempts, next_attempt_at, error_code, created_at, updated_at)
    VALUES ((SELECT seq FROM events WHERE event_id = 'e-1'), 'eco', 'customer', ?1, ?2, ?3, 1, ?4, 1, 1)`;
  for (const [key, status, attempts, code] of [
    ["1", "needs_action", 1, "c1"],
    ["1", "done", 2, "c2"],
    ["1", "needs_action", 3, "c3"],
    ["2", "needs_action", 1, "c4"],
    ["3", "pending", 1, "c5"],
  ] as const)
    await db.run(delivery, key, status, attempts, code);
  const newest = statementIn(statements, "agent/notify/alerts.ts", "SELECT max(id) FROM deliveries WHERE status = 'needs_action'");
  const newestNeedingAction = (await db.all(newest)).map(({ target, entity, key, attempts, code }) => ({
    target,
    entity,
    key,
    attempts,
    code,
  }));

  const report = statementIn(statements, "agent/master/store.ts", "INSERT INTO master_reports");
  const resolve = statementIn(statements, "agent/master/store.ts", "UPDATE master_reports SET resolved_at = ?5");
  const args = (at: number) => ["eco", "customer", "1", "name_differs", "target", "The names differ.", null, at];
  const reports = [await db.get(report, ...args(10)), await db.get(report, ...args(20))];
  await db.run(resolve, "eco", "customer", "1", null, 25);
  reports.push(await db.get(report, ...args(30)));
  reports.push(await db.get("SELECT first_at AS firstAt, last_at AS lastAt FROM master_reports WHERE key = '1'"));

  for (const key of ["9", "10", "A-1", "2147483648"])
    await db.run(
      `INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at) VALUES ('invoice', ?1, '{"kind":"invoice","date":"2026-12-01"}', 1, 1, 1)`,
      key,
    );
  const rangeText = statementIn(statements, "agent/exports/status.ts", "BETWEEN ?1 AND ?2 ORDER BY");
  const range = (await db.all<{ number: string }>(rangeText, 9, 2147483648)).map(({ number }) => ({ number }));
  const listed = await db.all<{ number: string }>(statementIn(statements, "agent/exports/status.ts", "LIMIT ?2 OFFSET ?3"), null, 10, 0);

  const run = `INSERT INTO job_runs (target, stream, trigger, status, started_at, finished_at) VALUES ('eco', ?1, 'schedule', ?2, ?3, ?3)`;
  for (const [stream, status, at] of [
    ["payments", "ok", 1],
    ["payments", "ok", 2],
    ["payments", "failed", 3],
    ["payments", "failed", 100],
    ["expenses", "failed", 4],
    ["expenses", "failed", 5],
  ] as const)
    await db.run(run, stream, status, at);
  await db.run(statementIn(statements, "agent/retention.ts", "DELETE FROM job_runs"), 50, 10);
  // Older than the cut-off, yet kept: each job's newest run and its newest successful one (if it has one).
  const keptRuns = await db.all("SELECT stream, status, started_at AS startedAt FROM job_runs ORDER BY started_at");

  // Credit notes linked at eco whose credited invoice arrived after them (agent/notify/credited-after-push.ts): 31
  // credits customer 9's invoice 30 (stored after it) for customer 10; 32 credits it too but is newer than it; 33 is not linked.
  const record = `INSERT INTO records (entity, key, payload, version, last_event_seq, updated_at, credits) VALUES ('invoice', ?1, ?2, 1, 1, ?3, ?4)`;
  const note = (customer: string) => JSON.stringify({ kind: "credit_note", customerNumber: customer, currency: "NOK", lines: [] });
  await db.run(record, "31", note("10"), 100, "30");
  await db.run(record, "33", note("10"), 100, "30");
  await db.run(record, "30", JSON.stringify({ kind: "invoice", customerNumber: "9", currency: "NOK", lines: [] }), 200, null);
  await db.run(record, "32", note("10"), 300, "30");
  for (const key of ["31", "32"])
    await db.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('eco', 'invoice', ?1, 'r', 'h', 150)`,
      key,
    );
  const wrongCredits = (await creditsSentUnchecked(db, ["eco", "other"])).map((p) => [p.target, p.subject, p.code]);
  return { counters, seqs, newestNeedingAction, reports, range, listed, keptRuns, wrongCredits };
}
