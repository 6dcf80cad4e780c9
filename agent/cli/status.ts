// `kontobro status`: deliveries per target, the feed to the PSA, what is in progress, what needs action, storage,
// the API token; --watch follows what is in progress until it is over (status-watch.ts).
import { databasePath } from "../agent.ts";
import { openDatabase } from "../db/index.ts";
import { type SqlRunner, sqliteRunner } from "../db/pg/runner.ts";
import { type ProgressItem, type ProgressSource, progressItems } from "../in-progress.ts";
import { fileBoard } from "../running-work.ts";
import { type DeliveryRow, deliveryCounts, getSetting, lastSuccessAt, listDeliveries, pullGauges } from "../queries.ts";
import { storageLines } from "../retention.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { watchProgress } from "./status-watch.ts";
import { loadConfig } from "./runtime.ts";

export const status = defineCommand({
  ...listed("status"),
  description:
    "Reads the data directory (also while the agent runs): deliveries per target and state, items waiting\n" +
    "for the PSA, what is in progress (a queue catching up after a burst, exports and pulls under way), up to\n" +
    "50 deliveries that need action with how to fix them, the database's size, and the API token. --watch\n" +
    "shows only what is in progress, on one line that rewrites itself (a line every few seconds when not on a\n" +
    "terminal), until it is all over.",
  options: {
    json: { type: "boolean", help: "machine-readable: {counts, needsAction, inbox, progress}" },
    watch: { type: "boolean", help: "follow what is in progress until it is over" },
    ...CONFIG_OPTION,
  },
  examples: [
    "kontobro status",
    ["kontobro status --json | jq '.needsAction[].id'", "the ids of the deliveries that need action"],
    ["kontobro status --watch", "e.g. while the first sync goes to a new target"],
  ],
  async run({ values }) {
    const { config, targets: configured } = loadConfig(values.config);
    const db = openDatabase(databasePath(config.agent.data_dir));
    try {
      const runner = sqliteRunner(db.$client);
      const counts = await deliveryCounts(runner);
      const targetNames = [...new Set([...configured.filter((t) => t.enabled).map((t) => t.name), ...counts.map((c) => c.target)])];
      const source = { runner, work: fileBoard(db), targets: targetNames };
      if (values.watch) return await watchProgress(source);
      const report = await statusReport(source);
      if (values.json) {
        console.log(JSON.stringify(report, null, 2));
        return 0;
      }
      await printStatus(runner, report);
      for (const line of storageLines(db)) console.log(line);
      console.log(
        `API token: ${config.http.api_token ? "(set in kontobro.toml)" : (getSetting(db, "api_token") ?? "(not generated yet; start the agent once)")}`,
      );
      return 0;
    } finally {
      db.$client.close();
    }
  },
});

export interface StatusReport {
  counts: { target: string; status: string; n: number }[];
  needsAction: DeliveryRow[];
  inbox: { target: string; state: string; n: number }[];
  progress: ProgressItem[];
}

/** What `kontobro status` (and `kontobro tenant status`) shows of the storage `source.runner` reads. */
export async function statusReport(source: ProgressSource): Promise<StatusReport> {
  const { runner } = source;
  const counts = await deliveryCounts(runner);
  const progress = await progressItems(source);
  const needsAction = await listDeliveries(runner, { status: "needs_action", limit: 50 });
  const inbox = (await pullGauges(runner))
    .find((g) => g.name === "kontobro_inbox_items")!
    .rows.map((r) => ({ target: r.labels.target!, state: r.labels.state!, n: r.value }));
  return { counts, needsAction, inbox, progress };
}

/** The report for a person: deliveries and last success per target, items for the PSA, what is in progress, what needs action. */
export async function printStatus(runner: SqlRunner, { counts, needsAction, inbox, progress }: StatusReport): Promise<void> {
  const targets = [...new Set(counts.map((c) => c.target))];
  if (targets.length === 0) console.log("No deliveries yet.");
  for (const t of targets) {
    const line = counts
      .filter((c) => c.target === t)
      .map((c) => `${c.status} ${c.n}`)
      .join(", ");
    const last = await lastSuccessAt(runner, t);
    console.log(`${t}: ${line}; last success ${last ? new Date(last).toISOString() : "never"}`);
  }
  for (const t of [...new Set(inbox.map((r) => r.target))]) {
    console.log(
      `${t} → PSA: ${inbox
        .filter((r) => r.target === t)
        .map((r) => `${r.state} ${r.n}`)
        .join(", ")}`,
    );
  }
  if (progress.length > 0) console.log("In progress:");
  for (const p of progress) console.log(`  ${p.title}: ${p.text}`);
  for (const d of needsAction)
    console.log(
      `  needs action #${d.id} ${d.target} ${d.entity} ${d.key}: ${d.errorMessage}${d.errorHint ? `\n      fix: ${d.errorHint}` : ""}`,
    );
}
