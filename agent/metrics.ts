// In-process metrics rendered as Prometheus text (exposition format 0.0.4), following Prometheus's
// naming conventions: counters end in _total and only ever grow (until a restart), gauges are states,
// units are base units (seconds, bytes). Counts that must be exact (deliveries by status) are read from
// the database at scrape time; rates and latencies live here. Every metric is listed in README.md.
import { readdirSync, readFileSync } from "node:fs";
import { VERSION } from "./version.ts";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

class Histogram {
  readonly counts = new Array(LATENCY_BUCKETS.length).fill(0);
  sum = 0;
  count = 0;
  observe(seconds: number) {
    this.sum += seconds;
    this.count += 1;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]!) this.counts[i] += 1;
  }
}

/** A gauge read from the database at scrape time. */
export interface Gauge {
  name: string;
  help: string;
  rows: { labels: Record<string, string>; value: number }[];
}

/** What a finished push did, for kontobro_pushes_total's outcome label. */
export interface PushOutcome {
  kind: "done" | "retry" | "needs_action" | "wait";
  problem?: { code: string };
}

/** The code of a request held back because the target asked to wait (connectors/http.ts TARGET_PAUSED). */
const HELD = "target_paused";

export class Metrics {
  /** Events stored by intake since start, whoever sent them (the API, the demo feed). */
  eventsReceived = 0;
  eventsDuplicate = 0;
  /** Event ids repeated with other content (answered 409, nothing stored). */
  eventsConflict = 0;
  /** Versions older (by occurredAt) than the stored one: acknowledged, never pushed. */
  eventsStale = 0;
  eventsRejected = 0;
  readonly pushes = new Map<string, number>();
  readonly pushLatency = new Map<string, Histogram>();
  /** More gauges read at scrape time (e.g. the database size, agent/retention.ts). */
  readonly gaugeSources: (() => Gauge[])[] = [];
  /** Each target's pause and circuit breaker, as its dispatcher last read or wrote them (agent/target-state.ts). */
  readonly targetStates = new Map<string, { pausedUntil: number | null; breaker: string; failures: number; nextProbeAt: number | null }>();
  readonly targetPauses = new Map<string, number>();

  setTargetState(target: string, s: { pausedUntil: number | null; breaker: string; failures: number; nextProbeAt: number | null }) {
    this.targetStates.set(target, { pausedUntil: s.pausedUntil, breaker: s.breaker, failures: s.failures, nextProbeAt: s.nextProbeAt });
  }

  countTargetPause(target: string) {
    this.targetPauses.set(target, (this.targetPauses.get(target) ?? 0) + 1);
  }

  /**
   * One finished push, counted once: by its outcome (a retry is outcome="retry", nowhere else). A push held
   * back because the target asked to wait sent nothing: outcome="held", and no latency.
   */
  observePush(target: string, seconds: number, outcome: PushOutcome | string) {
    const o: { kind: string; problem?: { code: string } } = typeof outcome === "string" ? { kind: outcome } : outcome;
    const label = o.kind === "retry" && o.problem?.code === HELD ? "held" : o.kind;
    const key = `${target}\u0000${label}`;
    this.pushes.set(key, (this.pushes.get(key) ?? 0) + 1);
    if (label === "held") return;
    let h = this.pushLatency.get(target);
    if (!h) this.pushLatency.set(target, (h = new Histogram()));
    h.observe(seconds);
  }

  /** Intake's results, whoever submitted the events (agent.ts wires this to IntakeWriter). */
  countStored(results: { status: "accepted" | "duplicate" | "stale" }[]) {
    for (const r of results) {
      if (r.status === "accepted") this.eventsReceived += 1;
      else if (r.status === "duplicate") this.eventsDuplicate += 1;
      else this.eventsStale += 1;
    }
  }

