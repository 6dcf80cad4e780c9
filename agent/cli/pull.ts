// `kontobro pull TARGET [STREAM]`, and the webhook token lines of `kontobro check`.
import { connectorKinds } from "../../connectors/registry.ts";
import { createConnectors, databasePath } from "../agent.ts";
import type { AgentConfig, TargetConfig } from "../config.ts";
import { openDatabase } from "../db/index.ts";
import { Inbox } from "../pulls/inbox.ts";
import type { Logger } from "../log.ts";
import { runPull, type RunResult } from "../pulls/runner.ts";
import { pullJobs, webhookTokenFor } from "../pulls/index.ts";

export function describeRun(job: string, r: RunResult): string {
  if (r.status === "busy") return `${job}: already running (in the agent or another \`kontobro pull\`); not started again`;
  const counts = `${r.pages} page(s), fetched ${r.fetched}, imported ${r.imported}, already had ${r.duplicates}, ignored ${r.ignored} (project unknown to the PSA)`;
  if (r.status === "ok") return `${job}: ok · ${counts}`;
  return `${job}: FAILED after ${counts}\n  ${r.problem.message}${r.problem.hint ? `\n  fix: ${r.problem.hint}` : ""}`;
}

/** Runs the pull(s) in this process; the job lock keeps it from overlapping a run of the agent. */
export async function pullCommand(config: AgentConfig, targets: TargetConfig[], positional: string[], log: Logger): Promise<number> {
  const [targetName, stream] = positional;
  const pullable = targets.filter((t) => t.enabled && connectorKinds[t.kind]?.pulls);
  if (!targetName) {
    console.error(`usage: kontobro pull TARGET [STREAM]\ntargets that can pull: ${pullable.map((t) => t.name).join(", ") || "none"}`);
    return 2;
  }
  const target = pullable.find((t) => t.name === targetName);
  if (!target) {
    console.error(`No target "${targetName}" that can pull. Targets that can: ${pullable.map((t) => t.name).join(", ") || "none (add one to kontobro.toml)"}.`);
    return 2;
  }
  const connectors = createConnectors([target], log);
  const jobs = pullJobs([target], connectors).filter((j) => !stream || j.stream === stream);
  if (jobs.length === 0) {
    console.error(`${target.name} has no stream "${stream}". Streams: ${Object.keys(connectorKinds[target.kind]!.pulls ?? {}).join(", ")}.`);
    return 2;
  }
  const db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
  try {
    const inbox = new Inbox(db);
    let ok = true;
    let imported = 0;
    for (const job of jobs) {
      const result = await runPull({ db, inbox, dataDir: config.agent.data_dir, connectors, log }, job, "cli");
      console.log(describeRun(`${job.target}/${job.stream}`, result));
      ok &&= result.status === "ok";
      if (result.status !== "busy") imported += result.imported;
    }
    if (imported > 0) {
      console.log(`${imported} new item(s) wait for the PSA: a running agent sends them to psa.webhook_url, and the PSA can read them from GET /api/v1/inbox.`);
    }
    return ok ? 0 : 1;
  } finally {
    db.$client.close();
  }
}

/** For `kontobro check`: each target's webhook token (generated once) and how to use it. */
export function webhookTokenLines(config: AgentConfig, targets: TargetConfig[]): string[] {
  const hooked = targets.filter((t) => t.enabled && connectorKinds[t.kind]?.webhookStreams);
  if (hooked.length === 0) return [];
  const db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
  try {
    const base = `http://${config.http.host}:${config.http.port}`;
    return hooked.flatMap((t) => {
      const token = webhookTokenFor(db, t.name);
      return [
        `${t.name} (${t.kind}) webhook token: ${token}`,
        `  configure the target's webhooks to call (through a public HTTPS proxy to this agent):`,
        `  ${base}/webhooks/${t.kind}/${token}?type=invoice&invoice=[INVOICENO]`,
        `  ${base}/webhooks/${t.kind}/${token}?type=daybook&daybook=[DAYBOOKNO]&from=[FROMSERIALNO]&to=[TOSERIALNO]`,
      ];
    });
  } finally {
    db.$client.close();
  }
}
