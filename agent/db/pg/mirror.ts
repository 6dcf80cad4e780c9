// The PostgreSQL schema is derived from the SQLite one (agent/db/schema*.ts stays the one description of the
// tables): same tables, columns, defaults, indexes and foreign keys, plus a tenant_id on every table.
//   - tenant_id leads every natural primary key and every index, so one tenant's rows sit together and
//     "the same key in another tenant" is another row (two PSAs may both send event "e-1" or customer 1000);
//   - tenant_id defaults to the transaction's tenant (SET LOCAL kontobro.tenant), and row-level security lets a
//     statement see and write only that tenant's rows: SQL written for SQLite runs unchanged, scoped.
// Column types: SQLite integer → bigint (epoch ms overflow int4), an autoincrement id → bigint identity,
// boolean (0/1) → smallint 0/1 (the SQL compares with 1 and 0 on both engines), text → text, blob → bytea.
import { getTableColumns, is, SQL, sql } from "drizzle-orm";
import {
  bigint,
  customType,
  foreignKey,
  type IndexBuilder,
  index,
  integer,
  pgPolicy,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
  type PgColumn,
  type PgColumnBuilderBase,
  type PgTable,
  type PgTableWithColumns,
} from "drizzle-orm/pg-core";
import { getTableConfig, type SQLiteColumn, type SQLiteTable } from "drizzle-orm/sqlite-core";

import { TENANT_COLUMN, TENANT_SETTING } from "./tenancy.ts";

export { TENANT_COLUMN, TENANT_SETTING };
/** The transaction's tenant; an error when none is set, so an unscoped statement fails instead of seeing all. */
export const currentTenant: SQL = sql.raw(`current_setting('${TENANT_SETTING}')::integer`);
/** Row-level security: a row is visible and writable only inside a transaction of its tenant. */
const tenantMatches: SQL = sql.raw(`${TENANT_COLUMN} = current_setting('${TENANT_SETTING}')::integer`);

/** A SQLite boolean column stores 0 and 1; so does its PostgreSQL twin, so `uncertain = 1` means the same on both. */
const flag = customType<{ data: boolean; driverData: number }>({
  dataType: () => "smallint",
  toDriver: (v) => (v ? 1 : 0),
  fromDriver: (v) => Number(v) === 1,
});

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

/** The PostgreSQL twin of a SQLite column, as the query builder sees it: same name, value type and nullability. */
type TwinColumn<C> = C extends SQLiteColumn
  ? PgColumn<{
      name: C["_"]["name"];
      tableName: C["_"]["tableName"];
      dataType: C["_"]["dataType"];
      columnType: string;
      data: C["_"]["data"];
      driverParam: unknown;
      notNull: C["_"]["notNull"];
      hasDefault: C["_"]["hasDefault"];
      isPrimaryKey: C["_"]["isPrimaryKey"];
      isAutoincrement: false;
      hasRuntimeDefault: C["_"]["hasRuntimeDefault"];
      enumValues: C["_"]["enumValues"];
      baseColumn: never;
      identity: undefined;
      generated: undefined;
    }>
  : never;

/** A mirrored table: the SQLite table's columns (same property names and value types) and tenantId. */
export type Mirrored<T extends SQLiteTable> = PgTableWithColumns<{
  name: T["_"]["name"];
  schema: undefined;
  dialect: "pg";
  columns: { [K in keyof T["_"]["columns"]]: TwinColumn<T["_"]["columns"][K]> } & {
    tenantId: PgColumn<{
      name: "tenant_id";
      tableName: T["_"]["name"];
      dataType: "number";
      columnType: "PgInteger";
      data: number;
      driverParam: number;
      notNull: true;
      hasDefault: true;
      isPrimaryKey: false;
      isAutoincrement: false;
      hasRuntimeDefault: false;
      enumValues: undefined;
      baseColumn: never;
      identity: undefined;
      generated: undefined;
    }>;
  };
}>;

/** Tables that also get (tenant_id, id): the tenant's rows in id order (see mirrorTables). */
const TENANT_ORDERED = new Set(["events"]);

/**
 * Indexes only the PostgreSQL twin has. events_unpruned: a hosted tenant's prune (agent/hosted/finished-work-prune.ts)
 * finds its events that still hold their payload, oldest first, where its events are spread over the seq all tenants
 * share; the SQLite agent walks its own seq instead, and pays no index entry per event stored for it.
 */
const POSTGRES_ONLY: Record<string, (t: Record<string, any>) => IndexBuilder[]> = {
  events: (t) => [index("events_unpruned").on(t.tenantId, t.receivedAt).where(sql`payload <> ''`)],
};

/**
 * Whether the SQLite table's key is a generated id (kept as the key alone: ids are unique across tenants). In SQLite
 * every INTEGER PRIMARY KEY of one column is the rowid, given a value when an INSERT leaves it out, with
 * AUTOINCREMENT (never reused) or without (delivery_attempts.id); on PostgreSQL both are an identity.
 */
export const isIdentity = (c: SQLiteColumn) => c.primary && c.columnType === "SQLiteInteger";

