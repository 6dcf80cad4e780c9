// The sandboxes' side of the contract. Every connector ships a faithful test double of its target in
// connectors/<kind>/sandbox/; its factory starts it (ConnectorFactory.startSandbox) and hands the scripts
// their adapters: the chaos run's (scripts/chaos.ts), the benchmark's (scripts/bench.ts) and the calls-per-record
// count's (scripts/calls-per-record.ts). The agent imports a sandbox only when asked for one (`kontobro sandbox`,
// `kontobro demo`), so a run never loads it.
import type { Hono } from "hono";

/** A connector's sandbox running on loopback. */
export interface RunningSandbox {
  /** Its base URL, e.g. http://127.0.0.1:9100 (its state at /__sandbox/state). */
  url: string;
  /** The [[targets]] table that points an agent at this sandbox, with its demo credentials and set-up. */
  demoTarget: Record<string, unknown>;
  stop(): Promise<void>;
}

// ── the chaos run ─────────────────────────────────────────────────────────────────────────────────

/** One request as the sandbox saw it (ms on one monotonic clock). */
export interface LoggedRequest {
  method: string;
  path: string;
  startedAt: number;
  answeredAt: number;
  /** answeredAt on the wall clock (epoch ms), to compare with the sandbox's own timestamps. */
  answeredEpoch: number;
  status: number;
  /** The Retry-After the answer carried, in ms. */
  retryAfterMs?: number;
  /** The Location of a created resource, where the answer names one. */
  location?: string;
  /** The client had closed its connection before the answer was ready (its process killed, or gone): nobody heard it. */
  clientGone?: boolean;
}

/** A booked invoice or credit note as read back from a sandbox, in minor units, customer's point of view. */
export interface BookedDoc {
  /** The PSA id the target carries (a reference field or a marker in a note), or null. */
  psaId: string | null;
  /** The PSA's invoice number as the target carries it; null where the target numbers the document itself (a draft a person sends later). */
  number: string | null;
  customer: string;
  lines: { text: string; quantity: number; unitPrice: number }[];
  /** What the document changes in what the customer owes: negative for a credit note. */
  total: number;
  /** When the target made it (epoch ms), where it says: tells which create made it. */
  createdAt?: number;
  /** The invoice a credit note is linked to, where the target links them. */
  creditedInvoiceNumber?: string;
}

/** The final state of a target, read from its sandbox. */
export interface TargetSnapshot {
  booked: BookedDoc[];
  /** Drafts left at the target: the PSA id each carries (null: none; in a chaos run every draft is ours), and when it was made (epoch ms). */
  drafts: { psaId: string | null; createdAt: number }[];
  customers: string[];
  projects: string[];
}

export interface FaultPlan {
  /** The target's request timeout (the agent's), ms. */
  timeoutMs: number;
  /** Latency of a slow invoice-create answer, above timeoutMs. */
  slowCreateMs: number;
  /** Probability of a slow invoice-create answer. */
  slowCreateProbability: number;
  /**
   * The target's late_answer_wait_ms (the agent's), above slowCreateMs: a lease the agent lost to a kill waits this long,
   * so the run stays short while no write it injects lands later.
   */
  lateAnswerWaitMs: number;
}

/** A fault rule of the chaos run, as the sandboxes' fault bodies spell it (e-conomic's names `fault` `kind`). */
export interface ChaosFaultRule {
  fault: "503" | "500" | "429" | "drop_after_commit" | "latency";
  method?: "POST" | "PUT";
  /** A regular expression the request's path must match. */
  path?: string;
  probability: number;
  retryAfterSeconds?: number;
  latencyMs?: number;
}

/**
 * The chaos run's background faults, the same at every target: 503s and 429s with Retry-After 0, 500s, answers dropped
 * after a POST or PUT was carried out (only on paths matching `writesPath`, where given), some latency, and slow answers
 * (plan.slowCreateMs, past the agent's request timeout) to the POSTs whose paths match `slowCreates`: the invoice's
 * create and, where there is one, its posting. Pure.
 */
