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
    /** sha256 (hex) of each target's webhook token, as JSON: {"<target name>": "<hash>"}. */
    webhookTokenHashes: text("webhook_token_hashes").notNull().default("{}"),
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
} = mirrored;

/** Every tenant-scoped table, by its SQLite export name. */
export const tenantTables = mirrored;
