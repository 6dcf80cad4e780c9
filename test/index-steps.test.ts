// agent/db/pg/index-steps.ts: which statements of a PostgreSQL migration leave its transaction to build or drop an index
// CONCURRENTLY, and in what order (pure; test/pg-migrate-concurrent.test.ts runs them on a real server).
import { describe, expect, test } from "bun:test";
import {
  buildingName,
  describeIndexStep,
  indexesNamed,
  indexStatement,
  planMigration,
  stepAfterLater,
} from "../agent/db/pg/index-steps.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";

const statementsOf = (tag: string) =>
  embeddedMigrations
    .find((m) => m.tag.startsWith(tag))!
    .sql.split("--> statement-breakpoint")
    .map((s) => s.trim());

describe("index statements of a migration", () => {
  test("drizzle-kit's forms are read; anything else is not an index statement", () => {
    expect(
      indexStatement(`CREATE INDEX "deliveries_done_id" ON "deliveries" USING btree ("tenant_id","id") WHERE status = 'done';`),
    ).toEqual({
      kind: "create",
      name: "deliveries_done_id",
      table: "deliveries",
      unique: false,
      rest: `USING btree ("tenant_id","id") WHERE status = 'done'`,
    });
    expect(indexStatement(`CREATE UNIQUE INDEX "inbox_remote" ON "inbox" USING btree ("tenant_id","target","remote_id")`)).toMatchObject({
      kind: "create",
      unique: true,
      table: "inbox",
    });
    expect(indexStatement(`DROP INDEX "deliveries_record";`)).toEqual({ kind: "drop", name: "deliveries_record" });
    expect(indexStatement(`ALTER TABLE "deliveries" ADD COLUMN "lease_owner" bigint;`)).toBeNull();
    expect(indexStatement(`DROP INDEX "a";ALTER TABLE "t" DROP COLUMN "c";`)).toBeNull();
  });

  test("on tables that hold rows, builds become CONCURRENTLY steps; an index built again under its name is swapped in, drops come last", () => {
    const plan = planMigration(statementsOf("0013_"), () => true);
    expect(plan.inTransaction).toEqual([]);
    expect(plan.steps.map((s) => (s.op === "rename" ? `rename ${s.from} ${s.to}` : `${s.op} ${s.name}`))).toEqual([
      "create deliveries_ready_kb_build",
      "drop deliveries_ready",
      "rename deliveries_ready_kb_build deliveries_ready",
      "create deliveries_record_kb_build",
      "drop deliveries_record",
      "rename deliveries_record_kb_build deliveries_record",
      "create deliveries_status_id_kb_build",
      "drop deliveries_status_id",
      "rename deliveries_status_id_kb_build deliveries_status_id",
    ]);
    expect(plan.steps[0]).toEqual({
      op: "create",
      name: "deliveries_ready_kb_build",
      sql: `CREATE INDEX CONCURRENTLY "deliveries_ready_kb_build" ON "deliveries" USING btree ("tenant_id","target","status","next_attempt_at") WHERE status <> 'done'`,
    });
    const drops = planMigration([`DROP INDEX "a";`, `CREATE INDEX "b" ON "t" USING btree ("x");`], () => true);
    expect(drops.steps.map((s) => s.op)).toEqual(["create", "drop"]);
  });

  test("on an empty or new table every statement stays in the migration's transaction, in order", () => {
    const statements = statementsOf("0000_");
    const plan = planMigration(statements, () => false);
    expect(plan.inTransaction).toEqual(statements.filter((s) => s));
    expect(plan.steps).toEqual([]);
    const mixed = planMigration(
      [
        `ALTER TABLE "t" ADD COLUMN "x" bigint;`,
        `CREATE INDEX "t_x" ON "t" USING btree ("x");`,
        `CREATE INDEX "n_x" ON "n" USING btree ("x");`,
      ],
      (s) => s.kind === "create" && s.table === "t",
    );
    expect(mixed.inTransaction).toEqual([`ALTER TABLE "t" ADD COLUMN "x" bigint;`, `CREATE INDEX "n_x" ON "n" USING btree ("x");`]);
    expect(mixed.steps).toEqual([{ op: "create", name: "t_x", sql: `CREATE INDEX CONCURRENTLY "t_x" ON "t" USING btree ("x")` }]);
  });

  test("a building name stays within PostgreSQL's 63 bytes", () => {
    expect(buildingName("deliveries_ready")).toBe("deliveries_ready_kb_build");
    const long = buildingName("x".repeat(63));
    expect(long.length).toBe(63);
    expect(long.endsWith("_kb_build")).toBe(true);
  });

  test("a stored step on an index that a later migration, already applied, named is not run; its building index is dropped", () => {
    const later = indexesNamed(statementsOf("0015_"));
    expect(later).toEqual(["deliveries_record"]);
    const steps = planMigration(statementsOf("0013_"), () => true).steps;
    const left = steps
      .map((s) => stepAfterLater(s, later))
      .map((s) => (s === null ? null : s.op === "rename" ? `rename ${s.from}` : `${s.op} ${s.name}`));
    expect(left).toEqual([
      "create deliveries_ready_kb_build",
      "drop deliveries_ready",
      "rename deliveries_ready_kb_build",
      // 0015 dropped deliveries_record and built its own: 0013's build beside it is dropped, if it was made.
      "drop deliveries_record_kb_build",
      null,
      "drop deliveries_record_kb_build",
      "create deliveries_status_id_kb_build",
      "drop deliveries_status_id",
      "rename deliveries_status_id_kb_build",
    ]);
    // Nothing later applied, or later migrations naming other indexes: every step as it is.
    for (const named of [[], indexesNamed(statementsOf("0014_"))]) for (const s of steps) expect(stepAfterLater(s, named)).toBe(s);
    // A plain build or drop of an index a later migration named (dropped it, built it again, or built it after a drop).
    expect(stepAfterLater({ op: "create", name: "deliveries_done_id", sql: "" }, ["deliveries_done_id"])).toBeNull();
    expect(stepAfterLater({ op: "drop", name: "x" }, ["x"])).toBeNull();
  });

  test("a step as the worker logs it", () => {
    expect(describeIndexStep({ op: "create", name: "deliveries_done_id", sql: "" })).toEqual({
      msg: "building an index (CONCURRENTLY)",
      index: "deliveries_done_id",
    });
    expect(describeIndexStep({ op: "rename", from: "x_kb_build", to: "x" })).toEqual({
      msg: "renaming an index built beside its old one",
      index: "x",
    });
  });
});
