// `kontobro prune [--days N] [--json]`: prunes finished work now, as the running agent does every hour.
// Safe while the agent runs (small transactions on the same database file).
import { databasePath } from "../agent.ts";
import type { Args } from "./command.ts";
import type { AgentConfig } from "../config.ts";
import { openDatabase } from "../db/index.ts";
import { databaseSize, describePrune, pruneOnce, storageLines } from "../retention.ts";

const USAGE = "usage: kontobro prune [--days N] [--json]   (N: keep finished work of the last N days; default agent.retention_days)";

export async function pruneCommand(config: AgentConfig, args: Args): Promise<number> {
  const unknown = Object.keys(args.flags).filter((f) => !["days", "json", "config"].includes(f));
  if (unknown.length > 0 || args.positional.length > 0) { console.error(`${unknown.length ? `unknown option --${unknown[0]}\n` : ""}${USAGE}`); return 2; }
  const days = args.flags.days === undefined ? config.agent.retention_days : Number(args.flags.days);
  if (!Number.isInteger(days) || days < 1) {
    console.error(args.flags.days === undefined
      ? "agent.retention_days is 0 in kontobro.toml, which keeps everything; nothing was pruned. Pass --days N to prune once anyway."
      : `--days must be a whole number of days, at least 1 (got "${args.flags.days}").\n${USAGE}`);
    return 2;
  }
  const db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
  try {
    const result = await pruneOnce(db, { retentionDays: days });
    if (args.flags.json) console.log(JSON.stringify({ ...result, database: databaseSize(db) }, null, 2));
    else {
      console.log(`pruned ${describePrune(result)}`);
      console.log(storageLines(db)[0]);
    }
    return 0;
  } finally {
    db.$client.close();
  }
}
