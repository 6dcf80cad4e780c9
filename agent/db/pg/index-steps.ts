// Which statements of a PostgreSQL migration build or drop an index on a table that already holds rows, and the steps
// that do the same without stopping its writers (agent/db/pg/migrate.ts runs them). A plain CREATE INDEX holds a SHARE
// lock on its table for the whole build, and a DROP INDEX an ACCESS EXCLUSIVE one (until the migration's transaction
// commits): on a hosted database every tenant's intake and dispatch waited for them (11 s with 3,000,000 deliveries,
// agent/db/pg/README.md). CONCURRENTLY cannot run inside a transaction, so these statements leave the migration's
// transaction and become steps run after it, each of which can be run again after an interruption. Pure.

/** An index statement as drizzle-kit writes it (`CREATE [UNIQUE] INDEX "name" ON "table" …`, `DROP INDEX "name"`). */
export type IndexStatement =
  | { kind: "create"; name: string; table: string; unique: boolean; rest: string }
  | { kind: "drop"; name: string };

/** One step run outside any transaction. `create`'s sql builds the index `name` with CONCURRENTLY. */
export type IndexStep =
  | { op: "create"; name: string; sql: string }
  | { op: "drop"; name: string }
  | { op: "rename"; from: string; to: string };

export interface MigrationPlan {
  /** Run in the migration's transaction, in order. */
  inTransaction: string[];
  /** Run after it commits, in order. */
  steps: IndexStep[];
}

const IDENT = `"((?:[^"]|"")+)"`;
const CREATE = new RegExp(
  `^CREATE\\s+(UNIQUE\\s+)?INDEX\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?${IDENT}\\s+ON\\s+(?:ONLY\\s+)?(?:"public"\\.)?${IDENT}(\\s[\\s\\S]*?)\\s*;?\\s*$`,
  "i",
);
const DROP = new RegExp(`^DROP\\s+INDEX\\s+(?:IF\\s+EXISTS\\s+)?(?:"public"\\.)?${IDENT}\\s*;?\\s*$`, "i");
const unquote = (s: string) => s.replaceAll('""', '"');
export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The index statement `sql` is (one statement, as between drizzle-kit's breakpoints), or null. */
export function indexStatement(sql: string): IndexStatement | null {
  const text = sql.trim();
  if (text.includes(";") && !/;\s*$/.test(text)) return null; // more than one statement: left as it is
  const c = CREATE.exec(text);
  if (c) return { kind: "create", name: unquote(c[2]!), table: unquote(c[3]!), unique: Boolean(c[1]), rest: c[4]!.trim() };
  const d = DROP.exec(text);
  if (d) return { kind: "drop", name: unquote(d[1]!) };
  return null;
}

/** The name an index is built under while an index of its own name is still in use (at most 63 bytes, as PostgreSQL's). */
export function buildingName(name: string): string {
  const suffix = "_kb_build";
  let base = name;
  while (new TextEncoder().encode(base + suffix).length > 63) base = base.slice(0, -1);
  return base + suffix;
}

const createSql = (s: Extract<IndexStatement, { kind: "create" }>, name: string) =>
  `CREATE ${s.unique ? "UNIQUE " : ""}INDEX CONCURRENTLY ${quoteIdent(name)} ON ${quoteIdent(s.table)} ${s.rest}`;

/**
 * Splits a migration's statements. `concurrent(stmt)` says whether an index statement is on a table that already holds
 * rows (the caller looks; a table created or empty at this point keeps the plain statement in the transaction, which
 * costs nothing). Such a build becomes a CONCURRENTLY step; an index dropped and built again under its own name is built
 * under buildingName first, and the old one dropped and the new one renamed after it, so the table is never without
 * it; drops come after the builds of the same migration.
 */
export function planMigration(statements: string[], concurrent: (s: IndexStatement) => boolean): MigrationPlan {
  const inTransaction: string[] = [];
  const builds: IndexStep[] = [];
  const dropped: string[] = [];
  for (const sql of statements) {
    if (!sql.trim()) continue;
    const s = indexStatement(sql);
    if (!s || !concurrent(s)) {
      inTransaction.push(sql);
      continue;
    }
    if (s.kind === "drop") {
      if (!dropped.includes(s.name)) dropped.push(s.name);
      continue;
    }
    const replaces = dropped.indexOf(s.name);
    if (replaces < 0) builds.push({ op: "create", name: s.name, sql: createSql(s, s.name) });
    else {
      dropped.splice(replaces, 1);
      const tmp = buildingName(s.name);
      builds.push(
        { op: "create", name: tmp, sql: createSql(s, tmp) },
        { op: "drop", name: s.name },
        { op: "rename", from: tmp, to: s.name },
      );
    }
  }
  return { inTransaction, steps: [...builds, ...dropped.map((name): IndexStep => ({ op: "drop", name }))] };
}

/** A step as a log line says it. */
export function describeIndexStep(step: IndexStep): { msg: string; index: string } {
  if (step.op === "rename") return { msg: "renaming an index built beside its old one", index: step.to };
  return { msg: step.op === "create" ? "building an index (CONCURRENTLY)" : "dropping an index (CONCURRENTLY)", index: step.name };
}

/** The indexes a migration's statements build or drop, by name. */
export function indexesNamed(statements: string[]): string[] {
  const names: string[] = [];
  for (const sql of statements) {
    const s = indexStatement(sql);
    if (s && !names.includes(s.name)) names.push(s.name);
  }
  return names;
}

/**
 * What is left to run of a stored step of a migration once later migrations, already applied, built or dropped the
 * indexes `laterNamed`. A version from before the steps (drizzle's migrator) that knows those migrations applies them
 * as they are, ignoring stored steps: e.g. 0013's steps left by an interrupted upgrade, then 0014-0015 applied by a
 * rolled-back worker, whose 0015 dropped deliveries_record and built it with its own definition. The later migration
 * decided such an index, so a step on it is not run: its own drop or build, and the swap of an index built beside it
 * (`<name>_kb_build`, buildingName) becomes the drop of that building index, which nothing uses. A step on any other
 * index is run as it is. Steps of one run never meet this: a migration's steps are run before the next is applied.
 */
export function stepAfterLater(step: IndexStep, laterNamed: readonly string[]): IndexStep | null {
  const named = (name: string) => laterNamed.includes(name);
  const beside = (name: string) => laterNamed.some((n) => n !== name && buildingName(n) === name);
  if (step.op === "create") {
    if (named(step.name)) return null;
    return beside(step.name) ? { op: "drop", name: step.name } : step;
  }
  if (step.op === "drop") return named(step.name) ? null : step;
  return named(step.to) ? { op: "drop", name: step.from } : step;
}