export function chaosBackgroundFaults(plan: FaultPlan, slowCreates: string[], writesPath?: string): ChaosFaultRule[] {
  const onWrites = writesPath === undefined ? {} : { path: writesPath };
  return [
    { fault: "503", probability: 0.02, retryAfterSeconds: 0 },
    { fault: "500", probability: 0.01 },
    { fault: "429", probability: 0.01, retryAfterSeconds: 0 },
    { fault: "drop_after_commit", method: "POST", ...onWrites, probability: 0.03 },
    { fault: "drop_after_commit", method: "PUT", ...onWrites, probability: 0.03 },
    { fault: "latency", probability: 0.1, latencyMs: 20 },
    ...slowCreates.map(
      (path): ChaosFaultRule => ({
        fault: "latency",
        method: "POST",
        path,
        probability: plan.slowCreateProbability,
        latencyMs: plan.slowCreateMs,
      }),
    ),
  ];
}

/** A sandbox started for the chaos run, behind a request log. */
export interface ChaosTarget {
  /** The [[targets]] table for kontobro.toml. */
  toml: string;
  /** Every request the sandbox answered, in order of answer. */
  log: LoggedRequest[];
  /** Background faults: 503/429 with Retry-After 0, 500s, dropped answers after commit, latency, slow creates. */
  background(): void;
  /** Every request answered 429 with this Retry-After, until background() again. */
  throttle(retryAfterSeconds: number): void;
  faultsInjected(): Record<string, number>;
  /** What the sandbox itself noticed that the run should report (e.g. a quota overrun), beyond the verdict. */
  findings?(): string[];
  snapshot(): TargetSnapshot;
  stop(): Promise<void>;
}

/**
 * Starts the sandbox behind a request log (serveLogged), sets its fault rules on demand, writes the
 * [[targets]] table (named `name`, files it needs in `dir`), and reads the final state back.
 */
export type ChaosAdapter = (o: { name: string; dir: string; random: () => number; plan: FaultPlan }) => Promise<ChaosTarget>;

/** The wait an answer asks for, in ms, from its Retry-After header (seconds). */
export function retryAfterHeaderMs(res: Response): number | undefined {
  const ra = res.headers.get("retry-after");
  return ra !== null && /^\d+$/.test(ra) ? Number(ra) * 1000 : undefined;
}

/**
 * Bun.serve around a sandbox's fetch on loopback, logging every request on one monotonic clock. `retryAfterMs`
 * reads the wait an answer asks for, for a target that says it elsewhere than in the Retry-After header.
 */
export function serveLogged(
  fetch: (req: Request) => Response | Promise<Response>,
  log: LoggedRequest[],
  retryAfterMs: (res: Response) => number | undefined | Promise<number | undefined> = retryAfterHeaderMs,
) {
  return Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 150, // latency faults must not become connection resets
    async fetch(req) {
      const startedAt = performance.now();
      const res = await fetch(req);
      const wait = await retryAfterMs(res);
      const location = res.headers.get("location");
      const url = new URL(req.url);
      log.push({
        method: req.method,
        path: url.pathname + url.search,
        startedAt,
        answeredAt: performance.now(),
        answeredEpoch: Date.now(),
        status: res.status,
        ...(wait !== undefined ? { retryAfterMs: wait } : {}),
        ...(location ? { location } : {}),
        ...(req.signal.aborted ? { clientGone: true } : {}),
      });
      return res;
    },
  });
}

/** A decimal amount as read from a target, in minor units. */
export const minor = (decimal: unknown) => Math.round(Number(decimal) * 100);

// ── the benchmark ─────────────────────────────────────────────────────────────────────────────────

/** What the benchmark needs of a sandbox it runs in a process of its own (`kontobro sandbox KIND`). */
export interface BenchAdapter {
  /** The [[targets]] table for a sandbox at `url`. */
  target(url: string): Record<string, unknown>;
  /** The same-run baseline: one customer created at the sandbox by a raw HTTP request, without the agent. */
  rawCustomer: { title: string; request(url: string, i: number): Promise<Response> };
  /** How many customers the sandbox holds. */
  customers(url: string): Promise<number>;
}

