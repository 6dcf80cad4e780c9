// Retention in the running agent and on the command line: the agent prunes at start, /metrics and the
// status page show the database size and what the last prune removed, `kontobro prune` prunes by hand.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { databasePath, startAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { openDatabase } from "../agent/db/index.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Outbox } from "../agent/outbox.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

const DAY = 86_400_000;
const MAIN = join(import.meta.dir, "../agent/main.ts");

/** A data directory holding two versions of customer 1, both 200 days old. */
async function oldData(dataDir: string) {
  const db = openDatabase(databasePath(dataDir));
  const old = () => Date.now() - 200 * DAY;
  const intake = new IntakeWriter(
    new Outbox(sqliteRunner(db.$client), old),
    () => [],
    () => {},
    old,
  );
  const parsed = parseEvents([customerEvent(1, {}, "v1"), customerEvent(1, { name: "Renamed" }, "v2")]);
  if (!parsed.ok) throw new Error("invalid");
  await intake.submit(parsed.events);
  db.$client.close();
}

const payloadOf = (dataDir: string, id: string) => {
  const db = openDatabase(databasePath(dataDir));
  try {
    return (db.$client.query(`SELECT payload FROM events WHERE event_id = ?1`).get(id) as { payload: string }).payload;
  } finally {
    db.$client.close();
  }
};

describe("retention in the agent", () => {
  test("prunes at start; /metrics and the status page show the database size and the last prune", async () => {
    const dataDir = tempDir("kontobro-retention-agent-");
    await oldData(dataDir);
    const { config, targets } = validateConfig({ agent: { data_dir: dataDir }, http: { port: 0 } }, {});
    expect(config.agent.retention_days).toBe(90);
    const agent = await startAgent(config, targets, silentLogger);
    try {
      const metrics = await waitFor("the first prune in /metrics", async () => {
        const text = await (await fetch(`${agent.url}/metrics`)).text();
        return text.includes(`kontobro_retention_last_pruned{kind="events"} 1`) ? text : "";
      });
      const bytes = Number(/^kontobro_database_bytes(?:\{\})? (\d+)$/m.exec(metrics)?.[1]);
      expect(bytes).toBeGreaterThan(0);
      expect(metrics).toContain("# TYPE kontobro_database_bytes gauge");
      const page = await (await fetch(`${agent.url}/`)).text();
      expect(page).toContain("<h2>Storage</h2>");
      expect(page).toMatch(/class="database-bytes" data-bytes="\d+"/);
      expect(page).toContain(`<span data-pruned="events">1</span> event payload(s)`);
    } finally {
      await agent.stop();
    }
    expect(payloadOf(dataDir, "v1")).toBe("");
    expect(JSON.parse(payloadOf(dataDir, "v2")).name).toBe("Renamed");
  });

  test("retention_days = 0 keeps everything, and the size is still shown", async () => {
    const dataDir = tempDir("kontobro-retention-agent-");
    await oldData(dataDir);
    const { config, targets } = validateConfig({ agent: { data_dir: dataDir, retention_days: 0 }, http: { port: 0 } }, {});
    const agent = await startAgent(config, targets, silentLogger);
    try {
      const metrics = await (await fetch(`${agent.url}/metrics`)).text();
      expect(metrics).toMatch(/^kontobro_database_bytes(?:\{\})? \d+$/m);
      expect(metrics).not.toContain("kontobro_retention_last_pruned");
      expect(await (await fetch(`${agent.url}/`)).text()).toContain("No prune has run yet");
    } finally {
      await agent.stop();
    }
    expect(JSON.parse(payloadOf(dataDir, "v1")).number).toBe("1");
  });
});

describe("kontobro prune and kontobro status", () => {
  const cli = async (cwd: string, args: string[]) => {
    const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { out, err, code };
  };

  test("prunes by hand, with the configured or a given number of days; status shows size and last prune", async () => {
    const cwd = tempDir("kontobro-prune-cli-");
    writeFileSync(join(cwd, "kontobro.toml"), `[agent]\ndata_dir = "./data"\nretention_days = 365\n`, { mode: 0o600 });
    await oldData(join(cwd, "data"));
    const first = await cli(cwd, ["prune"]);
    expect(first.code).toBe(0);
    expect(first.out).toContain("older than 365 days: 0 event payload(s)");
    const second = await cli(cwd, ["prune", "--days", "30", "--json"]);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.out)).toMatchObject({ retentionDays: 30, events: 1, database: { bytes: expect.any(Number) } });
    const status = await cli(cwd, ["status"]);
    expect(status.out).toMatch(/^database: [\d.]+ [kMG]?B/m);
    expect(status.out).toContain("older than 30 days: 1 event payload(s)");
    const bad = await cli(cwd, ["prune", "--days", "0"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--days must be a whole number of days, at least 1");
    expect((await cli(cwd, ["prune", "--dyas", "3"])).code).toBe(2);
  });
});
