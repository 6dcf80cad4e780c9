// A rolling upgrade of a hosted installation (agent/db/pg/README.md, "Upgrades"): the first worker of a new version
// migrates while the workers of the version before go on claiming, pushing and taking events on the new schema until
// each is replaced. Nothing tells them the schema moved on, so a migration must leave the version before working:
// it adds (tables, nullable columns or columns with a default, indexes) and never takes away or narrows what that
// version reads or writes. This names the statements of a migration that do (pure), for test/pg-migrations-compatible
// and `npm run db:generate`; such a change goes in two releases (stop using it, then drop it), or the upgrade
// needs every worker of older versions stopped first, said in the README.
import type { EmbeddedMigration } from "./migrate.ts";

/** A statement of a migration that workers of the version before it may not survive, and why. */
export interface ContractingStatement {
  migration: string;
  statement: string;
  why: string;
}

const RULES: { pattern: RegExp; why: string }[] = [
  { pattern: /\bDROP\s+TABLE\b/i, why: "drops a table the version before may still read or write" },
  {
    pattern: /\bDROP\s+COLUMN\b/i,
    why: "drops a column the version before may still read or write (drizzle's select() names every column)",
  },
  { pattern: /\bRENAME\b/i, why: "renames what the version before names by its old name" },
  { pattern: /\bALTER\s+COLUMN\b[\s\S]*\b(SET\s+DATA\s+TYPE|TYPE)\b/i, why: "changes a column's type under the version before" },
  { pattern: /\bALTER\s+COLUMN\b[\s\S]*\bSET\s+NOT\s+NULL\b/i, why: "makes a column required that the version before may leave empty" },
  {
    pattern: /\bALTER\s+COLUMN\b[\s\S]*\bDROP\s+DEFAULT\b/i,
    why: "drops a default the version before's inserts count on (they leave the column out)",
  },
  { pattern: /\bDROP\s+CONSTRAINT\b/i, why: "drops a constraint the version before may count on (its ON CONFLICT target, a key)" },
  {
    pattern: /\bADD\s+(?:CONSTRAINT\b[\s\S]*)?\b(PRIMARY\s+KEY|UNIQUE|CHECK|FOREIGN\s+KEY)\b/i,
    why: "adds a constraint the version before's writes may break",
  },
  {
    pattern: /\bCREATE\s+UNIQUE\s+INDEX\b/i,
    why: "adds a uniqueness the version before's writes may break (or its ON CONFLICT may not name)",
  },
];

/** `ADD COLUMN … NOT NULL` without a default: the version before's inserts do not name the column and are refused. */
const REQUIRED_COLUMN = /\bADD\s+COLUMN\b(?![\s\S]*\bDEFAULT\b)[\s\S]*\bNOT\s+NULL\b/i;

/** `DROP INDEX "name"`: the index's name (an index is dropped by name alone), or null. */
function droppedIndex(statement: string): string | null {
  return /^DROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?(?:"public"\.)?"([^"]+)"/i.exec(statement)?.[1] ?? null;
}

/** `CREATE UNIQUE INDEX "name"`: the index's name, or null. */
function createdUniqueIndex(statement: string): string | null {
  return /^CREATE\s+UNIQUE\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"([^"]+)"/i.exec(statement)?.[1] ?? null;
}

/** The table a statement is about ("deliveries" in ALTER TABLE "deliveries" … or CREATE INDEX … ON "deliveries"), or null. */
function tableOf(statement: string): string | null {
  const m = /\b(?:ALTER\s+TABLE|DROP\s+TABLE|\bON)\s+(?:ONLY\s+)?(?:"public"\.)?"([^"]+)"/i.exec(statement);
  return m ? m[1]! : null;
}

/**
 * The statements of `migrations` (in order, from the first: a dropped index is known unique by the migration that made
 * it) that workers of the version before each may not survive. A statement on a table its own migration creates is not
 * one: no earlier version knew that table.
 */
export function contractingStatements(migrations: Pick<EmbeddedMigration, "tag" | "sql">[]): ContractingStatement[] {
  const found: ContractingStatement[] = [];
  // The unique indexes the migrations so far have made: dropping one takes away what the version before may count on.
  const unique = new Set<string>();
  for (const migration of migrations) {
    const statements = migration.sql
      .split("--> statement-breakpoint")
      .map((s) => s.trim())
      .filter(Boolean);
    const created = new Set(statements.flatMap((s) => /^CREATE\s+TABLE\s+"([^"]+)"/i.exec(s)?.[1] ?? []));
    for (const statement of statements) {
      const dropped = droppedIndex(statement);
      const droppedUnique = dropped !== null && unique.delete(dropped);
      const made = createdUniqueIndex(statement);
      if (made) unique.add(made);
      const table = tableOf(statement);
      if (table && created.has(table)) continue;
      const why = REQUIRED_COLUMN.test(statement)
        ? "adds a required column without a default: the version before's inserts leave it out and are refused"
        : droppedUnique
          ? "drops a unique index the version before may count on (its ON CONFLICT target; no duplicates)"
          : RULES.find((r) => r.pattern.test(statement))?.why;
      if (why) found.push({ migration: migration.tag, statement, why });
    }
  }
  return found;
}
