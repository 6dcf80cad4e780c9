// The chaos run: the compiled agent against a target's sandbox on loopback (any connector whose factory
// has a chaos adapter, connectors/<kind>/sandbox/chaos.ts). While a PSA sends thousands of invoices and credit notes with their customers
// and projects, the sandbox injects 503s and 429s (Retry-After 0), 500s, "commit, then drop the
// connection", latency and invoice-create answers slower than the client timeout, and the agent is
// killed with SIGKILL (every fifth time a SIGTERM) at random moments and restarted. In the same run:
// - a backup taken with `kontobro backup` while the agent runs, restored with `kontobro restore` at a
//   later stop; the PSA then sends again every event it had sent (ids make that harmless);
// - a window of several seconds in which the target answers every request 429 with a long Retry-After.
// At the end every invoice and credit note must be booked exactly once and right (customer, lines and
// totals as the PSA sent them, after the model's normalisation), no draft may be left, nothing may need
// action or be in flight, and during any Retry-After no more requests may reach the target than pushes were
// under way (one each, at most [dispatch] concurrency: see maxRequestsInRetryAfterWindow).
//
//   bun scripts/chaos.ts                                   full run: 5,000 invoices, 50 kills, e-conomic
//   bun scripts/chaos.ts --invoices 500 --kills 10 --seed 7 --target KIND
//   also --throttle-ms 6000 --retry-after 3 (the 429 window), --slow-create-ms 1500 --slow-create-p 0.03
//   bun scripts/chaos.ts --storage postgres --workers 3 --tenants 20 --invoices 2000   (scripts/chaos-pg.ts)
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chaosEvents, expectedDocs, masterNumbers, rng } from "./chaos-events.ts";
import { connectorKinds } from "../connectors/registry.ts";
import type { ChaosTarget, FaultPlan } from "../connectors/sandbox.ts";
import { draftsMadeAfterStop, maxRequestsInRetryAfterWindow, verify, type Verdict } from "./chaos-verify.ts";
import { build } from "./build.ts";

/** The registry's kinds whose sandbox has a chaos adapter, in its order (the first is the default target). */
export const CHAOS_TARGETS: readonly string[] = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.chaos);
type ChaosTargetKind = string;

/** The target's name in kontobro.toml (and so in /metrics). */
const TARGET_NAME = "chaos";
/** [dispatch] concurrency of the agent under test: the most pushes under way at once. */
const CONCURRENCY = 16;

/** The connector's chaos adapter: its sandbox behind a request log, its faults, its [[targets]] table, the read-back. */
export async function startChaosTarget(kind: ChaosTargetKind, dir: string, random: () => number, plan: FaultPlan): Promise<ChaosTarget> {
  const adapter = await connectorKinds[kind]?.chaos?.();
  if (!adapter) throw new Error(`no chaos adapter for "${kind}"; use one of ${CHAOS_TARGETS.join(", ")}`);
  return adapter({ name: TARGET_NAME, dir, random, plan });
}

export interface ChaosOptions {
  invoices: number;
  kills: number;
  seed?: number;
  target?: ChaosTargetKind;
  binary?: string;
  /** How long the target answers everything with 429 (ms), and the Retry-After it gives. */
  throttleWindowMs?: number;
  retryAfterSeconds?: number;
  /** The agent's request timeout for the target, and the latency of slow invoice creates above it. */
  timeoutMs?: number;
  slowCreateMs?: number;
  slowCreateProbability?: number;
  log?: (line: string) => void;
}

export interface ChaosReport extends Omit<Verdict, "findings"> {
  target: ChaosTargetKind;
  seed: number;
  events: number;
  invoices: number;
  creditNotes: number;
  kills: number;
  restores: number;
  faultsInjected: Record<string, number>;
  /** 429s answered during the throttle window. */
  throttled: number;
  /** Requests answered after the agent's request timeout (the slow invoice creates among them). */
  answeredAfterTimeout: number;
  /** Of the orphan drafts: those made by a request answered after the timeout to an agent stopped before the answer came. */
  orphanDraftsAfterStop: number;
  needsAction: number;
  leftInFlight: number;
  /** Most requests that reached the target while a Retry-After it gave was running (must be <= concurrency). */
  maxRequestsInRetryAfterWindow: number;
  retryAfterWindows: number;
  /** [dispatch] concurrency: pushes under way send at most one request each into a Retry-After window. */
  concurrency: number;
  findings: string[];
  seconds: number;
  dir: string;
}