// ── calls per record ──────────────────────────────────────────────────────────────────────────────

/** The records whose calls at the target are counted: the entities, with credit notes apart from invoices. */
export const COUNTED_RECORDS = ["customer", "product", "project", "invoice", "credit_note"] as const;
export type CountedRecord = (typeof COUNTED_RECORDS)[number];

/** HTTP requests, and the calls the target counts against its budget for them (a request may cost several). */
export interface CallCount {
  requests: number;
  calls: number;
}

/** What a sandbox's GET /__sandbox/requests answers: every request since the last DELETE, by method and path family. */
export interface RequestCountsBody extends CallCount {
  families: Record<string, CallCount>;
}

/** A path segment that names one record (a number, a GUID): counted as `{id}`, so a family is a kind of call. */
const RECORD_SEGMENT = /^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/**
 * "METHOD /path/{id}" for a request: record ids replaced, the query left out except an `action` (a call of
 * its own on targets that name transitions that way, e.g. `?action=invoice`).
 */
export function requestFamily(method: string, pathAndQuery: string): string {
  const [path = "", query = ""] = pathAndQuery.split("?", 2);
  const family = path
    .split("/")
    .map((s) => (RECORD_SEGMENT.test(s) ? "{id}" : s))
    .join("/");
  const action = new URLSearchParams(query).get("action");
  return `${method.toUpperCase()} ${family}${action ? `?action=${action}` : ""}`;
}

/** Counts a sandbox's requests by family, with what each cost in the target's own unit of calls. */
export class RequestCounts {
  private families = new Map<string, CallCount>();

  /** One request; `calls` is what the target charges for it (1 unless it counts otherwise). */
  add(method: string, pathAndQuery: string, calls = 1): void {
    const key = requestFamily(method, pathAndQuery);
    const f = this.families.get(key) ?? { requests: 0, calls: 0 };
    f.requests++;
    f.calls += calls;
    this.families.set(key, f);
  }

  read(): RequestCountsBody {
    const families = Object.fromEntries([...this.families].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, { ...v }]));
    const sum = (pick: (c: CallCount) => number) => [...this.families.values()].reduce((n, c) => n + pick(c), 0);
    return { requests: sum((c) => c.requests), calls: sum((c) => c.calls), families };
  }

  clear(): void {
    this.families.clear();
  }
}

/** GET /__sandbox/requests (the counts) and DELETE /__sandbox/requests (start again from zero) on a sandbox's control app. */
export function registerRequestCounts(app: Hono<any, any, any>, counts: RequestCounts): void {
  app.get("/__sandbox/requests", (c) => c.json(counts.read()));
  app.delete("/__sandbox/requests", (c) => {
    counts.clear();
    return c.json({ cleared: true });
  });
}

/** A target's daily call budget, as its API notes state it. */
export interface DailyBudget {
  /** Calls a day. */
  calls: number;
  /** Whose budget it is, in words: "per agreement", "per user", "per client and endpoint". */
  scope: string;
  /** Counted per endpoint: records a day are bounded by the endpoint a record calls most. */
  perEndpoint?: boolean;
  /** Where the figure comes from (the notes' section and its source). */
  source: string;
  /** False where no primary source confirms the figure (or it is derived, e.g. from a per-minute limit). */
  verified: boolean;
}

/** What the calls-per-record count (its test and the benchmark) needs of a connector's sandbox. */
export interface CallsAdapter {
  /** Changes to the sandbox's demo [[targets]] table for the count (e.g. credit notes taken as drafts). */
  target?: Record<string, unknown>;
  /**
   * The fewest calls per record the target's API allows on the normal path (no faults, nothing uncertain),
   * once the set-up lists are read: what the connector makes, and what its README states.
   */
  minimum: Partial<Record<CountedRecord, CallCount>>;
  /** The daily budget the target counts calls against; null with `noBudget` saying why. */
  budget: DailyBudget | null;
  noBudget?: string;
}
