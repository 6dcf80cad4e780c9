// A rolling upgrade (agent/db/pg/rolling-upgrade.ts): the workers of the version before go on, unaware, on the schema
// the first new worker migrated. Every PostgreSQL migration that takes away or narrows something of the schema is
// named here with why the version before survives it, or what the upgrade across it needs; a new one fails until it
// is looked at. Measured for 0009: the version before it, on the schema migrated past it, failed every read of the
// tenants (`select … "webhook_token_hashes" … from "tenants"`): its workers ran no tenant they had not started yet and
// its admin API answered 500. The version before 0012 passed its hosted-pulls and pull-runs tests on 0012, and the
// version before 0016 its hosted-workers, outbox and pg-workers tests on 0016.
import { describe, expect, test } from "bun:test";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { contractingStatements } from "../agent/db/pg/rolling-upgrade.ts";

/** Migrations looked at, with why workers of the version before survive them (or that none could be running). */
const REVIEWED: Record<string, string> = {
  "0003_attempt_ids": "before hosted workers existed (agent/hosted/worker.ts came later): no worker of the version before ran",
  "0004_pull_slots": "before hosted workers existed: no worker of the version before ran",
  "0009_drop_webhook_token_hashes":
    "BREAKS the version before (its tenant reads name the column): README, Upgrades, says to stop every worker of a version before it first",
  "0012_inbox_forgotten":
    "the version before inserts inbox items with a bare ON CONFLICT DO NOTHING, which any unique index serves, and the new index is unique over fewer rows",
};

describe("PostgreSQL migrations and the workers of the version before", () => {
  test("a migration that takes away or narrows the schema is one looked at (REVIEWED)", () => {
    const unreviewed = contractingStatements(embeddedMigrations)
      .filter((c) => !(c.migration in REVIEWED))
      .map((c) => `${c.migration}: ${c.statement} (${c.why})`);
    expect(unreviewed).toEqual([]);
  });

  test("what is named: drops (of a unique index, a default too), renames, narrowed columns, new uniqueness on tables that held rows; not on a new table", () => {
    const named = (sql: string) => contractingStatements([{ tag: "0099_x", sql }]).map((c) => c.why.split(" ")[0]);
    expect(named(`ALTER TABLE "deliveries" DROP COLUMN "remote_id";`)).toEqual(["drops"]);
    expect(named(`ALTER TABLE "deliveries" RENAME COLUMN "a" TO "b";`)).toEqual(["renames"]);
    expect(named(`ALTER TABLE "deliveries" ALTER COLUMN "a" SET DATA TYPE integer;`)).toEqual(["changes"]);
    expect(named(`ALTER TABLE "deliveries" ALTER COLUMN "a" SET NOT NULL;`)).toEqual(["makes"]);
    expect(named(`ALTER TABLE "deliveries" ADD COLUMN "a" bigint NOT NULL;`)).toEqual(["adds"]);
    expect(named(`CREATE UNIQUE INDEX "x" ON "deliveries" USING btree ("tenant_id","key");`)).toEqual(["adds"]);
    expect(named(`DROP TABLE "cursors";`)).toEqual(["drops"]);
    expect(named(`ALTER TABLE "deliveries" ALTER COLUMN "attempts" DROP DEFAULT;`)).toEqual(["drops"]);
    // A unique index dropped (the version before's ON CONFLICT may name it), a plain one not.
    const dropped = contractingStatements([
      { tag: "0098_x", sql: `CREATE UNIQUE INDEX "u" ON "deliveries" USING btree ("tenant_id","key");` },
      { tag: "0099_y", sql: [`DROP INDEX "u";`, `DROP INDEX "deliveries_ready";`].join("--> statement-breakpoint\n") },
    ]);
    expect(dropped.map((c) => [c.migration, c.statement])).toEqual([
      ["0098_x", `CREATE UNIQUE INDEX "u" ON "deliveries" USING btree ("tenant_id","key");`],
      ["0099_y", `DROP INDEX "u";`],
    ]);
    // Added: a nullable column, one with a default, an index, a table with its own constraints.
    expect(
      named(
        [
          `ALTER TABLE "deliveries" ADD COLUMN "a" bigint;`,
          `ALTER TABLE "delivery_stats" ADD COLUMN "b" bigint DEFAULT 0 NOT NULL;`,
          `CREATE INDEX "y" ON "deliveries" USING btree ("tenant_id","a");`,
          `CREATE TABLE "fresh" ("tenant_id" integer NOT NULL, "id" text NOT NULL);`,
          `ALTER TABLE "fresh" ADD CONSTRAINT "fresh_tenant_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id");`,
          `CREATE UNIQUE INDEX "fresh_id" ON "fresh" USING btree ("tenant_id","id");`,
        ].join("--> statement-breakpoint\n"),
      ),
    ).toEqual([]);
  });
});
