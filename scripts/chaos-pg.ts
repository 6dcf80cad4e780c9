// The chaos run of a hosted installation (issue 17): several `kontobro run` workers (the compiled agent) on one
// real PostgreSQL server (test/pg-server.ts), many tenants added with `kontobro tenant add`, each with its own
// sandbox of the target (its own agreement) injecting the faults of scripts/chaos.ts: 503s and 429s
// (Retry-After 0), 500s, "commit, then drop the connection", latency, invoice creates answered after the client
// timeout, and a window of several seconds in which every target answers 429 with a long Retry-After.
// The PSAs (one per tenant, all at once) post their events in batches to a random worker; a batch that fails (a
// killed worker, a 503) goes again to another worker than the one it failed on, and some acknowledged batches are
// sent again to another worker (a PSA that missed the answer). Workers are SIGKILLed at random moments, each
// restarted. The tenants' invoice, customer and event numbers overlap, with other content (forTenant in
// chaos-events.ts), so a document booked at the wrong tenant's target reads as wrong or duplicate there.
// At the end, per tenant against its own sandbox's books: every invoice and credit note booked once and right,
// nothing left in flight or needing action, at most [dispatch] concurrency x workers requests inside a
// Retry-After window; and per tenant on every worker: its token reads its own status only (its own deliveries
// counted, no other tenant named), a wrong token and the admin token get 401; in the database every tenant holds
// exactly its own events.
//
//   bun scripts/chaos-pg.ts                  full run: 3 workers, 20 tenants, 2,000 invoices, 30 kills
//   bun scripts/chaos.ts --storage postgres --workers 3 --tenants 20 --invoices 2000 --kills 30 --seed 7
import { SQL, type Subprocess } from "bun";
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ChaosTarget, FaultPlan } from "../connectors/sandbox.ts";
import { pgUnavailable, startPgServer, type PgServer } from "../test/pg-server.ts";
import { build } from "./build.ts";
import { chaosEvents, expectedDocs, forTenant, masterNumbers, rng, type ChaosEvent, type ExpectedDoc } from "./chaos-events.ts";
import { draftsMadeAfterStop, maxRequestsInRetryAfterWindow, verify } from "./chaos-verify.ts";
import { CHAOS_TARGETS, freePort, startChaosTarget } from "./chaos.ts";

/** [dispatch] concurrency of each worker: the most pushes under way at once per tenant's target and worker. */
const CONCURRENCY = 4;
/** Events per intake request, and the PSA's pause between two (so that kills fall during intake too). */
const BATCH = 10;
const BATCH_PAUSE_MS = 300;
const ADMIN_TOKEN = "chaos-admin-token-0123456789";

export interface PgChaosOptions {
  invoices: number;
  tenants: number;
  workers: number;
  kills: number;
  seed?: number;
  target?: string;
  binary?: string;
  /** How long every target answers 429 (ms), and the Retry-After it gives. */
  throttleWindowMs?: number;
  retryAfterSeconds?: number;
  /** The workers' request timeout for the targets, and the latency of slow invoice creates above it. */
  timeoutMs?: number;
  slowCreateMs?: number;
  slowCreateProbability?: number;
  /** Share of acknowledged batches the PSA sends again to another worker. */
  resendProbability?: number;
  /** [dispatch] lease_seconds of the workers (as in scripts/chaos.ts: 10). */
  leaseSeconds?: number;
  log?: (line: string) => void;
}

/** One tenant's verdict, against its own sandbox. */
export interface TenantVerdict {
  slug: string;
  events: number;
  missing: number;
  duplicates: number;
  wrong: number;
  orphanDrafts: number;
  orphanDraftsAfterStop: number;
  missingCustomers: number;
  missingProjects: number;
  needsAction: number;
  leftInFlight: number;
  maxRequestsInRetryAfterWindow: number;
}