  render(deliveryCounts: { target: string; status: string; n: number }[], eventsStored: number, gauges: Gauge[] = []): string {
    const out: string[] = [...renderGauges([...gauges, ...this.gaugeSources.flatMap((source) => source())]), ...renderInfo()];
    const help = (name: string, type: string, text: string) => out.push(`# HELP ${name} ${text}`, `# TYPE ${name} ${type}`);
    processMetrics(help, out);
    help(
      "kontobro_events_stored_total",
      "counter",
      "Events ever stored in this database (retention keeps every event's row, so this only grows; a restore lowers it, as a counter reset).",
    );
    out.push(`kontobro_events_stored_total ${eventsStored}`);
    help("kontobro_events_received_total", "counter", "Events accepted by intake since start, from the API and the demo feed alike.");
    out.push(`kontobro_events_received_total ${this.eventsReceived}`);
    help("kontobro_events_duplicate_total", "counter", "Events acknowledged as repeats since start.");
    out.push(`kontobro_events_duplicate_total ${this.eventsDuplicate}`);
    help("kontobro_events_conflict_total", "counter", "Event ids repeated with other content since start (refused with 409).");
    out.push(`kontobro_events_conflict_total ${this.eventsConflict}`);
    help("kontobro_events_stale_total", "counter", "Events older (by occurredAt) than the stored version since start; never pushed.");
    out.push(`kontobro_events_stale_total ${this.eventsStale}`);
    help("kontobro_events_rejected_total", "counter", "Events rejected as invalid since start.");
    out.push(`kontobro_events_rejected_total ${this.eventsRejected}`);
    help("kontobro_deliveries", "gauge", "Deliveries by target and status.");
    for (const r of deliveryCounts) out.push(`kontobro_deliveries{target="${esc(r.target)}",status="${r.status}"} ${r.n}`);
    help(
      "kontobro_pushes_total",
      "counter",
      "Finished pushes since start by target and outcome: done, retry (failed, tried again later), needs_action, wait (a record it needs is not there yet), held (not sent: the target asked to wait).",
    );
    for (const [k, n] of this.pushes) {
      const [t, o] = k.split("\u0000");
      out.push(`kontobro_pushes_total{target="${esc(t!)}",outcome="${o}"} ${n}`);
    }
    this.renderTargetStates(help, out);
    help("kontobro_push_duration_seconds", "histogram", "Time of one push to a target.");
    for (const [t, h] of this.pushLatency) {
      LATENCY_BUCKETS.forEach((b, i) => out.push(`kontobro_push_duration_seconds_bucket{target="${esc(t)}",le="${b}"} ${h.counts[i]}`));
      out.push(`kontobro_push_duration_seconds_bucket{target="${esc(t)}",le="+Inf"} ${h.count}`);
      out.push(`kontobro_push_duration_seconds_sum{target="${esc(t)}"} ${h.sum}`);
      out.push(`kontobro_push_duration_seconds_count{target="${esc(t)}"} ${h.count}`);
    }
    return out.join("\n") + "\n";
  }

  /**
   * A hosted worker's own /metrics: what this process counted since its start, summed over every tenant it runs (no
   * tenant's target names: two tenants may give theirs the same name), and the process metrics. Each tenant's figures
   * are at /t/<slug>/metrics, read from the database (agent/tenant-metrics.ts).
   */
  renderWorker(gauges: Gauge[] = []): string {
    const out: string[] = [...renderGauges(gauges), ...renderInfo()];
    const help = (name: string, type: string, text: string) => out.push(`# HELP ${name} ${text}`, `# TYPE ${name} ${type}`);
    processMetrics(help, out);
    const counter = (name: string, text: string, value: number) => {
      help(name, "counter", text);
      out.push(`${name} ${value}`);
    };
    counter("kontobro_events_received_total", "Events accepted by this worker's intake since its start, all tenants.", this.eventsReceived);
    counter(
      "kontobro_events_duplicate_total",
      "Events acknowledged as repeats by this worker since its start, all tenants.",
      this.eventsDuplicate,
    );
    counter(
      "kontobro_events_conflict_total",
      "Event ids repeated with other content since start (refused with 409), all tenants.",
      this.eventsConflict,
    );
    counter(
      "kontobro_events_stale_total",
      "Events older (by occurredAt) than the stored version since start, all tenants.",
      this.eventsStale,
    );
    counter(
      "kontobro_events_rejected_total",
      "Events rejected as invalid by this worker since its start, all tenants.",
      this.eventsRejected,
    );
    const byOutcome = new Map<string, number>();
    for (const [k, n] of this.pushes) {
      const o = k.split("\u0000")[1]!;
      byOutcome.set(o, (byOutcome.get(o) ?? 0) + n);
    }
    help("kontobro_pushes_total", "counter", "Pushes this worker finished since its start by outcome, all tenants and targets.");
    for (const [o, n] of byOutcome) out.push(`kontobro_pushes_total{outcome="${o}"} ${n}`);
    const all = new Histogram();
    for (const h of this.pushLatency.values()) {
      h.counts.forEach((n, i) => (all.counts[i] += n));
      all.sum += h.sum;
      all.count += h.count;
    }
    help("kontobro_push_duration_seconds", "histogram", "Time of one push by this worker, all tenants and targets.");
    LATENCY_BUCKETS.forEach((b, i) => out.push(`kontobro_push_duration_seconds_bucket{le="${b}"} ${all.counts[i]}`));
    out.push(
      `kontobro_push_duration_seconds_bucket{le="+Inf"} ${all.count}`,
      `kontobro_push_duration_seconds_sum ${all.sum}`,
      `kontobro_push_duration_seconds_count ${all.count}`,
    );
    counter(
      "kontobro_target_pauses_total",
      "Pauses targets asked this worker for (429/503 with Retry-After) since its start, all tenants.",
      [...this.targetPauses.values()].reduce((a, b) => a + b, 0),
    );
    return out.join("\n") + "\n";
  }

