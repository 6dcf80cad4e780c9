#!/usr/bin/env bun
// kontobro's command line: run | demo | check | status | enqueue | retry | export | sandbox | version.
import { existsSync, readFileSync } from "node:fs";
import { startEconomicSandbox } from "../connectors/economic/sandbox.ts";
import { startUniMicroSandbox } from "../connectors/unimicro/sandbox.ts";
import { apiTokenFor, createConnectors, databasePath, startAgent, type RunningAgent } from "./agent.ts";
import { backupCommand, restoreCommand } from "./cli/backup.ts";
import { parseArgs, type Args } from "./cli/command.ts";
import { ConfigError, loadConfigFile, validateConfig, type LoadedConfig } from "./config.ts";
import { openDatabase, StorageError } from "./db/index.ts";
import { demoConfig, startDemoTarget, startSampleFeed } from "./demo.ts";
import { exportCommand } from "./cli/export.ts";
import { EventConflict, IntakeWriter, parseEvents, type StoredResult } from "./intake.ts";
import { createLogger } from "./log.ts";
import { pullCommand, webhookTokenLines } from "./cli/pull.ts";
import { pruneCommand } from "./cli/prune.ts";
import { storageLines } from "./retention.ts";
import type { Entity } from "./model.ts";
import { Outbox } from "./outbox.ts";
import { deliveryCounts, getSetting, lastSuccessAt, listDeliveries, pullGauges } from "./queries.ts";
import { VERSION } from "./version.ts";

const USAGE = `kontobro ${VERSION}: sync agent between your PSA and your accounting system

Usage: kontobro <command> [options]

  run                 run the agent with kontobro.toml (or --config FILE, or $KONTOBRO_CONFIG)
  demo                run against a built-in sandbox with sample data (--target economic|unimicro, --port,
                      --data, --interval SECONDS)
  check               verify each target's credentials and required set-up
  status              deliveries per target and what needs action (--json)
  enqueue FILE|-      store events from a JSON file (one event or an array) or standard input
  retry ID|--all      retry a delivery, or every delivery that needs action (--target NAME)
  prune               prune finished work older than agent.retention_days now (--days N, --json)
  pull TARGET [STREAM] pull now from a target (expenses, payments), as the schedule would
  sandbox KIND        serve a sandbox on its own: economic or unimicro (--port N)
  export ...          file exports: SIE 4 and templates, files, export status ("kontobro export" for help)
  backup FILE         a consistent copy of the database, safe while the agent runs
  restore FILE        put a backup in place (agent stopped; the replaced database is kept beside it)
  version             print the version

Exit codes: 0 ok, 1 a check or command failed, 2 bad configuration or usage.`;

function configPath(args: Args): string | null {
  const explicit = (typeof args.flags.config === "string" ? args.flags.config : undefined) ?? process.env.KONTOBRO_CONFIG;
  if (explicit) return explicit;
  return existsSync("kontobro.toml") ? "kontobro.toml" : null;
}

function loadConfig(args: Args): LoadedConfig {
  const path = configPath(args);
  if (!path) {
    if (args.command === "run") {
      throw new ConfigError(["no kontobro.toml found in this folder; copy config/kontobro.example.toml to kontobro.toml and edit it, pass --config FILE, or try `kontobro demo`"]);
    }
    return validateConfig({});
  }
  return loadConfigFile(path);
}

