// `kontobro pull TARGET [STREAM]`: a scheduled pull, now, in this process.
import { connectorKinds } from "../../connectors/registry.ts";
import { createConnectors, databasePath } from "../agent.ts";
import { openDatabase } from "../db/index.ts";
import { createLogger } from "../log.ts";
import { sqliteRunner } from "../db/pg/runner.ts";
import { Inbox } from "../pulls/inbox.ts";
import { pullJobs } from "../pulls/index.ts";
import { runPull, type RunResult } from "../pulls/runner.ts";
import { describeWork } from "../running-work.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { ProgressLine } from "./progress-line.ts";
import { loadConfig } from "./runtime.ts";

export function describeRun(job: string, r: RunResult): string {
  if (r.status === "busy") return `${job}: already running (in the agent or another \`kontobro pull\`); not started again`;
  const counts = `${r.pages} page(s), fetched ${r.fetched}, imported ${r.imported}, already had ${r.duplicates}, ignored ${r.ignored} (project unknown to the PSA)`;
  if (r.status === "ok") return `${job}: ok · ${counts}`;
  return `${job}: FAILED after ${counts}\n  ${r.problem.message}${r.problem.hint ? `\n  fix: ${r.problem.hint}` : ""}`;
}

export const pull = defineCommand({
  ...listed("pull"),
  description:
    "Runs the target's pulls (or just STREAM) in this process, from the stored cursor on, exactly as the\n" +
    "agent's schedule would; the job lock keeps it from overlapping a run of the agent. New items wait for the\n" +
    "PSA in the inbox. Shows its progress (on a terminal one line that rewrites itself; otherwise a line every\n" +
    "few seconds). Exits 1 if a pull failed.",
  options: { ...CONFIG_OPTION },
  positionals: [0, 2],
  examples: [
    ["kontobro pull books", "every stream of that target"],
    ["kontobro pull books expenses", "one stream"],
  ],
  async run({ values, positionals: [targetName, stream], usage }) {
    const { config, targets } = loadConfig(values.config);
    const log = createLogger(config.agent.log_level);
    const pullable = targets.filter((t) => t.enabled && connectorKinds[t.kind]?.pulls);
    if (!targetName) {
      console.error(`${usage()}\n\ntargets that can pull: ${pullable.map((t) => t.name).join(", ") || "none"}`);
      return 2;
    }
    const target = pullable.find((t) => t.name === targetName);
    if (!target) {
      console.error(
        `No target "${targetName}" that can pull. Targets that can: ${pullable.map((t) => t.name).join(", ") || "none (add one to kontobro.toml)"}.`,
      );
      return 2;
    }
    const connectors = createConnectors([target], log, undefined, { dataDir: config.agent.data_dir });
    const jobs = pullJobs([target], connectors).filter((j) => !stream || j.stream === stream);
    if (jobs.length === 0) {
      console.error(
        `${target.name} has no stream "${stream}". Streams: ${Object.keys(connectorKinds[target.kind]!.pulls ?? {}).join(", ")}.`,
      );
      return 2;
    }
    const db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
    try {
      const storage = sqliteRunner(db.$client);
      const inbox = new Inbox(storage);
      let ok = true;
      let imported = 0;
      for (const job of jobs) {
        const line = new ProgressLine();
        const onProgress = (w: Parameters<typeof describeWork>[0]) => line.update(describeWork(w));
        const result = await runPull(
          { db, storage, inbox, dataDir: config.agent.data_dir, worker: null, connectors, log, onProgress, targets },
          job,
          "cli",
        );
        if (result.status !== "busy") line.finish();
        console.log(describeRun(`${job.target}/${job.stream}`, result));
        ok &&= result.status === "ok";
        if (result.status !== "busy") imported += result.imported;
      }
      if (imported > 0) {
        console.log(
          `${imported} new item(s) wait for the PSA: a running agent sends them to psa.webhook_url, and the PSA can read them from GET /api/v1/inbox.`,
        );
      }
      return ok ? 0 : 1;
    } finally {
      db.$client.close();
    }
  },
});