  private renderTargetStates(help: Help, out: string[]) {
    const now = Date.now();
    help(
      "kontobro_target_paused_until_seconds",
      "gauge",
      "Paused by the target (429/503 Retry-After) until this Unix time; 0 when not paused.",
    );
    for (const [t, s] of this.targetStates) {
      const paused = s.pausedUntil !== null && s.pausedUntil > now;
      out.push(`kontobro_target_paused_until_seconds{target="${esc(t)}"} ${paused ? Math.ceil(s.pausedUntil! / 1000) : 0}`);
    }
    help("kontobro_target_breaker_state", "gauge", "Circuit breaker per target: 1 for its current state (closed, open, half_open).");
    for (const [t, s] of this.targetStates) {
      for (const state of ["closed", "open", "half_open"])
        out.push(`kontobro_target_breaker_state{target="${esc(t)}",state="${state}"} ${s.breaker === state ? 1 : 0}`);
    }
    help(
      "kontobro_target_consecutive_failures",
      "gauge",
      "5xx answers, timeouts and broken connections in a row per target (the breaker opens at [dispatch] breaker_failures).",
    );
    for (const [t, s] of this.targetStates) out.push(`kontobro_target_consecutive_failures{target="${esc(t)}"} ${s.failures}`);
    help("kontobro_target_pauses_total", "counter", "Pauses a target asked for (429/503 with Retry-After) since start.");
    for (const [t, n] of this.targetPauses) out.push(`kontobro_target_pauses_total{target="${esc(t)}"} ${n}`);
  }
}

type Help = (name: string, type: string, text: string) => void;

/** Gauges read at scrape time, each family with its HELP and TYPE. */
export function renderGauges(gauges: Gauge[]): string[] {
  const out: string[] = [];
  for (const g of gauges) {
    out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
    for (const r of g.rows) {
      const labels = Object.entries(r.labels).map(([k, v]) => `${k}="${esc(v)}"`);
      out.push(`${g.name}${labels.length > 0 ? `{${labels.join(",")}}` : ""} ${r.value}`);
    }
  }
  return out;
}

/** kontobro_build_info: which kontobro and which runtime answered. */
export function renderInfo(): string[] {
  return [
    "# HELP kontobro_build_info Always 1; the labels say which kontobro and which runtime.",
    "# TYPE kontobro_build_info gauge",
    `kontobro_build_info{version="${esc(VERSION)}",runtime="bun",runtime_version="${esc(Bun.version)}"} 1`,
  ];
}

/** The standard process metrics (as Prometheus's client libraries name them); Linux adds the /proc ones. */
function processMetrics(help: Help, out: string[]) {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  help("process_cpu_user_seconds_total", "counter", "User CPU time spent in seconds.");
  out.push(`process_cpu_user_seconds_total ${cpu.user / 1e6}`);
  help("process_cpu_system_seconds_total", "counter", "System CPU time spent in seconds.");
  out.push(`process_cpu_system_seconds_total ${cpu.system / 1e6}`);
  help("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  out.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
  help("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out.push(`process_resident_memory_bytes ${mem.rss}`);
  help("process_heap_bytes", "gauge", "JavaScript heap in use, in bytes.");
  out.push(`process_heap_bytes ${mem.heapUsed}`);
  help("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.");
  out.push(`process_start_time_seconds ${PROCESS_START}`);
  if (process.platform !== "linux") return;
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    help("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    out.push(`process_virtual_memory_bytes ${Number(fields[20])}`);
    help("process_open_fds", "gauge", "Number of open file descriptors.");
    out.push(`process_open_fds ${readdirSync("/proc/self/fd").length}`);
    const max = /^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    if (max) {
      help("process_max_fds", "gauge", "Maximum number of open file descriptors.");
      out.push(`process_max_fds ${max[1]}`);
    }
  } catch {
    // /proc not readable (a hardened container): the portable metrics above still stand.
  }
}

const PROCESS_START = Math.round(Date.now() / 1000 - process.uptime());

const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
