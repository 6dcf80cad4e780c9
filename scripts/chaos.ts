// The chaos run: the compiled agent and the e-conomic sandbox on loopback. The sandbox injects 503s,
// 429s with Retry-After, "commit, then drop the connection" and latency, while thousands of invoices
// with their customers and projects are sent and the agent is killed with SIGKILL (every fifth time a
// SIGTERM) at random moments and restarted. At the end every invoice, customer and project must exist exactly once at the target and
// nothing may be left in flight.
//
//   bun scripts/chaos.ts                      full run: 5,000 invoices, 50 kills
//   bun scripts/chaos.ts --invoices 500 --kills 10 --seed 7
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox.ts";
import { build } from "./build.ts";

export interface ChaosOptions {
  invoices: number;
  kills: number;
  seed?: number;
  binary?: string;
  log?: (line: string) => void;
}

export interface ChaosReport {
  events: number;
  kills: number;
  faultsInjected: Record<string, number>;
  missing: number;
  duplicates: number;
  orphanDrafts: number;
  missingCustomers: number;
  missingProjects: number;
  needsAction: number;
  leftInFlight: number;
  seconds: number;
}

/** A small seeded PRNG (mulberry32), so a failing run can be repeated. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

/** Customers, projects and invoices, shuffled so that many arrive before what they depend on. */
export function chaosEvents(invoices: number, random: () => number): unknown[] {
  const customers = Math.max(5, Math.ceil(invoices / 20));
  const projects = Math.max(5, Math.ceil(invoices / 10));
  const events: unknown[] = [];
  for (let c = 1; c <= customers; c++) events.push({ id: `chaos-c-${c}`, type: "customer.upserted", data: { number: 100 + c, name: `Chaos customer ${c}`, currency: "NOK" } });
  for (let p = 1; p <= projects; p++) events.push({ id: `chaos-p-${p}`, type: "project.upserted", data: { number: 1000 + p, name: `Chaos project ${p}`, customerNumber: 100 + ((p - 1) % customers) + 1 } });
  for (let i = 1; i <= invoices; i++) {
    const project = ((i - 1) % projects) + 1;
    const customer = 100 + ((project - 1) % customers) + 1;
    events.push({ id: `chaos-i-${i}`, type: "invoice.finalized", data: {
      number: 100000 + i, psaId: `CHAOS-${i}`, customerNumber: customer, projectNumber: 1000 + project, date: "2026-11-20", dueDate: "2026-12-04",
      lines: [{ text: `Work ${i}`, quantity: 1 + (i % 5), unitPrice: 100000 + i, kind: "hours" }],
    } });
  }
  // Mostly in order, with local shuffles: dependents often arrive first.
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.max(0, i - Math.floor(random() * 40));
    [events[i], events[j]] = [events[j], events[i]];
  }
  return events;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const random = rng(opts.seed ?? Date.now());
  const started = performance.now();
  const binary = opts.binary ?? (await build(["linux-x64"]))[0]!;
  const sandbox = await startEconomicSandbox({ port: 0, random });
  for (const rule of [
    { kind: "503", probability: 0.03 },
    { kind: "429", probability: 0.02, retryAfterSeconds: 1 },
    { kind: "drop_after_commit", method: "POST", probability: 0.03 },
    { kind: "drop_after_commit", method: "PUT", probability: 0.03 },
    { kind: "latency", probability: 0.1, latencyMs: 20 },
  ] as const) sandbox.sandbox.addFault(rule as any);

  const dir = join(tmpdir(), `kontobro-chaos-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const token = "chaos-token-0123456789";
  const configPath = join(dir, "kontobro.toml");
  writeFileSync(configPath, `[agent]\ndata_dir = "${dir}/data"\nlog_level = "warn"\n[http]\nport = ${port}\napi_token = "${token}"\n` +
    `[dispatch]\nconcurrency = 16\nretry_base_ms = 50\nretry_max_ms = 1000\nidle_poll_ms = 100\nlease_seconds = 10\nshutdown_grace_ms = 2000\n` +
    `[[targets]]\nname = "eco"\nkind = "economic"\nrest_url = "${sandbox.url}"\nprojects_url = "${sandbox.projectsUrl}"\n` +
    `app_secret_token = "demo-app-secret"\nagreement_grant_token = "demo-agreement-grant"\nrequests_per_second = 0\nrequest_timeout_ms = 5000\n`, { mode: 0o600 });
  const url = `http://127.0.0.1:${port}`;
  const auth = { authorization: `Bearer ${token}` };

  let agent: ReturnType<typeof Bun.spawn> | null = null;
  const startAgent = async () => {
    // One log per life of the agent, kept for a post-mortem of a failed run.
    agent = Bun.spawn([binary, "run", "--config", configPath], { cwd: dir, stdout: "ignore", stderr: Bun.file(join(dir, `agent-${kills}.log`)) });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      try { if ((await fetch(`${url}/healthz`)).ok) return; } catch { /* not up yet */ }
      await Bun.sleep(20);
    }
    throw new Error("the agent did not become healthy within 15 s");
  };

  const events = chaosEvents(opts.invoices, random);
  let kills = 0;
  let sending = true;
  await startAgent();

  // The PSA: sends batches and resends a batch until it is acknowledged (ids make resends harmless).
  const sender = (async () => {
    for (let i = 0; i < events.length; i += 50) {
      const batch = JSON.stringify(events.slice(i, i + 50));
      for (;;) {
        try {
          const res = await fetch(`${url}/api/v1/events`, { method: "POST", body: batch, headers: { ...auth, "content-type": "application/json" } });
          if (res.status === 202) break;
          if (res.status !== 503) throw new Error(`intake answered ${res.status}: ${await res.text()}`);
        } catch (e) {
          if ((e as Error).message.startsWith("intake answered")) throw e;
        }
        await Bun.sleep(50);
      }
    }
    sending = false;
  })();

  // The chaos monkey: SIGKILL at random moments, during intake and during dispatch.
  while (kills < opts.kills) {
    await Bun.sleep(50 + random() * (sending ? 400 : 250));
    // Mostly SIGKILL (a crash); every fifth a SIGTERM (a clean stop while pushes are in flight).
    const signal = kills % 5 === 4 ? "SIGTERM" : "SIGKILL";
    agent!.kill(signal);
    const code = await agent!.exited;
    if (signal === "SIGTERM" && code !== 0) throw new Error(`the agent exited ${code} on SIGTERM (see ${dir}/agent-${kills}.log)`);
    kills += 1;
    await startAgent();
    if (kills % 10 === 0) log(`chaos: ${kills} kills so far`);
  }
  await sender;
  log(`chaos: all ${events.length} events acknowledged; waiting for the outbox to drain…`);

  // Drain: faults stay on; wait until nothing is pending, waiting or in flight.
  const open = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    let n = 0;
    for (const m of text.matchAll(/kontobro_deliveries\{target="eco",status="(pending|in_flight|waiting)"\} (\d+)/g)) n += Number(m[2]);
    return n;
  };
  const deadline = Date.now() + 10 * 60_000;
  let leftInFlight = await open();
  while (leftInFlight > 0 && Date.now() < deadline) { await Bun.sleep(200); leftInFlight = await open(); }
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const needsAction = Number(/kontobro_deliveries\{target="eco",status="needs_action"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  agent!.kill("SIGTERM");
  await agent!.exited;

  const state = sandbox.sandbox.state;
  const booked = [...state.booked.values()].map((b: any) => b.invoice ?? b);
  const byRef = new Map<string, number>();
  for (const b of booked) byRef.set(b.references?.other, (byRef.get(b.references?.other) ?? 0) + 1);
  let missing = 0;
  let duplicates = 0;
  for (let i = 1; i <= opts.invoices; i++) {
    const n = byRef.get(`CHAOS-${i}`) ?? 0;
    if (n === 0) missing += 1;
    if (n > 1) duplicates += n - 1;
    const b = booked.find((x: any) => x.bookedInvoiceNumber === 100000 + i);
    if (b && b.references?.other !== `CHAOS-${i}`) duplicates += 1;
  }
  const customers = events.filter((e: any) => e.type === "customer.upserted").map((e: any) => e.data.number);
  const projects = events.filter((e: any) => e.type === "project.upserted").map((e: any) => e.data.number);
  const report: ChaosReport = {
    events: events.length, kills, faultsInjected: { ...sandbox.sandbox.stats().faults },
    missing, duplicates, orphanDrafts: state.drafts.size,
    missingCustomers: customers.filter((n) => !state.customers.has(n)).length,
    missingProjects: projects.filter((n) => !state.projects.has(n)).length,
    needsAction, leftInFlight, seconds: Math.round((performance.now() - started) / 100) / 10,
  };
  await sandbox.stop();
  log(`chaos: data and agent logs in ${dir}`);
  return report;
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

if (import.meta.main) {
  const report = await runChaos({ invoices: flag("invoices", 5000), kills: flag("kills", 50), seed: flag("seed", Date.now() % 100000) });
  console.log(`events ${report.events}, kills ${report.kills}, faults injected ${JSON.stringify(report.faultsInjected)}`);
  console.log(`missing ${report.missing}, duplicates ${report.duplicates}, orphan drafts ${report.orphanDrafts}, missing customers ${report.missingCustomers}, missing projects ${report.missingProjects}, needs action ${report.needsAction}, left in flight ${report.leftInFlight} (${report.seconds} s)`);
  const bad = report.missing + report.duplicates + report.orphanDrafts + report.missingCustomers + report.missingProjects + report.needsAction + report.leftInFlight;
  process.exit(bad === 0 ? 0 : 1);
}
