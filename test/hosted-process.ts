// A hosted worker as a process of its own (`kontobro run` on PostgreSQL, from source), for the tests that run several:
// started on a free loopback port with the caller's kontobro.toml, its standard error kept, ready once /readyz says so.
import type { Subprocess } from "bun";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { waitFor } from "./helpers.ts";

const ROOT = resolve(import.meta.dir, "..");

export interface RunningWorker {
  name: string;
  url: string;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** What it logged (JSON lines on standard error). */
  log: () => string;
}

/** Keys to set in a worker's kontobro.toml, per section (`null`: the key left out). */
export type WorkerConfigOverrides = Record<string, Record<string, string | number | boolean | null>>;

/**
 * Writes `<dir>/<name>.toml`, a hosted worker's kontobro.toml, and returns its path: its data directory
 * `<dir>/data-<name>`, the PostgreSQL `url`, `port` (0 for a command that does not listen) and the tests' fast timings
 * (dispatch retries and idle poll, heartbeats, the workers' dead-after and tenants refresh); `overrides` sets or adds
 * keys and sections (e.g. `{ admin: { token } }`).
 */
export function writeWorkerConfig(dir: string, name: string, url: string, port: number, overrides: WorkerConfigOverrides = {}): string {
  const sections: WorkerConfigOverrides = {
    agent: { data_dir: join(dir, `data-${name}`), log_level: "debug" },
    storage: { url },
    http: { port },
    dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 },
    workers: { heartbeat_ms: 200, dead_after_ms: 3000, tenants_refresh_ms: 300 },
  };
  for (const [section, keys] of Object.entries(overrides)) sections[section] = { ...sections[section], ...keys };
  const toml = Object.entries(sections)
    .map(([section, keys]) => {
      const lines = Object.entries(keys).filter(([, v]) => v !== null);
      return `[${section}]\n${lines.map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : v}`).join("\n")}\n`;
    })
    .join("\n");
  const path = join(dir, `${name}.toml`);
  writeFileSync(path, toml);
  return path;
}

/** A loopback port free now (the worker listens on it next). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** `kontobro run --config <config>` from source: what it logged so far, and `drained` once its stderr has ended. */
export function spawnRun(config: string) {
  const proc = Bun.spawn([process.execPath, "agent/main.ts", "run", "--config", config], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  const drained = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  return { proc, log: () => text, drained };
}

/**
 * Starts `kontobro run --config <config>` listening on `port` and waits until /readyz answers 200 (or it exits: the
 * error holds what it logged). `started` sees the process at once, so a caller's clean-up stops it even if it never
 * gets ready.
 */
export async function startWorkerProcess(
  name: string,
  config: string,
  port: number,
  started: (w: RunningWorker) => void = () => {},
): Promise<RunningWorker> {
  const { proc, log } = spawnRun(config);
  const worker: RunningWorker = { name, url: `http://127.0.0.1:${port}`, proc, log };
  started(worker);
  await waitFor(
    `worker ${name} ready`,
    async () => {
      if (proc.exitCode !== null) throw new Error(`worker ${name} exited ${proc.exitCode}: ${log()}`);
      return (await fetch(`${worker.url}/readyz`).catch(() => null))?.status === 200;
    },
    60_000,
  );
  return worker;
}