/** Why the run failed; empty when it passed. */
export function failures(r: ChaosReport): string[] {
  const zero = [
    "missing",
    "duplicates",
    "wrong",
    "orphanDrafts",
    "missingCustomers",
    "missingProjects",
    "needsAction",
    "leftInFlight",
  ] as const;
  const out: string[] = zero.filter((k) => r[k] !== 0).map((k) => `${k} ${r[k]}`);
  if (r.maxRequestsInRetryAfterWindow > r.concurrency)
    out.push(`${r.maxRequestsInRetryAfterWindow} requests in one Retry-After window (at most ${r.concurrency} pushes were under way)`);
  return out;
}

export async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

async function runCommand(cmd: string[], cwd: string): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.slice(1).join(" ")} exited ${code}: ${err || out}`);
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const seed = opts.seed ?? Date.now() % 100000;
  const kind = opts.target ?? CHAOS_TARGETS[0]!;
  const random = rng(seed);
  const started = performance.now();
  const dir = join(tmpdir(), `kontobro-chaos-${kind}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  // Our own copy: another build of dist/ during a long run must not change the agent under test.
  const binary = join(dir, "kontobro");
  copyFileSync(opts.binary ?? (await build(["linux-x64"]))[0]!, binary);
  chmodSync(binary, 0o755);

  const plan: FaultPlan = {
    timeoutMs: opts.timeoutMs ?? 1000,
    slowCreateMs: opts.slowCreateMs ?? 1500,
    slowCreateProbability: opts.slowCreateProbability ?? 0.03,
    // Past the slow creates' answers, so a delivery whose lease a kill took back waits only seconds (a real target's 10 minutes
    // would outlast the run), and no write the sandbox holds lands after that wait.
    lateAnswerWaitMs: (opts.slowCreateMs ?? 1500) + 1500,
  };
  const retryAfterSeconds = opts.retryAfterSeconds ?? 2;
  const throttleWindowMs = opts.throttleWindowMs ?? 4000;
  const target = await startChaosTarget(kind, dir, random, plan);
  target.background();

  const port = await freePort();
  const token = "chaos-token-0123456789";
  const configPath = join(dir, "kontobro.toml");
  writeFileSync(
    configPath,
    `[agent]\ndata_dir = "${dir}/data"\nlog_level = "warn"\n[http]\nport = ${port}\napi_token = "${token}"\n` +
      `[dispatch]\nconcurrency = ${CONCURRENCY}\nretry_base_ms = 50\nretry_max_ms = 1000\nidle_poll_ms = 100\nlease_seconds = 10\nshutdown_grace_ms = 2000\n` +
      `breaker_base_ms = 200\nbreaker_max_ms = 2000\n` +
      target.toml,
    { mode: 0o600 },
  );
  const url = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${token}` };

  let agent: ReturnType<typeof Bun.spawn> | null = null;
  let lives = 0;
  const startAgent = async () => {
    // One log per life of the agent, kept for a post-mortem of a failed run.
    agent = Bun.spawn([binary, "run", "--config", configPath], {
      cwd: dir,
      stdout: "ignore",
      stderr: Bun.file(join(dir, `agent-${lives++}.log`)),
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) return;
      } catch {
        /* not up yet */
      }
      await Bun.sleep(20);
    }
    throw new Error("the agent did not become healthy within 15 s");
  };
  const stops: number[] = [];
  const stopAgent = async (signal: "SIGKILL" | "SIGTERM") => {
    stops.push(Date.now());
    agent!.kill(signal);
    const code = await agent!.exited;
    if (signal === "SIGTERM" && code !== 0) throw new Error(`the agent exited ${code} on SIGTERM (see ${dir}/agent-${lives - 1}.log)`);
  };

  const events = chaosEvents(opts.invoices, random);
  const expected = expectedDocs(events);
  await startAgent();

  // The PSA: sends batches in order and resends a batch until it is acknowledged. After a restore it sends
  // again everything it had sent (as a PSA told of the restore would), then goes on.
  let next = 0;
  let rewind = false;
  let sending = false;
  const postBatch = async (body: string) => {
    for (;;) {
      try {
        const res = await fetch(`${url}/api/v1/events`, { method: "POST", body, headers: { ...auth, "content-type": "application/json" } });
        if (res.status === 202) return;
        if (res.status !== 503) throw new Error(`intake answered ${res.status}: ${await res.text()}`);
      } catch (e) {
        if ((e as Error).message.startsWith("intake answered")) throw e;
      }
      await Bun.sleep(50);
    }
  };
  // The 429 window opens when the PSA is half-way (so the agent has work), never while it restarts.
  let throttling: Promise<void> | null = null;
  let restarting = false;
  const send = async () => {
    sending = true;
    try {
      for (;;) {
        if (rewind) {
          rewind = false;
          next = 0;
        }
        if (next >= events.length) break;
        if (!throttling && !restarting && next >= events.length / 2) throttling = throttleWindow();
        await postBatch(JSON.stringify(events.slice(next, next + 50)));
        next += 50;
      }
    } finally {
      sending = false;
    }
  };
  let sender: Promise<void>;
  const resendAll = () => {
    if (sending) rewind = true;
    else {
      next = 0;
      sender = send();
    }
  };

  // The scenarios, at moments chosen by the seed: a backup, a restore at a later stop.
  const backupAt = opts.kills >= 2 ? Math.floor(opts.kills * 0.3) : -1;
  const restoreAt = opts.kills >= 2 ? Math.max(backupAt + 1, Math.floor(opts.kills * 0.6)) : -1;
  const backupFile = join(dir, "backup.db");
  let restores = 0;
  let throttled = 0;
  const throttleWindow = async () => {
    const from = target.log.length;
    target.throttle(retryAfterSeconds);
    await Bun.sleep(throttleWindowMs);
    // On a loaded machine the agent may send nothing in the window (restarting, backing off, waiting on a round): the
    // window stays open until it has throttled a request, at most a minute more, so the Retry-After check has one to read.
    const throttledOne = () => target.log.slice(from).some((r) => r.status === 429 && r.retryAfterMs);
    for (const until = Date.now() + 60_000; !throttledOne() && Date.now() < until; ) await Bun.sleep(100);
    target.background();
    throttled = target.log.slice(from).filter((r) => r.status === 429 && r.retryAfterMs).length;
    await Bun.sleep(retryAfterSeconds * 1000 + 500);
    log(`chaos: 429 window of ${throttleWindowMs} ms (Retry-After ${retryAfterSeconds} s): ${throttled} requests throttled`);
  };
  sender = send();

  // The chaos monkey: SIGKILL at random moments, during intake and during dispatch.
  let kills = 0;
  while (kills < opts.kills) {
    const pause = 50 + random() * (sending ? 400 : 250);
    if (kills === backupAt) {
      const first = random() * pause;
      await Bun.sleep(first);
      await runCommand([binary, "backup", backupFile, "--config", configPath], dir);
      log(`chaos: backup taken while the agent runs (before kill ${kills + 1})`);
      await Bun.sleep(pause - first);
    } else {
      await Bun.sleep(pause);
    }
    // No kill while a Retry-After runs: a 429 answered to a process killed at that moment reaches nobody.
    if (throttling) await throttling;
    restarting = true;
    if (kills === restoreAt) {
      await stopAgent("SIGTERM");
      await runCommand([binary, "restore", backupFile, "--config", configPath], dir);
      restores += 1;
      await startAgent();
      resendAll();
      log(`chaos: restored the backup at stop ${kills + 1}; the PSA sends everything again`);
    } else {
      // Mostly SIGKILL (a crash); every fifth a SIGTERM (a clean stop while pushes are in flight).
      await stopAgent(kills % 5 === 4 ? "SIGTERM" : "SIGKILL");
      await startAgent();
    }
    restarting = false;
    kills += 1;
    if (kills % 10 === 0) log(`chaos: ${kills} kills so far`);
  }
  for (let s = sender; ; s = sender) {
    await s;
    if (s === sender) break;
  }
  await (throttling ??= throttleWindow()); // (only if every half-way moment fell on a restart)
  log(`chaos: all ${events.length} events acknowledged; waiting for the outbox to drain…`);

  // Drain: faults stay on; wait until nothing is pending, waiting or in flight.
  const metric = async (statuses: string) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(new RegExp(`kontobro_deliveries\\{target="${TARGET_NAME}",status="(${statuses})"\\} (\\d+)`, "g")))
      n += Number(m[2]);
    return n;
  };
  const deadline = Date.now() + 15 * 60_000;
  let leftInFlight = await metric("pending|in_flight|waiting");
  while (leftInFlight > 0 && Date.now() < deadline) {
    await Bun.sleep(200);
    leftInFlight = await metric("pending|in_flight|waiting");
  }
  // A slow create answered after the timeout is still listened to by the agent (and its draft removed).
  await Bun.sleep(plan.slowCreateMs + 1000);
  leftInFlight = await metric("pending|in_flight|waiting");
  const needsAction = await metric("needs_action");
  await stopAgent("SIGTERM");

  const snapshot = target.snapshot();
  const verdict = verify(expected, masterNumbers(events), snapshot);
  verdict.findings.push(...(target.findings?.() ?? []));
  const window = maxRequestsInRetryAfterWindow(target.log);
  if (window.max > CONCURRENCY && window.worst) verdict.findings.push(`Retry-After not honoured: ${window.worst}`);
  const drafts = draftsMadeAfterStop(snapshot.drafts, snapshot.booked, target.log, stops, plan.timeoutMs);
  if (drafts.others.length > 0)
    verdict.findings.push(
      `drafts left that a living agent heard of: ${drafts.others.map((d) => `${d.psaId} made ${new Date(d.createdAt).toISOString()}`).join(", ")}`,
    );
  const report: ChaosReport = {
    target: kind,
    seed,
    events: events.length,
    invoices: events.filter((e) => e.type === "invoice.finalized").length,
    creditNotes: events.filter((e) => e.type === "invoice.credited").length,
    kills,
    restores,
    faultsInjected: target.faultsInjected(),
    throttled,
    answeredAfterTimeout: target.log.filter((r) => r.answeredAt - r.startedAt > plan.timeoutMs).length,
    orphanDraftsAfterStop: drafts.afterStop.length,
    ...verdict,
    needsAction,
    leftInFlight,
    maxRequestsInRetryAfterWindow: window.max,
    retryAfterWindows: window.windows,
    concurrency: CONCURRENCY,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    dir,
  };
  await target.stop();
  rmSync(binary, { force: true });
  // For a post-mortem: what the target saw, on the sandbox's clock, and when the agent was stopped.
  if (failures(report).length > 0) {
    writeFileSync(join(dir, "requests.jsonl"), target.log.map((r) => JSON.stringify(r)).join("\n"));
    writeFileSync(join(dir, "stops.json"), JSON.stringify(stops));
  }
  log(`chaos: data and agent logs in ${dir}`);
  return report;
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function printReport(r: ChaosReport, print: (line: string) => void = console.log): void {
  print(
    `${r.target} (seed ${r.seed}): events ${r.events} (${r.invoices} invoices, ${r.creditNotes} credit notes), kills ${r.kills}, restores ${r.restores}, faults injected ${JSON.stringify(r.faultsInjected)}, answered after the client timeout ${r.answeredAfterTimeout}, 429 window ${r.throttled} throttled`,
  );
  print(
    `missing ${r.missing}, duplicates ${r.duplicates}, wrong ${r.wrong}, orphan drafts ${r.orphanDrafts} (${r.orphanDraftsAfterStop} made after their agent was stopped), missing customers ${r.missingCustomers}, missing projects ${r.missingProjects}, ` +
      `needs action ${r.needsAction}, left in flight ${r.leftInFlight}, max requests in a Retry-After window ${r.maxRequestsInRetryAfterWindow} ` +
      `(of ${r.retryAfterWindows} windows; at most ${r.concurrency} pushes under way) (${r.seconds} s)`,
  );
  for (const f of r.findings) print(`  ${f}`);
}

if (import.meta.main && flag("storage") === "postgres") {
  // The hosted installation's run: several workers on one PostgreSQL, many tenants (scripts/chaos-pg.ts).
  const { pgChaosMain } = await import("./chaos-pg.ts");
  process.exit(await pgChaosMain(flag));
} else if (import.meta.main) {
  const target = flag("target") ?? CHAOS_TARGETS[0]!;
  if (!CHAOS_TARGETS.includes(target)) {
    console.error(`--target must be one of ${CHAOS_TARGETS.join(", ")}`);
    process.exit(2);
  }
  const number = (name: string, fallback: number) => {
    const v = flag(name);
    return v === undefined ? fallback : Number(v);
  };
  const report = await runChaos({
    target,
    invoices: number("invoices", 5000),
    kills: number("kills", 50),
    seed: number("seed", Date.now() % 100000),
    throttleWindowMs: number("throttle-ms", 6000),
    retryAfterSeconds: number("retry-after", 3),
    slowCreateMs: number("slow-create-ms", 1500),
    slowCreateProbability: number("slow-create-p", 0.03),
  });
  printReport(report);
  const failed = failures(report);
  if (failed.length > 0) console.log(`FAILED: ${failed.join(", ")}`);
  process.exit(failed.length === 0 ? 0 : 1);
}
