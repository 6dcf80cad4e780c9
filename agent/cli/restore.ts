// `kontobro restore FILE`: puts a backup in place, the agent stopped (see agent/restore-sqlite.ts for the rules).
import { databasePath } from "../agent.ts";
import { StorageError } from "../db/index.ts";
import { acquireInstanceLock } from "../lock.ts";
import { restoreDatabase } from "../restore-sqlite.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

export const restore = defineCommand({
  ...listed("restore"),
  description:
    "Checks that FILE is a sound kontobro database and puts it in place of the current one, which is kept as\n" +
    "kontobro.db.replaced-<time>. The agent must be stopped. At its next start every open delivery is looked up\n" +
    "at its target before anything is created again, and the PSA feed continues with new ids.",
  options: { ...CONFIG_OPTION },
  positionals: [1, 1],
  examples: ["systemctl stop kontobro && kontobro restore /var/backups/kontobro/nightly.db && systemctl start kontobro"],
  run({ values, positionals: [file] }) {
    const { config } = loadConfig(values.config);
    const dataDir = config.agent.data_dir;
    const dbPath = databasePath(dataDir);
    let lock: { release(): void };
    try {
      lock = acquireInstanceLock(dataDir);
    } catch (e) {
      if (e instanceof StorageError && /already running/.test(e.message)) {
        throw new StorageError(
          `An agent is running with the data directory ${dataDir}; nothing was restored.`,
          "Stop it first (e.g. `systemctl stop kontobro`), then run `kontobro restore` again, then start it.",
        );
      }
      throw e;
    }
    try {
      const { keptAs } = restoreDatabase(dataDir, dbPath, file!);
      console.log(`restored ${file} to ${dbPath}${keptAs ? `; the database it replaced is kept as ${keptAs}` : ""}`);
      console.log(
        "At the next start kontobro treats every open delivery as uncertain (it looks each one up at the target before creating anything),",
      );
      console.log(
        "and the PSA feed continues with new ids. Events the PSA sent after the backup was taken are not in it: have the PSA send again what changed since then.",
      );
      return 0;
    } finally {
      lock.release();
    }
  },
});
