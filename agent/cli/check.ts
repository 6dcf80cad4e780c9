// `kontobro check`: each target's credentials and set-up, and the webhook token of targets that call back.
import { createConnectors, databasePath } from "../agent.ts";
import type { AgentConfig, TargetConfig } from "../config.ts";
import { openDatabase } from "../db/index.ts";
import { sqliteRunner } from "../db/pg/runner.ts";
import { createLogger } from "../log.ts";
import { webhookTokenFor } from "../pulls/index.ts";
import { connectorKinds } from "../../connectors/registry.ts";
import { reachability } from "./check-network.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

export const check = defineCommand({
  ...listed("check"),
  description:
    "Says whether each target can be reached, and whether through a proxy (HTTPS_PROXY/HTTP_PROXY/NO_PROXY or\n" +
    "[proxy] in kontobro.toml). Then asks each target whether the credentials work and the set-up kontobro relies on exists, and\n" +
    "says in plain words how to fix what is missing. Exits 1 if a check failed. For a target that calls back\n" +
    "(webhooks), it also shows the webhook token and the URLs to configure there.",
  options: { ...CONFIG_OPTION },
  examples: [
    "kontobro check",
    ["kontobro check --config /etc/kontobro/kontobro.toml && systemctl restart kontobro", "after changing the configuration"],
  ],
  async run({ values }) {
    const { config, targets, warnings } = loadConfig(values.config);
    for (const w of warnings) console.log(`warning: ${w}`);
    if (targets.length === 0) {
      console.log("No targets configured: nothing to check. Add a [[targets]] table to kontobro.toml.");
      return 1;
    }
    let ok = true;
    // Targets that sign in with OAuth read their stored tokens (and store rotated ones) in the data directory.
    for (const [name, connector] of createConnectors(targets, createLogger("error"), undefined, { dataDir: config.agent.data_dir })) {
      console.log(`${name} (${connector.kind}):`);
      const reach = await reachability(targets.find((t) => t.name === name)!, connectorKinds[connector.kind]?.title ?? connector.kind);
      for (const line of reach.lines) console.log(line);
      if (!reach.ok) {
        ok = false;
        continue;
      }
      for (const item of await connector.check()) {
        ok &&= item.ok;
        console.log(`  ${item.ok ? "ok  " : "FAIL"} ${item.name}: ${item.message}`);
        if (!item.ok && item.hint) console.log(`       fix: ${item.hint}`);
      }
    }
    for (const line of await webhookTokenLines(config, targets)) console.log(line);
    console.log(ok ? "\nAll checks passed." : "\nSome checks failed; fix them and run `kontobro check` again.");
    return ok ? 0 : 1;
  },
});

/** Each target's webhook token (generated once) and how to use it. */
export async function webhookTokenLines(config: AgentConfig, targets: TargetConfig[]): Promise<string[]> {
  const hooked = targets.filter((t) => t.enabled && connectorKinds[t.kind]?.webhookStreams);
  if (hooked.length === 0) return [];
  const db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
  try {
    const base = `http://${config.http.host}:${config.http.port}`;
    const lines: string[] = [];
    for (const t of hooked) {
      const token = await webhookTokenFor(sqliteRunner(db.$client), t.name);
      const templates = connectorKinds[t.kind]!.webhookTemplates ?? [""];
      lines.push(
        `${t.name} (${t.kind}) webhook token: ${token}`,
        `  configure the target's webhooks to call (through a public HTTPS proxy to this agent):`,
        ...templates.map((template) => `  ${base}/webhooks/${t.kind}/${token}${template}`),
      );
    }
    return lines;
  } finally {
    db.$client.close();
  }
}
