// Rows a statement reads on PostgreSQL, per table, from its EXPLAIN ANALYZE: what row-level security lets a plan
// probe and what it has to walk. Run in a savepoint rolled back at once (the statement changes nothing), with
// scans and hashing off as on tables too large for them: on a test's small tables scanning is the cheaper plan, so
// what is left is what the statement can probe.
import type { SqlRunner } from "../agent/db/pg/runner.ts";

interface PlanNode {
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Index Recheck"?: number;
  Plans?: PlanNode[];
}

/** Rows a plan read per table (returned, or read and filtered out), over all its loops. */
function rowsRead(node: PlanNode, into = new Map<string, number>()): Map<string, number> {
  const table = node["Relation Name"];
  if (table) {
    const perLoop = (node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0) + (node["Rows Removed by Index Recheck"] ?? 0);
    into.set(table, (into.get(table) ?? 0) + perLoop * (node["Actual Loops"] ?? 1));
  }
  for (const child of node.Plans ?? []) rowsRead(child, into);
  return into;
}

/** The rows `text` reads per table when run with `params` in `tx` (a transaction of a PostgreSQL runner). */
export async function planRows(tx: SqlRunner, text: string, params: unknown[]): Promise<Map<string, number>> {
  let rows = new Map<string, number>();
  const undo = new Error("undo the EXPLAIN ANALYZE");
  await tx
    .transaction(async (sp) => {
      // SET LOCAL ends with the savepoint.
      for (const off of ["seqscan", "bitmapscan", "hashjoin", "mergejoin"]) await sp.run(`SET LOCAL enable_${off} = off`);
      const [row] = await sp.all<Record<string, unknown>>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, ...params);
      const plan = Object.values(row!)[0];
      const [{ Plan }] = (typeof plan === "string" ? JSON.parse(plan) : plan) as { Plan: PlanNode }[];
      rows = rowsRead(Plan);
      throw undo;
    })
    .catch((e) => {
      if (e !== undo) throw e;
    });
  return rows;
}

/**
 * The runner with every statement of its transactions recorded; with `explain` (PostgreSQL) each is first run under
 * planRows and the rows its plan read are recorded with it.
 */
export function recording(runner: SqlRunner, explain: boolean) {
  const statements: { text: string; rows?: Map<string, number> }[] = [];
  const wrap = (tx: SqlRunner): SqlRunner => {
    // One statement at a time: an EXPLAIN's savepoint cannot share the connection with statements sent beside it
    // (together(), agent/db/pg/runner.ts), which would run inside it and be rolled back with it.
    let tail: Promise<unknown> = Promise.resolve();
    const record = async (text: string, params: unknown[]) => {
      const entry: (typeof statements)[number] = { text: text.replace(/\s+/g, " ").trim() };
      statements.push(entry);
      if (explain) entry.rows = await planRows(tx, text, params);
    };
    const each =
      <K extends "all" | "get" | "run" | "lockForUpdate">(k: K) =>
      (text: string, ...params: unknown[]) => {
        const result = tail.then(async () => {
          await record(text, params);
          return (tx[k] as (text: string, ...params: unknown[]) => unknown)(text, ...params);
        });
        tail = result.catch(() => {});
        return result;
      };
    return {
      all: each("all"),
      get: each("get"),
      run: each("run"),
      lockForUpdate: each("lockForUpdate"),
      transaction: (fn) => tx.transaction((inner) => fn(wrap(inner))),
      transactionDurableLater: (fn) => tx.transactionDurableLater((inner) => fn(wrap(inner))),
    } as SqlRunner;
  };
  const recorded: SqlRunner = {
    ...runner,
    all: (text, ...params) => runner.transaction((tx) => wrap(tx).all(text, ...params)),
    get: (text, ...params) => runner.transaction((tx) => wrap(tx).get(text, ...params)),
    run: (text, ...params) => runner.transaction((tx) => wrap(tx).run(text, ...params)),
    transaction: (fn) => runner.transaction((tx) => fn(wrap(tx))),
    transactionDurableLater: (fn) => runner.transactionDurableLater((tx) => fn(wrap(tx))),
  };
  return { runner: recorded, statements };
}
