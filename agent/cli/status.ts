// `kontobro status`: deliveries per target, the feed to the PSA, what needs action, storage, the API token.
import { databasePath } from "../agent.ts";
import { openDatabase } from "../db/index.ts";
import { deliveryCounts, getSetting, lastSuccessAt, listDeliveries, pullGauges } from "../queries.ts";
import { storageLines } from "../retention.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { loadConfig } from "./runtime.ts";

export const status = defineCommand({
  name: "status",
  summary: "deliveries per target and what needs action (--json)",
  description:
    "Reads the data directory (also while the agent runs): deliveries per target and state, items waiting\n" +
    "for the PSA, up to 50 deliveries that need action with how to fix them, the database's size, and the\n" +
    "API token.",
  options: {
    json: { type: "boolean", help: "machine-readable: {counts, needsAction, inbox}" },
    ...CONFIG_OPTION,
  },
  examples: ["kontobro status", ["kontobro status --json | jq '.needsAction[].id'", "the ids of the deliveries that need action"]],
  run({ values }) {
    const { config } = loadConfig(values.config);
    const db = openDatabase(databasePath(config.agent.data_dir));
    try {
      const counts = deliveryCounts(db);
      const failing = listDeliveries(db, { status: "needs_action", limit: 50 });
      const inbox = pullGauges(db)
        .find((g) => g.name === "kontobro_inbox_items")!
        .rows.map((r) => ({ target: r.labels.target!, state: r.labels.state!, n: r.value }));
      if (values.json) {
        console.log(JSON.stringify({ counts, needsAction: failing, inbox }, null, 2));
        return 0;
      }
      const targets = [...new Set(counts.map((c) => c.target))];
      if (targets.length === 0) console.log("No deliveries yet.");
      for (const t of targets) {
        const line = counts
          .filter((c) => c.target === t)
          .map((c) => `${c.status} ${c.n}`)
          .join(", ");
        const last = lastSuccessAt(db, t);
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
      for (const d of failing)
        console.log(
          `  needs action #${d.id} ${d.target} ${d.entity} ${d.key}: ${d.errorMessage}${d.errorHint ? `\n      fix: ${d.errorHint}` : ""}`,
        );
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
