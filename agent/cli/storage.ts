// `kontobro storage check`: opens the storage kontobro.toml names ([storage] url: the SQLite file in
// agent.data_dir, or PostgreSQL), migrated, and says what it found, or what is wrong and how to fix it.
// `kontobro storage restored`: the operator tells the PostgreSQL workers the database was restored.
import { StorageError } from "../db/index.ts";
import { describeIndexStep } from "../db/pg/index-steps.ts";
import { describeLockTimeout, describeLockWait, describeSlowStep } from "../db/pg/migrate-report.ts";
import { MIN_SERVER_VERSION } from "../db/pg/tenancy.ts";
import { RESTORE_LOOKUP_DAYS } from "../restore.ts";
import { NOT_YET_ON_POSTGRES, openStorage, storageOf, type Storage } from "../storage.ts";
import { CONFIG_OPTION, defineCommand, defineGroup } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

const check = defineCommand({
  name: "check",
  summary: "connect to the configured storage, migrate it, and report what was found",
  description:
    "Without [storage] url: the SQLite file in agent.data_dir (created if there is none). With a postgres:// url:\n" +
    `connects, checks the server (PostgreSQL ${MIN_SERVER_VERSION} or newer) and the role (neither superuser nor BYPASSRLS, so\n` +
    "row-level security keeps tenants apart), applies the migrations under the migration lock (safe while other\n" +
    "workers start) and counts the tenants. Exits 1, saying how to fix it, when something is wrong.",
  options: { ...CONFIG_OPTION },
  examples: [
    "kontobro storage check",
    ["KONTOBRO_PG_PASSWORD=… kontobro storage check --config /etc/kontobro/kontobro.toml", "before the first start on PostgreSQL"],
  ],
  async run({ values }) {
    const { config, warnings } = loadConfig(values.config, { postgres: true });
    for (const w of warnings) console.log(`warning: ${w}`);
    const choice = storageOf(config);
    console.log(choice.engine === "sqlite" ? `Storage: the SQLite file ${choice.path}` : "Storage: PostgreSQL");
    let storage: Storage;
    try {
      storage = await openStorage(config, {
        max: 2,
        // An upgrade on a large PostgreSQL database may build indexes for minutes: say what it is doing.
        migrate: {
          onWait: (wait) => console.log(`  ${describeLockWait(wait).msg}`),
          onSlowStep: (report) => console.log(`  ${describeSlowStep(report).msg}`),
          onLockTimeout: (report) => console.log(`  ${describeLockTimeout(report).msg}`),
          onStep: (step) => {
            const { msg, index } = describeIndexStep(step);
            console.log(`  ${msg}: ${index}`);
          },
        },
      });
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      console.log(`  FAIL ${e.message}\n       fix: ${e.hint}`);
      return 1;
    }
    try {
      for (const line of reportLines(storage)) console.log(line);
      const r = storage.report;
      return "forcedRls" in r && r.forcedRls !== r.tables ? 1 : 0;
    } finally {
      await storage.close();
    }
  },
});

const restored = defineCommand({
  name: "restored",
  summary: "tell the PostgreSQL workers the database was restored: what was pushed since is looked up, not created twice",
  description:
    "For a restore the workers cannot see by themselves (agent/db/pg/README.md, Restores): a snapshot of the database\n" +
    "server taken back while every worker was stopped, or a restore done so that nothing about the database changed.\n" +
    "For every tenant, in one transaction: every open delivery is looked up at its target before any create, and so is\n" +
    `every record new to a target for ${RESTORE_LOOKUP_DAYS} days (or whose change is dated before then); GET /api/v1/status shows it.\n` +
    "Running workers start their tenants afresh at their next heartbeat. Safe to repeat: it only costs lookups.\n" +
    "With the SQLite file, `kontobro restore FILE` puts a backup in place and the next start does this.",
  options: { ...CONFIG_OPTION },
  examples: [["kontobro storage restored --config /etc/kontobro/kontobro.toml", "after putting back a snapshot of the database server"]],
  async run({ values, path }) {
    const { config } = loadConfig(values.config, { postgres: true });
    if (storageOf(config).engine === "sqlite") {
      console.error(
        `${path}: this installation keeps its data in the SQLite file; \`kontobro restore FILE\` puts a backup in place, and the next start looks up what may have been pushed since.`,
      );
      return 2;
    }
    let storage: Storage;
    try {
      storage = await openStorage(config, { max: 2 });
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      console.error(`${path}: ${e.message}\n  fix: ${e.hint}`);
      return 1;
    }
    try {
      if (storage.engine !== "postgres") return 2;
      const { checkHistory, readIdentity } = await import("../db/pg/restore-watch.ts");
      const { identity } = await readIdentity(storage.client);
      const { applied } = await checkHistory(storage.client, identity, null, {
        operator: "the operator said so (kontobro storage restored)",
      });
      console.log(
        `Restore recorded for ${applied!.tenants} tenant(s): ${applied!.openDeliveries} open deliveries are looked up at their targets before any create, ` +
          `and records new to a target are looked up first for ${RESTORE_LOOKUP_DAYS} days. Running workers start their tenants afresh at their next heartbeat.`,
      );
      console.log(`Why: ${applied!.reason}.`);
      return 0;
    } finally {
      await storage.close();
    }
  },
});

/** What an opened storage reports, one line per check. */
export function reportLines(storage: Storage): string[] {
  if (storage.engine === "sqlite") {
    const r = storage.report;
    return [
      `  ok   SQLite ${r.sqliteVersion}, ${r.migrations} migrations applied, ${r.bytes} bytes`,
      "The agent runs on this storage (one installation, one tenant).",
    ];
  }
  const r = storage.report;
  return [
    `  ok   ${storage.location}`,
    `  ok   server: PostgreSQL ${r.version} (${MIN_SERVER_VERSION} or newer is needed)`,
    `  ok   role "${r.role}" on database "${r.database}": no superuser, no BYPASSRLS, so row-level security holds for it`,
    `  ok   migrations: ${r.migrations} applied`,
    `  ${r.forcedRls === r.tables ? "ok  " : "FAIL"} row-level security: on ${r.tables} tenant tables, forced for their owner on ${r.forcedRls}`,
    `  ok   tenants: ${r.tenants}${r.tenants === 0 ? " (kontobro tenant add adds one)" : ""}`,
    `kontobro run starts a worker of this hosted installation. Not yet on PostgreSQL: ${NOT_YET_ON_POSTGRES.join("; ")}.`,
  ];
}

export const storage = defineGroup({
  ...listed("storage"),
  subcommands: [check, restored],
  examples: ["kontobro storage check", "kontobro storage restored"],
});