export interface PgChaosReport {
  target: string;
  seed: number;
  tenants: number;
  workers: number;
  events: number;
  invoices: number;
  creditNotes: number;
  /** SIGKILLs sent, and to which worker (index). */
  kills: number;
  killsPerWorker: number[];
  /** Workers that exited by themselves (declared dead by the others: exit 1), each restarted. */
  exitsOnTheirOwn: number;
  batches: number;
  /** Batches sent again to another worker after a failure (connection lost, 503). */
  resentAfterFailure: number;
  /** Acknowledged batches sent again to another worker on purpose. */
  resentAfterAck: number;
  /** Why intake requests failed (each was sent again to another worker): "connection", or the status and error code. */
  intakeFailures: Record<string, number>;
  /** Intake answers other than 202/503, and 202s that stored something stale. */
  intakeErrors: number;
  faultsInjected: Record<string, number>;
  /** 429s answered during the throttle window, all targets. */
  throttled: number;
  answeredAfterTimeout: number;
  missing: number;
  duplicates: number;
  wrong: number;
  orphanDrafts: number;
  orphanDraftsAfterStop: number;
  missingCustomers: number;
  missingProjects: number;
  needsAction: number;
  leftInFlight: number;
  /** Isolation checks made after the run (status per tenant per worker, wrong tokens, events per tenant in the database). */
  isolationChecks: number;
  /** Of them, those that failed: another tenant's data seen, a wrong token let in, events stored at another tenant. */
  crossTenant: number;
  /** Most requests inside one Retry-After window at one tenant's target (must be <= retryAfterBound). */
  maxRequestsInRetryAfterWindow: number;
  retryAfterBound: number;
  perTenant: TenantVerdict[];
  findings: string[];
  seconds: number;
  dir: string;
}

/** Why the run failed; empty when it passed. A draft left by a create whose answer reached no worker is left open (connector READMEs). */
export function pgFailures(r: PgChaosReport): string[] {
  const counts = {
    missing: r.missing,
    duplicates: r.duplicates,
    wrong: r.wrong,
    crossTenant: r.crossTenant,
    orphanDraftsHeardByAWorker: r.orphanDrafts - r.orphanDraftsAfterStop,
    missingCustomers: r.missingCustomers,
    missingProjects: r.missingProjects,
    needsAction: r.needsAction,
    leftInFlight: r.leftInFlight,
    intakeErrors: r.intakeErrors,
  };
  const out = Object.entries(counts)
    .filter(([, n]) => n !== 0)
    .map(([k, n]) => `${k} ${n}`);
  if (r.maxRequestsInRetryAfterWindow > r.retryAfterBound)
    out.push(`${r.maxRequestsInRetryAfterWindow} requests in one Retry-After window (at most ${r.retryAfterBound} pushes were under way)`);
  return out;
}

/** `total` invoices over `tenants`, unevenly (seeded): each tenant's status then counts a number of its own. */
export function spreadInvoices(total: number, tenants: number, random: () => number): number[] {
  const weights = Array.from({ length: tenants }, () => 0.5 + random());
  const sum = weights.reduce((a, b) => a + b, 0);
  const counts = weights.map((w) => Math.max(1, Math.floor((total * w) / sum)));
  for (let i = 0; counts.reduce((a, b) => a + b, 0) < total; i = (i + 1) % tenants) counts[i]! += 1;
  return counts;
}

interface TenantUnderFire {
  slug: string;
  token: string;
  target: ChaosTarget;
  events: ChaosEvent[];
  expected: Map<string, ExpectedDoc>;
  acked: number;
}

interface WorkerSlot {
  index: number;
  port: number;
  url: string;
  config: string;
  proc: Subprocess | null;
  lives: number;
  /** Resolves when the current life answers /readyz. */
  ready: Promise<void>;
  up: boolean;
  /** Set while this run stops it on purpose (a kill, the end). */
  stopping: boolean;
}