function keepRunning(agent: RunningAgent, onStop: () => Promise<void> = async () => {}): Promise<number> {
  return new Promise((resolve) => {
    const shutdown = (signal: string) => {
      process.stderr.write(`\nkontobro: ${signal} received, shutting down cleanly…\n`);
      agent.stop().then(onStop).then(() => resolve(0), () => resolve(1));
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
}

async function run(args: Args): Promise<number> {
  const { config, targets, warnings } = loadConfig(args);
  const log = createLogger(config.agent.log_level);
  for (const w of warnings) log.warn(w);
  if (targets.length === 0) log.warn("no targets are configured; events are stored but go nowhere until you add a [[targets]] table");
  const agent = await startAgent(config, targets, log);
  if (!config.http.api_token) log.info("API token generated for this data directory; `kontobro status` shows it");
  return keepRunning(agent);
}

async function demo(args: Args): Promise<number> {
  const demoTarget = await startDemoTarget(typeof args.flags.target === "string" ? args.flags.target : "economic");
  const { config, targets } = demoConfig({
    dataDir: typeof args.flags.data === "string" ? args.flags.data : undefined,
    port: typeof args.flags.port === "string" ? Number(args.flags.port) : undefined,
    target: demoTarget.target,
  });
  const log = createLogger(config.agent.log_level);
  const agent = await startAgent(config, targets, log);
  const interval = Number(typeof args.flags.interval === "string" ? args.flags.interval : 15) * 1000;
  const stopFeed = startSampleFeed(agent.db, agent.intake, interval, (m) => log.info(m));
  process.stdout.write(`
  kontobro demo is running.

    Status page      ${agent.url}
    Health           ${agent.url}/healthz
    Metrics          ${agent.url}/metrics
    API token        ${agent.apiToken}
    Target           ${targets[0]!.kind} sandbox at ${demoTarget.sandboxUrl} (state: ${demoTarget.sandboxUrl}/__sandbox/state)
    Data             ${databasePath(config.agent.data_dir)}

  Sample customers, projects and invoices arrive every ${interval / 1000} s. Send your own:
    curl -X POST ${agent.url}/api/v1/events -H 'Authorization: Bearer ${agent.apiToken}' \\
         -H 'Content-Type: application/json' -d @event.json
  Stop with Ctrl-C.

`);
  return keepRunning(agent, async () => { stopFeed(); await demoTarget.stop(); });
}

async function check(args: Args): Promise<number> {
  const { config, targets, warnings } = loadConfig(args);
  for (const w of warnings) console.log(`warning: ${w}`);
  if (targets.length === 0) {
    console.log("No targets configured: nothing to check. Add a [[targets]] table to kontobro.toml.");
    return 1;
  }
  let ok = true;
  for (const [name, connector] of createConnectors(targets, createLogger("error"))) {
    console.log(`${name} (${connector.kind}):`);
    for (const item of await connector.check()) {
      ok &&= item.ok;
      console.log(`  ${item.ok ? "ok  " : "FAIL"} ${item.name}: ${item.message}`);
      if (!item.ok && item.hint) console.log(`       fix: ${item.hint}`);
    }
  }
  for (const line of webhookTokenLines(config, targets)) console.log(line);
  console.log(ok ? "\nAll checks passed." : "\nSome checks failed; fix them and run `kontobro check` again.");
  return ok ? 0 : 1;
}

function status(args: Args): number {
  const { config } = loadConfig(args);
  const db = openDatabase(databasePath(config.agent.data_dir));
  try {
    const counts = deliveryCounts(db);
    const failing = listDeliveries(db, { status: "needs_action", limit: 50 });
    const inbox = pullGauges(db).find((g) => g.name === "kontobro_inbox_items")!.rows.map((r) => ({ target: r.labels.target!, state: r.labels.state!, n: r.value }));
    if (args.flags.json) {
      console.log(JSON.stringify({ counts, needsAction: failing, inbox }, null, 2));
      return 0;
    }
    const targets = [...new Set(counts.map((c) => c.target))];
    if (targets.length === 0) console.log("No deliveries yet.");
    for (const t of targets) {
      const line = counts.filter((c) => c.target === t).map((c) => `${c.status} ${c.n}`).join(", ");
      const last = lastSuccessAt(db, t);
      console.log(`${t}: ${line}; last success ${last ? new Date(last).toISOString() : "never"}`);
    }
    for (const t of [...new Set(inbox.map((r) => r.target))]) {
      console.log(`${t} → PSA: ${inbox.filter((r) => r.target === t).map((r) => `${r.state} ${r.n}`).join(", ")}`);
    }
    for (const d of failing) console.log(`  needs action #${d.id} ${d.target} ${d.entity} ${d.key}: ${d.errorMessage}${d.errorHint ? `\n      fix: ${d.errorHint}` : ""}`);
    for (const line of storageLines(db)) console.log(line);
    console.log(`API token: ${config.http.api_token ? "(set in kontobro.toml)" : getSetting(db, "api_token") ?? "(not generated yet; start the agent once)"}`);
    return 0;
  } finally {
    db.$client.close();
  }
}

async function enqueue(args: Args): Promise<number> {
  const source = args.positional[0];
  if (!source) { console.error("usage: kontobro enqueue FILE|-"); return 2; }
  const text = source === "-" ? await Bun.stdin.text() : readFileSync(source, "utf8");
  let body: unknown;
  try { body = JSON.parse(text); } catch (e) { console.error(`${source}: not valid JSON: ${(e as Error).message}`); return 1; }
  const parsed = parseEvents(body);
  if (!parsed.ok) {
    console.error(`${parsed.message}\n${parsed.hint}`);
    for (const ev of parsed.events) for (const p of ev.problems) console.error(`  event ${ev.index}${ev.id ? ` (${ev.id})` : ""}: ${p.message}${p.hint ? ` — ${p.hint}` : ""}`);
    return 1;
  }
  const { config, targets } = loadConfig(args);
  const connectors = createConnectors(targets, createLogger("error"));
  const db = openDatabase(databasePath(config.agent.data_dir));
  try {
    const targetsFor = (e: Entity) => [...connectors].filter(([, c]) => c.supports(e)).map(([n]) => n);
    let results: StoredResult[];
    try {
      results = await new IntakeWriter(db, new Outbox(db), targetsFor).submit(parsed.events);
    } catch (e) {
      if (!(e instanceof EventConflict)) throw e;
      console.error(`${e.message}\n${e.hint}`);
      for (const ev of e.events) for (const p of ev.problems) console.error(`  event ${ev.index} (${ev.id}): ${p.message}`);
      return 1;
    }
    const count = (status: string) => results.filter((r) => r.status === status).length;
    console.log(`stored ${count("accepted")} event(s), ${count("duplicate")} already known, ${count("stale")} older than the stored version (kept, not sent); a running agent delivers them within its poll interval`);
    return 0;
  } finally {
    db.$client.close();
  }
}

function retry(args: Args): number {
  const { config } = loadConfig(args);
  const db = openDatabase(databasePath(config.agent.data_dir));
  try {
    const outbox = new Outbox(db);
    if (args.flags.all) {
      const n = outbox.retryAllNeedingAction(typeof args.flags.target === "string" ? args.flags.target : undefined);
      console.log(`${n} deliveries will be retried`);
      return 0;
    }
    const id = Number(args.positional[0]);
    if (!Number.isInteger(id)) { console.error("usage: kontobro retry ID | kontobro retry --all [--target NAME]"); return 2; }
    const r = outbox.retry(id);
    console.log(r.ok ? `delivery ${id} will be retried` : r.status ? `delivery ${id} is ${r.status} and cannot be retried` : `no delivery ${id}`);
    return r.ok ? 0 : 1;
  } finally {
    db.$client.close();
  }
}

async function sandbox(args: Args): Promise<number> {
  const kind = args.positional[0] ?? "";
  if (!["economic", "unimicro"].includes(kind)) { console.error("usage: kontobro sandbox economic|unimicro [--port N]"); return 2; }
  const port = typeof args.flags.port === "string" ? Number(args.flags.port) : 0;
  const s = kind === "economic" ? await startEconomicSandbox({ port }) : startUniMicroSandbox({ port });
  console.log(`${kind} sandbox on ${s.url}`);
  return new Promise((resolve) => {
    const stop = () => void Promise.resolve(s.stop()).then(() => resolve(0));
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.flags.help || args.command === "help") { console.log(USAGE); return 0; }
  try {
    switch (args.command) {
      case "run": return await run(args);
      case "demo": return await demo(args);
      case "check": return await check(args);
      case "status": return status(args);
      case "enqueue": return await enqueue(args);
      case "retry": return retry(args);
      case "prune": return await pruneCommand(loadConfig(args).config, args);
      case "sandbox": return await sandbox(args);
      case "pull": { const { config, targets } = loadConfig(args); return await pullCommand(config, targets, args.positional, createLogger(config.agent.log_level)); }
      case "export": return await exportCommand(args, () => loadConfig(args));
      case "backup": { const { config } = loadConfig(args); return backupCommand(config.agent.data_dir, databasePath(config.agent.data_dir), args.positional); }
      case "restore": { const { config } = loadConfig(args); return restoreCommand(config.agent.data_dir, databasePath(config.agent.data_dir), args.positional); }
      case "version": console.log(`kontobro ${VERSION} (bun ${Bun.version})`); return 0;
      default: console.error(`unknown command "${args.command}"\n\n${USAGE}`); return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError) { console.error(e.message); return 2; }
    if (e instanceof StorageError) { console.error(`kontobro: ${e.message}\n  fix: ${e.hint}`); return 1; }
    console.error(`kontobro: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
