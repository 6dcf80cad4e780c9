// `kontobro prune`: prunes finished work now, as the running agent does every hour. Safe while the agent
// runs (small transactions on the same database file).
import { databasePath } from "../agent.ts";
import { openDatabase } from "../db/index.ts";
import { databaseSize, describePrune, pruneOnce, storageLines } from "../retention.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

export const prune = defineCommand({
  ...listed("prune"),
  description:
    "Removes the payloads and history of work finished longer ago than the retention period; what is still\n" +
    "open, what needs action and the newest state of every record are always kept (see the README, Retention).",
  options: {
    days: { type: "string", value: "N", help: "keep finished work of the last N days (default agent.retention_days)" },
    json: { type: "boolean", help: "machine-readable: what was pruned and the database's size" },
    ...CONFIG_OPTION,
  },
  examples: ["kontobro prune", ["kontobro prune --days 30 --json", "once, with a shorter period than configured"]],
  async run({ values, path }) {
    const { config } = loadConfig(values.config);
    const days = values.days === undefined ? config.agent.retention_days : Number(values.days);
    if (!Number.isInteger(days) || days < 1) {
      console.error(
        values.days === undefined
          ? "agent.retention_days is 0 in kontobro.toml, which keeps everything; nothing was pruned. Pass --days N to prune once anyway."
          : `--days must be a whole number of days, at least 1 (got "${values.days}") (see ${path} --help)`,
      );
      return 2;
    }
    const db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
    try {
      const result = await pruneOnce(db, { retentionDays: days });
      if (values.json) console.log(JSON.stringify({ ...result, database: databaseSize(db) }, null, 2));
      else {
        console.log(`pruned ${describePrune(result)}`);
        console.log(storageLines(db)[0]);
      }
      return 0;
    } finally {
      db.$client.close();
    }
  },
});
