// `kontobro storage check`: opens the storage kontobro.toml names ([storage] url: the SQLite file in
// agent.data_dir, or PostgreSQL), migrated, and says what it found, or what is wrong and how to fix it.
import { StorageError } from "../db/index.ts";
import { MIN_SERVER_VERSION } from "../db/pg/tenancy.ts";
import { NOT_YET_ON_POSTGRES, openStorage, storageOf, type Storage } from "../storage.ts";
import { CONFIG_OPTION, defineCommand, defineGroup } from "./command.ts";
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
      storage = await openStorage(config, { max: 2 });
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
  name: "storage",
  args: "...",
  summary: "the storage kontobro.toml names: the SQLite file or PostgreSQL",
  subcommands: [check],
  examples: ["kontobro storage check"],
});