async function spawnText(cmd: string[], cwd: string): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.slice(1).join(" ")} exited ${code}: ${err || out}`);
  return out;
}

/**
 * `kontobro tenant add SLUG --file FILE --config CLI_CONFIG` as an operator runs it (the tenant's configuration
 * `toml` is written to `file` first); returns the API token it prints once. The chaos run's and the benchmark's.
 */
export async function addTenantWithCli(
  binary: string,
  t: { slug: string; toml: string; file: string; cliConfig: string },
): Promise<string> {
  writeFileSync(t.file, t.toml, { mode: 0o600 });
  const out = await spawnText([binary, "tenant", "add", t.slug, "--file", t.file, "--config", t.cliConfig], dirname(t.file));
  const token = /shown only now[^\n]*\n {2}(\S+)/.exec(out)?.[1];
  if (!token) throw new Error(`kontobro tenant add ${t.slug} printed no API token: ${out}`);
  return token;
}

/** Runs `fn` on every item, at most `n` at once. */
export async function eachLimited<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function workerToml(dir: string, index: number, port: number, url: string, leaseSeconds: number): string {
  return (
    `[agent]\ndata_dir = "${dir}/data-${index}"\nlog_level = "warn"\n[storage]\nurl = "${url}"\n[http]\nport = ${port}\n` +
    `[dispatch]\nconcurrency = ${CONCURRENCY}\nretry_base_ms = 50\nretry_max_ms = 1000\nidle_poll_ms = 100\nlease_seconds = ${leaseSeconds}\nshutdown_grace_ms = 2000\n` +
    `breaker_base_ms = 200\nbreaker_max_ms = 2000\n` +
    `[workers]\nheartbeat_ms = 300\ndead_after_ms = 3000\ntenants_refresh_ms = 2000\n[admin]\ntoken = "${ADMIN_TOKEN}"\n`
  );
}

export async function runPgChaos(opts: PgChaosOptions): Promise<PgChaosReport> {
  const unavailable = pgUnavailable();
  if (unavailable) throw new Error(`the chaos run on PostgreSQL needs a PostgreSQL server: ${unavailable}`);
  const log = opts.log ?? ((l: string) => console.log(l));
  const seed = opts.seed ?? Date.now() % 100000;
  const kind = opts.target ?? CHAOS_TARGETS[0]!;
  const random = rng(seed);
  const started = performance.now();
  const dir = join(tmpdir(), `kontobro-chaos-pg-${kind}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const binary = join(dir, "kontobro");
  copyFileSync(opts.binary ?? (await build(["linux-x64"]))[0]!, binary);
  chmodSync(binary, 0o755);
  const findings: string[] = [];
  const note = (f: string) => {
    if (findings.length < 40) findings.push(f);
  };

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
  const resendProbability = opts.resendProbability ?? 0.05;
  const leaseSeconds = opts.leaseSeconds ?? 10;

  let server: PgServer | null = null;
  let admin: SQL | null = null;
  const slots: WorkerSlot[] = [];
  const tenants: TenantUnderFire[] = [];
  let finished = false;
  try {
    server = await startPgServer();
    admin = new SQL({ url: server.adminUrl, max: 1 });
    const cliConfig = join(dir, "cli.toml");
    writeFileSync(cliConfig, workerToml(dir, 0, 0, server.url, leaseSeconds), { mode: 0o600 });

    // The tenants: their events (overlapping numbers, their own content) and their own sandboxes.
    const spread = spreadInvoices(opts.invoices, opts.tenants, random);
    for (const [k, invoices] of spread.entries()) {
      const slug = `chaos-${String(k + 1).padStart(2, "0")}`;
      const tenantDir = join(dir, slug);
      mkdirSync(tenantDir);
      // Its own random stream: the faults it draws do not move the events or the kills of a given seed.
      const target = await startChaosTarget(kind, tenantDir, rng(seed * 31 + k + 1), plan);
      target.background();
      const events = forTenant(chaosEvents(invoices, random), k);
      tenants.push({ slug, token: "", target, events, expected: expectedDocs(events), acked: 0 });
    }
    // Added with the real CLI, a few at once (the first migrates the database; the others wait on its lock).
    await eachLimited(tenants, 4, async (t) => {
      t.token = await addTenantWithCli(binary, { slug: t.slug, toml: t.target.toml, file: join(dir, t.slug, "tenant.toml"), cliConfig });
    });
    log(`chaos-pg: ${tenants.length} tenants added (${spread.join(", ")} invoices)`);

    // The workers: each restarted whenever it ends, on the same port (as behind a load balancer).
    const exits: string[] = [];
    const startWorker = (slot: WorkerSlot) => {
      const life = slot.lives++;
      const proc = Bun.spawn([binary, "run", "--config", slot.config], {
        cwd: dir,
        stdin: "ignore",
        stdout: "ignore",
        stderr: Bun.file(join(dir, `worker-${slot.index}-${life}.log`)),
      });
      slot.proc = proc;
      slot.up = false;
      slot.ready = (async () => {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          if (proc.exitCode !== null) return; // ended while starting: its exit handler starts it again
          const res = await fetch(`${slot.url}/readyz`).catch(() => null);
          if (res?.status === 200) {
            slot.up = true;
            return;
          }
          await Bun.sleep(50);
        }
        throw new Error(`worker ${slot.index} did not become ready within 60 s (see ${dir}/worker-${slot.index}-${life}.log)`);
      })();
      slot.ready.catch(() => {}); // (awaited before the drain, which then fails the run)
      void proc.exited.then((code) => {
        slot.up = false;
        if (slot.stopping || finished) return;
        exits.push(`worker ${slot.index} life ${life} exited ${code} by itself`);
        log(`chaos-pg: worker ${slot.index} exited ${code} by itself (worker-${slot.index}-${life}.log); starting it again`);
        startWorker(slot);
      });
    };
    for (let i = 0; i < opts.workers; i++) {
      const port = await freePort();
      const config = join(dir, `worker-${i}.toml`);
      writeFileSync(config, workerToml(dir, i, port, server.url, leaseSeconds), { mode: 0o600 });
      const slot: WorkerSlot = {
        index: i,
        port,
        url: `http://127.0.0.1:${port}`,
        config,
        proc: null,
        lives: 0,
        ready: Promise.resolve(),
        up: false,
        stopping: false,
      };
      slots.push(slot);
      startWorker(slot);
    }
    await Promise.all(slots.map((s) => s.ready));
    log(`chaos-pg: ${slots.length} workers ready`);

    // The PSAs: one per tenant, all at once, each sending its batches in order.
    const anyWorker = () => Math.floor(random() * slots.length);
    const anotherWorker = (than: number) => (than + 1 + Math.floor(random() * (slots.length - 1))) % slots.length;
    let batches = 0;
    let resentAfterFailure = 0;
    let resentAfterAck = 0;
    let intakeErrors = 0;
    const intakeFailures: Record<string, number> = {};
    const postOnce = async (w: number, t: TenantUnderFire, body: string): Promise<boolean> => {
      try {
        const res = await fetch(`${slots[w]!.url}/api/v1/events`, {
          method: "POST",
          body,
          headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        if (res.status === 202) {
          const stale = (JSON.parse(text) as { stale: number }).stale;
          if (stale > 0) {
            intakeErrors += 1;
            note(`${t.slug}: intake at worker ${w} answered ${stale} event(s) stale: ${text.slice(0, 300)}`);
          }
          return true;
        }
        if (res.status !== 503) {
          intakeErrors += 1;
          note(`${t.slug}: intake at worker ${w} answered ${res.status}: ${text.slice(0, 300)}`);
        }
        const cause = `${res.status} ${(JSON.parse(text) as { error?: string }).error ?? ""}`.trim();
        intakeFailures[cause] = (intakeFailures[cause] ?? 0) + 1;
      } catch (e) {
        // The worker died under the request, or is restarting.
        const cause = `connection ${(e as { code?: string }).code ?? (e as Error).name}${slots[w]!.up ? " (worker up)" : ""}`;
        intakeFailures[cause] = (intakeFailures[cause] ?? 0) + 1;
      }
      return false;
    };
    /** Sends a batch until a worker acknowledges it; after a failure, to another worker. Returns the worker that did. */
    const deliver = async (t: TenantUnderFire, body: string, first: number): Promise<number> => {
      for (let w = first; ; w = anotherWorker(w)) {
        if (await postOnce(w, t, body)) return w;
        resentAfterFailure += 1;
        await Bun.sleep(50);
      }
    };
    let totalAcked = 0;
    const totalEvents = tenants.reduce((n, t) => n + t.events.length, 0);
    let throttling: Promise<void> | null = null;
    const throttleWindow = async () => {
      const from = tenants.map((t) => t.target.log.length);
      for (const t of tenants) t.target.throttle(retryAfterSeconds);
      await Bun.sleep(throttleWindowMs);
      for (const t of tenants) t.target.background();
      const throttled = tenants.reduce(
        (n, t, k) => n + t.target.log.slice(from[k]).filter((r) => r.status === 429 && r.retryAfterMs).length,
        0,
      );
      await Bun.sleep(retryAfterSeconds * 1000 + 500);
      log(`chaos-pg: 429 window of ${throttleWindowMs} ms (Retry-After ${retryAfterSeconds} s): ${throttled} requests throttled`);
      return throttled;
    };
    let throttled = 0;
    const openThrottle = () => (throttling = throttleWindow().then((n) => void (throttled = n)));
    const sendAll = async (t: TenantUnderFire) => {
      for (let at = 0; at < t.events.length; at += BATCH) {
        const batch = t.events.slice(at, at + BATCH);
        const body = JSON.stringify(batch);
        batches += 1;
        const took = await deliver(t, body, anyWorker());
        if (random() < resendProbability) {
          resentAfterAck += 1;
          await deliver(t, body, anotherWorker(took));
        }
        t.acked += batch.length;
        totalAcked += batch.length;
        await Bun.sleep(random() * 2 * BATCH_PAUSE_MS);
        // The 429 window opens when the PSAs are half-way (so the workers have work).
        if (!throttling && totalAcked >= totalEvents / 2) openThrottle();
      }
    };
    const senders = Promise.all(tenants.map(sendAll));
    let sending = true;
    void senders.then(() => (sending = false));

    // The chaos monkey: SIGKILL a worker at a random moment, start it again. Every worker is killed at least once.
    const stops: number[] = [];
    const killsPerWorker = slots.map(() => 0);
    let kills = 0;
    while (kills < opts.kills) {
      await Bun.sleep(200 + random() * (sending ? 800 : 500));
      // No kill while a Retry-After runs: a 429 answered to a worker killed then reaches nobody.
      if (throttling) await throttling;
      // At least one worker stays up: the PSAs' requests land on the living while the killed start again.
      const readySlots = slots.filter((s) => s.up);
      if (readySlots.length < Math.min(2, slots.length)) continue;
      const neverKilled = readySlots.filter((s) => killsPerWorker[s.index] === 0);
      const slot = neverKilled[0] ?? readySlots[Math.floor(random() * readySlots.length)]!;
      slot.stopping = true;
      stops.push(Date.now());
      slot.proc!.kill("SIGKILL");
      await slot.proc!.exited;
      slot.stopping = false;
      startWorker(slot);
      kills += 1;
      killsPerWorker[slot.index]! += 1;
      if (kills % 10 === 0) log(`chaos-pg: ${kills} kills so far`);
    }
    await senders;
    await throttling;
    await Promise.all(slots.map((s) => s.ready));
    log(`chaos-pg: all ${totalEvents} events acknowledged; waiting for the outboxes to drain…`);

    // Drain: faults stay on; wait until no tenant has anything pending, waiting or in flight.
    const countsOf = async (t: TenantUnderFire) => {
      for (let w = anyWorker(); ; w = anotherWorker(w)) {
        const res = await fetch(`${slots[w]!.url}/api/v1/status`, { headers: { authorization: `Bearer ${t.token}` } }).catch(() => null);
        if (res?.status === 200) return ((await res.json()) as { counts: { status: string; n: number }[] }).counts;
        await Bun.sleep(100);
      }
    };
    const unfinished = async (t: TenantUnderFire) => {
      const counts = await countsOf(t);
      const sum = (statuses: string[]) => counts.filter((c) => statuses.includes(c.status)).reduce((n, c) => n + Number(c.n), 0);
      return { leftInFlight: sum(["pending", "in_flight", "waiting"]), needsAction: sum(["needs_action"]) };
    };
    const deadline = Date.now() + 15 * 60_000;
    const left = async () => (await Promise.all(tenants.map(unfinished))).reduce((n, u) => n + u.leftInFlight, 0);
    // A drain that stops moving for 10 s is noted with the targets' stored state (a pause or a probe not let go).
    let last = -1;
    let still = Date.now();
    for (let n = await left(); n > 0 && Date.now() < deadline; n = await left()) {
      if (n !== last) [last, still] = [n, Date.now()];
      else if (Date.now() - still > 10_000) {
        const held =
          await admin`SELECT t.slug, s.breaker, s.paused_until, s.next_probe_at, (extract(epoch from clock_timestamp()) * 1000)::bigint AS now
          FROM target_state s JOIN tenants t ON t.id = s.tenant_id WHERE s.breaker <> 'closed' OR s.paused_until > extract(epoch from clock_timestamp()) * 1000`;
        note(`drain stalled for 10 s at ${n} deliveries left; targets held: ${JSON.stringify(held)}`);
        still = Date.now();
      }
      await Bun.sleep(500);
    }
    // A slow create answered after the timeout is still listened to by its worker (and its draft removed).
    await Bun.sleep(plan.slowCreateMs + 1000);
    const end = await Promise.all(tenants.map(unfinished));

    // Isolation: each tenant's token on every worker reads its own status only; other tokens get 401.
    let isolationChecks = 0;
    let crossTenant = 0;
    const check = (ok: boolean, what: string) => {
      isolationChecks += 1;
      if (!ok) {
        crossTenant += 1;
        note(`cross-tenant: ${what}`);
      }
    };
    for (const t of tenants) {
      for (const slot of slots) {
        const res = await fetch(`${slot.url}/api/v1/status`, { headers: { authorization: `Bearer ${t.token}` } });
        const text = await res.text();
        check(res.status === 200, `${t.slug}'s token at worker ${slot.index} answered ${res.status}`);
        if (res.status !== 200) continue;
        const body = JSON.parse(text) as { tenant: string; counts: { target: string; n: number }[] };
        const counted = body.counts.reduce((n, c) => n + Number(c.n), 0);
        check(body.tenant === t.slug, `${t.slug}'s token at worker ${slot.index} read the status of ${body.tenant}`);
        // One delivery per event: the tenant's one target takes every entity sent.
        check(
          counted === t.events.length,
          `${t.slug}'s status at worker ${slot.index} counts ${counted} deliveries, it sent ${t.events.length} events`,
        );
        const others = tenants.filter((o) => o !== t && text.includes(o.slug)).map((o) => o.slug);
        check(others.length === 0, `${t.slug}'s status at worker ${slot.index} names ${others.join(", ")}`);
      }
    }
    for (const slot of slots) {
      for (const token of ["chaos-not-a-token-0123456789", ADMIN_TOKEN, `${tenants[0]!.token}x`]) {
        const res = await fetch(`${slot.url}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } });
        await res.arrayBuffer();
        check(res.status === 401, `a wrong token at worker ${slot.index} answered ${res.status}, not 401`);
      }
    }
    const stored = new Map(
      (await admin`SELECT t.slug, count(e.*)::integer AS n FROM tenants t LEFT JOIN events e ON e.tenant_id = t.id GROUP BY t.slug`).map(
        (r: { slug: string; n: number }) => [r.slug, r.n],
      ),
    );
    for (const t of tenants)
      check(
        stored.get(t.slug) === t.events.length,
        `${t.slug} holds ${stored.get(t.slug)} events in the database, it sent ${t.events.length}`,
      );

    // Stop the workers cleanly.
    finished = true;
    for (const s of slots) {
      s.stopping = true;
      s.proc?.kill("SIGTERM");
    }
    const codes = await Promise.all(slots.map((s) => s.proc!.exited));
    for (const [i, code] of codes.entries()) if (code !== 0) note(`worker ${i} exited ${code} on SIGTERM at the end`);

    // Each tenant's books, against what its PSA sent.
    const bound = CONCURRENCY * slots.length;
    const perTenant: TenantVerdict[] = tenants.map((t, k) => {
      const snapshot = t.target.snapshot();
      const verdict = verify(t.expected, masterNumbers(t.events), snapshot);
      for (const f of [...verdict.findings, ...(t.target.findings?.() ?? [])]) note(`${t.slug}: ${f}`);
      const window = maxRequestsInRetryAfterWindow(t.target.log);
      if (window.max > bound && window.worst) note(`${t.slug}: Retry-After not honoured: ${window.worst}`);
      const drafts = draftsMadeAfterStop(snapshot.drafts, snapshot.booked, t.target.log, stops, plan.timeoutMs);
      return {
        slug: t.slug,
        events: t.events.length,
        missing: verdict.missing,
        duplicates: verdict.duplicates,
        wrong: verdict.wrong,
        orphanDrafts: verdict.orphanDrafts,
        orphanDraftsAfterStop: drafts.afterStop.length,
        missingCustomers: verdict.missingCustomers,
        missingProjects: verdict.missingProjects,
        needsAction: end[k]!.needsAction,
        leftInFlight: end[k]!.leftInFlight,
        maxRequestsInRetryAfterWindow: window.max,
      };
    });
    const total = (key: keyof TenantVerdict) => perTenant.reduce((n, v) => n + (v[key] as number), 0);
    const faultsInjected: Record<string, number> = {};
    for (const t of tenants)
      for (const [f, n] of Object.entries(t.target.faultsInjected())) faultsInjected[f] = (faultsInjected[f] ?? 0) + n;
    const allEvents = tenants.flatMap((t) => t.events);
    for (const e of exits) note(e);
    const report: PgChaosReport = {
      target: kind,
      seed,
      tenants: tenants.length,
      workers: slots.length,
      events: allEvents.length,
      invoices: allEvents.filter((e) => e.type === "invoice.finalized").length,
      creditNotes: allEvents.filter((e) => e.type === "invoice.credited").length,
      kills,
      killsPerWorker,
      exitsOnTheirOwn: exits.length,
      batches,
      resentAfterFailure,
      resentAfterAck,
      intakeFailures,
      intakeErrors,
      faultsInjected,
      throttled,
      answeredAfterTimeout: tenants.reduce((n, t) => n + t.target.log.filter((r) => r.answeredAt - r.startedAt > plan.timeoutMs).length, 0),
      missing: total("missing"),
      duplicates: total("duplicates"),
      wrong: total("wrong"),
      orphanDrafts: total("orphanDrafts"),
      orphanDraftsAfterStop: total("orphanDraftsAfterStop"),
      missingCustomers: total("missingCustomers"),
      missingProjects: total("missingProjects"),
      needsAction: total("needsAction"),
      leftInFlight: total("leftInFlight"),
      isolationChecks,
      crossTenant,
      maxRequestsInRetryAfterWindow: Math.max(...perTenant.map((v) => v.maxRequestsInRetryAfterWindow)),
      retryAfterBound: bound,
      perTenant,
      findings,
      seconds: Math.round((performance.now() - started) / 100) / 10,
      dir,
    };
    if (pgFailures(report).length > 0) {
      for (const t of tenants) writeFileSync(join(dir, t.slug, "requests.jsonl"), t.target.log.map((r) => JSON.stringify(r)).join("\n"));
      writeFileSync(join(dir, "stops.json"), JSON.stringify(stops));
    }
    log(`chaos-pg: data and worker logs in ${dir}`);
    return report;
  } finally {
    finished = true;
    for (const s of slots) if (s.proc && s.proc.exitCode === null) s.proc.kill("SIGKILL");
    await admin?.close();
    await server?.stop();
    for (const t of tenants) await t.target.stop();
    rmSync(binary, { force: true });
  }
}

export function printPgReport(r: PgChaosReport, print: (line: string) => void = console.log): void {
  print(
    `${r.target} on PostgreSQL (seed ${r.seed}): ${r.workers} workers, ${r.tenants} tenants, events ${r.events} (${r.invoices} invoices, ${r.creditNotes} credit notes) in ${r.batches} batches, ` +
      `resent to another worker ${r.resentAfterFailure} after a failure (${JSON.stringify(r.intakeFailures)}) and ${r.resentAfterAck} after an answer, ` +
      `kills ${r.kills} (per worker ${r.killsPerWorker.join("/")}), exits on their own ${r.exitsOnTheirOwn}`,
  );
  print(
    `faults injected ${JSON.stringify(r.faultsInjected)}, answered after the client timeout ${r.answeredAfterTimeout}, 429 window ${r.throttled} throttled`,
  );
  print(
    `missing ${r.missing}, duplicates ${r.duplicates}, wrong ${r.wrong}, cross-tenant ${r.crossTenant} (of ${r.isolationChecks} checks), ` +
      `orphan drafts ${r.orphanDrafts} (${r.orphanDraftsAfterStop} made after their worker was killed), missing customers ${r.missingCustomers}, ` +
      `missing projects ${r.missingProjects}, needs action ${r.needsAction}, left in flight ${r.leftInFlight}, intake errors ${r.intakeErrors}, ` +
      `max requests in a Retry-After window ${r.maxRequestsInRetryAfterWindow} (at most ${r.retryAfterBound} pushes under way) (${r.seconds} s)`,
  );
  for (const f of r.findings) print(`  ${f}`);
}

/** The command line: `bun scripts/chaos-pg.ts [--workers N --tenants N --invoices N --kills N --seed N --target KIND …]`. */
export async function pgChaosMain(flag: (name: string) => string | undefined): Promise<number> {
  const target = flag("target") ?? CHAOS_TARGETS[0]!;
  if (!CHAOS_TARGETS.includes(target)) {
    console.error(`--target must be one of ${CHAOS_TARGETS.join(", ")}`);
    return 2;
  }
  const number = (name: string, fallback: number) => {
    const v = flag(name);
    return v === undefined ? fallback : Number(v);
  };
  const report = await runPgChaos({
    target,
    workers: number("workers", 3),
    tenants: number("tenants", 20),
    invoices: number("invoices", 2000),
    kills: number("kills", 30),
    seed: number("seed", Date.now() % 100000),
    throttleWindowMs: number("throttle-ms", 6000),
    retryAfterSeconds: number("retry-after", 3),
    slowCreateMs: number("slow-create-ms", 1500),
    slowCreateProbability: number("slow-create-p", 0.03),
    leaseSeconds: number("lease-seconds", 10),
    ...(flag("binary") ? { binary: flag("binary") } : {}),
  });
  printPgReport(report);
  const failed = pgFailures(report);
  if (failed.length > 0) console.log(`FAILED: ${failed.join(", ")}`);
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  const flag = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  process.exit(await pgChaosMain(flag));
}
