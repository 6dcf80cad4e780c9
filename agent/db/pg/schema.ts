// The PostgreSQL schema (hosted mode, issue 17): the tenants and workers (global), and a twin of every SQLite table with a
// tenant_id (agent/db/pg/mirror.ts). drizzle-kit reads this file for the PostgreSQL migrations
// (agent/db/pg/drizzle.config.ts). A new agent/db/schema*.ts file is added to SOURCES below; test/pg-schema.test.ts
// fails until it is.
import { sql } from "drizzle-orm";
import { bigint, integer, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import * as core from "../schema.ts";
import * as exportTables from "../schema-exports.ts";
import * as notifyTables from "../schema-notify.ts";
import * as pullTables from "../schema-pulls.ts";
import * as statsTables from "../schema-stats.ts";
import { mirrorTables } from "./mirror.ts";

/** Every SQLite schema module, by file name: the tables the PostgreSQL schema mirrors. */
export const SOURCES = {
  "schema.ts": core,
  "schema-exports.ts": exportTables,
  "schema-notify.ts": notifyTables,
  "schema-pulls.ts": pullTables,
  "schema-stats.ts": statsTables,
};

/** One row per tenant: a PSA vendor's customer, or a bureau's client. Not row-level secured: the workers list them. */
export const tenants = pgTable(
  "tenants",
  {
    id: integer("id").primaryKey().generatedByDefaultAsIdentity(),
    /** The name in `kontobro tenant add <slug>`, URLs and logs: lowercase letters, digits and dashes. */
    slug: text("slug").notNull(),
    /** For people: "Acme Consulting A/S". */
    name: text("name").notNull(),
    /** active | disabled (a disabled tenant's API answers 403 and the workers skip its work). */
    state: text("state", { enum: ["active", "disabled"] })
      .notNull()
      .default("active"),
    /** The tenant's [[targets]], [psa], [pulls], [exports] and [notifications] as JSON, with kontobro.toml's keys. */
    config: text("config").notNull().default("{}"),
    /** sha256 (hex) of the tenant's API token; the token itself is shown once, when the tenant is added. */
    apiTokenHash: text("api_token_hash").notNull(),
    createdAt: bigint("created_at", { mode: "number" }).notNull(),
    updatedAt: bigint("updated_at", { mode: "number" }).notNull(),
  },
  (t) => [uniqueIndex("tenants_slug").on(t.slug), uniqueIndex("tenants_api_token").on(t.apiTokenHash)],
);

/**
 * One row per running `kontobro run` process (agent/db/pg/workers.ts). Not row-level secured: workers are the
 * installation's, not a tenant's. Times are the database's clock (clock_timestamp()), never a machine's: one
 * worker's clock may be off, and a worker is judged by how long the server has not heard from it.
 */
export const workers = pgTable("workers", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
  host: text("host").notNull(),
  pid: integer("pid").notNull(),
  startedAt: timestamp("started_at", { withTimezone: true, mode: "string" }).notNull().default(sql`clock_timestamp()`),
  /** The last heartbeat; older than the dead-after setting (30 s by default), the worker is dead and its leases recovered. */
  heartbeatAt: timestamp("heartbeat_at", { withTimezone: true, mode: "string" }).notNull().default(sql`clock_timestamp()`),
});

/**
 * One row (id 1): the history this database remembers of itself, to notice a restore or a move (agent/db/pg/restore-watch.ts;
 * agent/db/pg/README.md "Restores"). What the server said about the database when a worker last looked (NULL until
 * then, or where the role may not ask), a random incarnation (new at every restore handled) and a generation the
 * workers advance at every look. Not row-level secured: it is the installation's.
 */
export const databaseHistory = pgTable("database_history", {
  id: integer("id").primaryKey(),
  /** pg_control_system().system_identifier: the cluster (initdb); a dump restored on another server changes it. */
  systemIdentifier: text("system_identifier"),
  /** pg_database.oid: a dump restored into a new (or dropped and recreated) database changes it. */
  databaseOid: bigint("database_oid", { mode: "number" }),
  /** This table's own oid: a dump restored into the same database (pg_restore --clean, psql) creates the table anew. */
  tableOid: bigint("table_oid", { mode: "number" }),
  /** The WAL timeline: a point-in-time recovery or a standby's promotion raises it. */
  timeline: integer("timeline"),
  incarnation: text("incarnation").notNull(),
  /** The incarnation a handled restore replaced: live workers that knew that one take the new one without a second alarm. */
  replacedIncarnation: text("replaced_incarnation"),
  generation: bigint("generation", { mode: "number" }).notNull().default(0),
  checkedAt: timestamp("checked_at", { withTimezone: true, mode: "string" }),
});

const mirrored = mirrorTables({ ...core, ...exportTables, ...notifyTables, ...pullTables, ...statsTables }, tenants);

// Named exports: drizzle-kit finds the tables among a schema module's exports (test/pg-schema.test.ts names a
// table missing here).
export const {
  events,
  records,
  deliveries,
  deliveryAttempts,
  links,
  settings,
  targetState,
  credentials,
  masterRecords,
  masterReports,
  exportRuns,
  exportFiles,
  invoiceExportStatus,
  exportTemplates,
  alerts,
  notifications,
  inbox,
  cursors,
  pullStatus,
  jobRuns,
  deliveryStats,
  runningWork,
} = mirrored;

/** Every tenant-scoped table, by its SQLite export name. */
export const tenantTables = mirrored;
