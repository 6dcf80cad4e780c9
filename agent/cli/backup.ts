// `kontobro backup FILE`: a consistent copy of the database (see agent/restore-sqlite.ts for the rules).
import { databasePath } from "../agent.ts";
import { backupDatabase } from "../restore-sqlite.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

export const backup = defineCommand({
  ...listed("backup"),
  description:
    "One snapshot of the database, write-ahead log included (SQLite's VACUUM INTO), taken while the agent\n" +
    "keeps working. It never overwrites a file: FILE must not exist. Restore it with `kontobro restore FILE`.",
  options: { ...CONFIG_OPTION },
  positionals: [1, 1],
  examples: [
    "kontobro backup /var/backups/kontobro/nightly.db",
    ['kontobro backup "backup-$(date +%F).db" --config /etc/kontobro/kontobro.toml', "from cron, one file a day"],
  ],
  run({ values, positionals: [file] }) {
    const { config } = loadConfig(values.config);
    const dbPath = databasePath(config.agent.data_dir);
    const { bytes } = backupDatabase(dbPath, file!);
    console.log(`backup written to ${file} (${bytes} bytes) from ${dbPath}`);
    console.log(`restore it with: kontobro restore ${file} (with the agent stopped)`);
    return 0;
  },
});