/** The PostgreSQL column builder for one SQLite column. Throws for a type that has no mapping yet. */
export function pgColumnFor(table: string, c: SQLiteColumn): PgColumnBuilderBase {
  let b: any;
  switch (c.columnType) {
    case "SQLiteInteger":
      b = bigint(c.name, { mode: "number" });
      if (isIdentity(c)) return b.primaryKey().generatedByDefaultAsIdentity();
      break;
    case "SQLiteBoolean":
      b = flag(c.name);
      break;
    case "SQLiteText":
      b = c.enumValues?.length ? text(c.name, { enum: c.enumValues as [string, ...string[]] }) : text(c.name);
      break;
    case "SQLiteBlobBuffer":
      b = bytea(c.name);
      break;
    default:
      throw new Error(
        `${table}.${c.name}: no PostgreSQL type for SQLite column type ${c.columnType}; add one to agent/db/pg/mirror.ts (pgColumnFor)`,
      );
  }
  if (c.notNull) b = b.notNull();
  // A flag's default is written as 0 or 1 (drizzle-kit would write false, which smallint refuses).
  if (c.hasDefault && c.default !== undefined) b = b.default(c.columnType === "SQLiteBoolean" ? sql.raw(c.default ? "1" : "0") : c.default);
  return b;
}

/**
 * The PostgreSQL twin of every table in `sqliteTables` (keyed as given), with tenant_id referencing
 * `tenants.id`. Foreign keys between the given tables point at their twins.
 */
export function mirrorTables<M extends Record<string, SQLiteTable>>(
  sqliteTables: M,
  tenants: PgTable & { id: PgColumn },
): { [K in keyof M]: Mirrored<M[K]> } {
  const twins = new Map<SQLiteTable, PgTable>();
  const out: Record<string, PgTable> = {};
  for (const [exportName, source] of Object.entries(sqliteTables)) {
    const cfg = getTableConfig(source);
    const columns = getTableColumns(source) as Record<string, SQLiteColumn>;
    const keyOf = new Map(Object.entries(columns).map(([k, c]) => [c.name, k]));
    const builders: Record<string, PgColumnBuilderBase> = {
      tenantId: integer(TENANT_COLUMN)
        .notNull()
        .default(currentTenant)
        .references(() => tenants.id),
    };
    for (const [k, c] of Object.entries(columns)) builders[k] = pgColumnFor(cfg.name, c);
    const naturalKey = cfg.primaryKeys[0]?.columns ?? Object.values(columns).filter((c) => c.primary && !isIdentity(c));
    const identity = Object.values(columns).find(isIdentity);
    const twin = pgTable(cfg.name, builders, (t: Record<string, any>) => {
      const col = (c: { name: string }) => t[keyOf.get(c.name)!];
      return [
        ...(naturalKey.length > 0
          ? [primaryKey({ name: `${cfg.name}_pkey`, columns: [t.tenantId, ...naturalKey.map(col)] as [any, ...any[]] })]
          : []),
        // The events keep their seq as the key alone (seqs are global) and gain the tenant's events in seq order, as
        // SQLite's rowid gives them: a tenant's newest event (the claim's max(seq)) is one probe there, where the key
        // alone walks back past every newer event of the other tenants. Not on the other id-keyed tables: on deliveries
        // the planner took such an index for `id < ?` conditions (a record's older open delivery) and walked the
        // tenant's rows instead of probing deliveries_record.
        ...(identity && TENANT_ORDERED.has(cfg.name) ? [index(`${cfg.name}_tenant_${identity.name}`).on(t.tenantId, col(identity))] : []),
        ...(POSTGRES_ONLY[cfg.name]?.(t) ?? []),
        ...cfg.indexes.map((i) => {
          const built = (i.config.unique ? uniqueIndex(i.config.name) : index(i.config.name)).on(
            t.tenantId,
            // An expression (SQL) is the same text on both engines.
            ...i.config.columns.map((c) => (is(c, SQL) ? c : col(c as { name: string }))),
          );
          return i.config.where ? built.where(i.config.where) : built;
        }),
        ...cfg.foreignKeys.map((fk) => {
          const ref = fk.reference();
          return foreignKey({
            name: fk.getName(),
            columns: ref.columns.map(col) as [any, ...any[]],
            foreignColumns: ref.foreignColumns.map((fc) => {
              const target = twins.get(ref.foreignTable) as Record<string, any> | undefined;
              if (!target) throw new Error(`${cfg.name}: its foreign key points at a table that is not mirrored`);
              const name = Object.entries(getTableColumns(ref.foreignTable)).find(([, c]) => c.name === fc.name)![0];
              return target[name];
            }) as [any, ...any[]],
          });
        }),
        pgPolicy(`${cfg.name}_tenant`, { as: "permissive", for: "all", using: tenantMatches, withCheck: tenantMatches }),
      ];
    });
    twins.set(source, twin);
    out[exportName] = twin;
  }
  return out as unknown as { [K in keyof M]: Mirrored<M[K]> };
}
