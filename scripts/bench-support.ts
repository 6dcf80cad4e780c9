// Process plumbing for the benchmark: the compiled agent and sandbox as separate processes, load
// generation over loopback, RSS sampling. No figures are computed here.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** One figure of the benchmark, printed and kept in dist/bench.json; with a baseline, printed as a ratio to it. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  baselineName?: string;
  target?: string;
  met?: boolean;
  note?: string;
}

export async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

export async function waitHealthy(url: string, timeoutMs = 20_000, pollMs = 2): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    await Bun.sleep(pollMs);
  }
  throw new Error(`${url} did not become healthy`);
}

export const TOKEN = "bench-token-0123456789";

/** A TOML value: strings as basic strings, tables inline. */
function tomlValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(", ")}]`;
  if (v && typeof v === "object")
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${k} = ${tomlValue(x)}`)
      .join(", ")} }`;
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** The one target of every agent and tenant in the benchmark, "eco": the connector's [[targets]] table for the sandbox, unthrottled. */
export function targetToml(target: Record<string, unknown>, paused = false): string {
  const { name: _name, ...rest } = target;
  const table = { name: "eco", ...rest, paused, requests_per_second: 0 };
  return `[[targets]]\n${Object.entries(table)
    .map(([k, v]) => `${k} = ${tomlValue(v)}\n`)
    .join("")}`;
}

/** kontobro.toml with one target (targetToml). */
export function writeAgentConfig(
  dir: string,
  o: { port: number; target: Record<string, unknown>; concurrency?: number; file?: string; paused?: boolean },
): string {
  const path = join(dir, o.file ?? "kontobro.toml");
  writeFileSync(
    path,
    `[agent]\ndata_dir = "${dir}/data"\nlog_level = "error"\n[http]\nport = ${o.port}\napi_token = "${TOKEN}"\n` +
      `[dispatch]\nconcurrency = ${o.concurrency ?? 64}\nidle_poll_ms = 1000\n` +
      targetToml(o.target, o.paused ?? false),
    { mode: 0o600 },
  );
  return path;
}

export interface Proc {
  proc: ReturnType<typeof Bun.spawn>;
  url: string;
  stop(): Promise<void>;
}

export async function startAgentProcess(
  binary: string,
  dir: string,
  configPath: string,
  port: number,
): Promise<Proc & { startedMs: number }> {
  const t0 = performance.now();
  const proc = Bun.spawn([binary, "run", "--config", configPath], { cwd: dir, stdout: "ignore", stderr: Bun.file(join(dir, "agent.log")) });
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(`${url}/healthz`);
  return {
    proc,
    url,
    startedMs: performance.now() - t0,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

export async function startSandboxProcess(binary: string, kind: string): Promise<Proc> {
  const port = await freePort();
  const proc = Bun.spawn([binary, "sandbox", kind, "--port", String(port)], { stdout: "ignore", stderr: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(`${url}/__sandbox/stats`);
  return {
    proc,
    url,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** CPU time (user + system, all threads) a process has used so far, in µs, from /proc (clock ticks of 10 ms). */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** CPU time the calling thread has run so far, in ms, from /proc/thread-self/schedstat (nanoseconds, not clock ticks). */
export function threadCpuMs(): number {
  return Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6;
}

/**
 * CPU time in µs of a process and its children: those it has reaped (cutime, cstime: a PostgreSQL backend that ended)
 * and those still running (a backend of a live connection), read from /proc.
 */
export function treeCpuMicros(pid: number): number {
  const fieldsOf = (p: number | string) => {
    const stat = readFileSync(`/proc/${p}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  };
  const own = fieldsOf(pid);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const f = fieldsOf(entry);
      if (Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // ended meanwhile: its time is in the parent's cutime now
    }
  }
  return ticks * 10_000;
}

/** This process's CPU time so far, in µs. */
export const ownCpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/**
 * Where the CPU of `work` went, in µs per item, by process (ticks of 10 ms: figures over a few seconds); a function
 * reads the µs of several (treeCpuMicros, a sum over worker processes).
 */
export async function cpuPerItem<T>(
  items: number,
  pids: Record<string, number | "self" | (() => number)>,
  work: () => Promise<T>,
): Promise<{ result: T; perItem: Record<string, number> }> {
  const read = (pid: number | "self" | (() => number)) =>
    pid === "self" ? ownCpuMicros() : typeof pid === "function" ? pid() : cpuMicros(pid);
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, read(pid)]));
  const result = await work();
  const perItem = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, (read(pid) - before[k]!) / items]));
  return { result, perItem };
}

/** "agent 98 µs, load generator 33 µs" */
export const describeCpu = (perItem: Record<string, number>) =>
  Object.entries(perItem)
    .map(([k, v]) => `${k} ${v.toFixed(1)} µs`)
    .join(", ");

/** Resident memory of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Runs `count` requests with `concurrency` loops; returns requests per second. Fails on any non-2xx. */
export async function load(
  count: number,
  concurrency: number,
  request: (i: number) => Promise<Response>,
): Promise<{ perSecond: number; seconds: number }> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const res = await request(i);
        if (!res.ok) throw new Error(`request ${i} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
        await res.arrayBuffer();
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { perSecond: count / seconds, seconds };
}

/** POST /api/v1/events with a body already serialised; `token`: a hosted tenant's API token (default: the agent's). */
export const postEvents = (url: string, body: string, token = TOKEN) =>
  fetch(`${url}/api/v1/events`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });

export const customer = (n: number, prefix = "b") => ({
  id: `${prefix}-${n}`,
  type: "customer.upserted",
  data: { number: n, name: `Bench customer ${n}`, currency: "NOK", email: `c${n}@example.no` },
});

/** Polls until `done()` holds; a benchmark that cannot finish says so instead of hanging. */
export async function until(what: string, done: () => Promise<boolean>, timeoutMs: number, pollMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
    await Bun.sleep(pollMs);
  }
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function median(xs: number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}
