// Every table that holds a tenant's rows, from the PostgreSQL schema (agent/db/pg/schema.ts: every mirrored
// table has tenant_id), ordered so that a table comes before the tables its foreign keys point at: deleting
// a tenant's rows in this order never trips a foreign key.
import { getTableConfig, type PgTable } from "drizzle-orm/pg-core";
import { tenantTables } from "../db/pg/schema.ts";

/** Table names, each before every table it references (pure; a cycle is a schema error and throws). */
export function childrenFirst(tables: PgTable[]): string[] {
  const refs = new Map(
    tables.map((t) => {
      const cfg = getTableConfig(t);
      return [cfg.name, cfg.foreignKeys.map((fk) => getTableConfig(fk.reference().foreignTable).name).filter((n) => n !== cfg.name)];
    }),
  );
  const referencedBy = (name: string) => [...refs].filter(([, to]) => to.includes(name)).map(([from]) => from);
  const out: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string) => {
    if (out.includes(name)) return;
    if (visiting.has(name)) throw new Error(`the foreign keys of ${name} form a cycle; tenant rows cannot be deleted in order`);
    visiting.add(name);
    for (const child of referencedBy(name)) visit(child);
    visiting.delete(name);
    out.push(name);
  };
  for (const name of [...refs.keys()].sort()) visit(name);
  return out;
}

/** Every tenant table of the schema, children first. */
export const TENANT_TABLES: readonly string[] = childrenFirst(Object.values(tenantTables) as PgTable[]);
