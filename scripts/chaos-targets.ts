// The chaos run's targets: one small adapter per sandbox, so scripts/chaos.ts stays target-neutral.
// An adapter starts its sandbox behind a request log (when each request reached it, when it was
// answered, its status and Retry-After), sets the sandbox's fault rules, writes the [[targets]] table,
// and reads the final state back (booked invoices and credit notes by PSA id, drafts, customers, projects).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { markerPsaId } from "../connectors/unimicro/map.ts";
import { createUniMicroSandbox, DEMO_CLIENT_ID, DEMO_COMPANY } from "../connectors/unimicro/sandbox/index.ts";
import { FaultRulesBody } from "../connectors/unimicro/sandbox/faults.ts";
import { INVOICE_STATUS } from "../connectors/unimicro/sandbox/store.ts";
import type { BookedDoc, LoggedRequest, TargetSnapshot } from "./chaos-verify.ts";

export const CHAOS_TARGETS = ["economic", "unimicro"] as const;
export type ChaosTargetKind = (typeof CHAOS_TARGETS)[number];

/** The target's name in kontobro.toml (and so in /metrics). */
export const TARGET_NAME = "chaos";

export interface FaultPlan {
  /** The target's request timeout (the agent's), ms. */
  timeoutMs: number;
  /** Latency of a slow invoice-create answer, above timeoutMs. */
  slowCreateMs: number;
  /** Probability of a slow invoice-create answer. */
  slowCreateProbability: number;
}

export interface ChaosTarget {
  kind: ChaosTargetKind;
  /** The [[targets]] table for kontobro.toml. */
  toml: string;
  /** Every request the sandbox answered, in order of answer. */
  log: LoggedRequest[];
  /** Background faults: 503/429 with Retry-After 0, 500s, dropped answers after commit, latency, slow creates. */
  background(): void;
  /** Every request answered 429 with this Retry-After, until background() again. */
  throttle(retryAfterSeconds: number): void;
  faultsInjected(): Record<string, number>;
  snapshot(): TargetSnapshot;
  stop(): Promise<void>;
}

/** Bun.serve around a sandbox's fetch, logging every request on one monotonic clock. */
function serveLogged(fetch: (req: Request) => Response | Promise<Response>, log: LoggedRequest[]) {
  return Bun.serve({
    port: 0, hostname: "127.0.0.1", idleTimeout: 150, // latency faults must not become connection resets
    async fetch(req) {
      const startedAt = performance.now();
      const res = await fetch(req);
      const ra = res.headers.get("retry-after");
      const location = res.headers.get("location");
      const url = new URL(req.url);
      log.push({
        method: req.method, path: url.pathname + url.search, startedAt, answeredAt: performance.now(), answeredEpoch: Date.now(), status: res.status,
        ...(ra !== null && /^\d+$/.test(ra) ? { retryAfterMs: Number(ra) * 1000 } : {}), ...(location ? { location } : {}),
      });
      return res;
    },
  });
}

const minor = (decimal: unknown) => Math.round(Number(decimal) * 100);

export async function startEconomicTarget(_dir: string, random: () => number, plan: FaultPlan): Promise<ChaosTarget> {
  const log: LoggedRequest[] = [];
  let server: ReturnType<typeof Bun.serve> | undefined;
  // Pooled keep-alive connections would let a client silently retry a dropped request (connectors/economic/sandbox/faults.ts).
  const sandbox = createEconomicSandbox({ random, onDropArmed: () => server?.closeIdleConnections() });
  server = serveLogged((req) => sandbox.app.fetch(req), log);
  const url = `http://127.0.0.1:${server.port}`;
  const running = server;
  return {
    kind: "economic", log,
    toml: `[[targets]]\nname = "${TARGET_NAME}"\nkind = "economic"\nrest_url = "${url}"\nprojects_url = "${url}/projectsapi/v1.1.0"\n` +
      `app_secret_token = "demo-app-secret"\nagreement_grant_token = "demo-agreement-grant"\nrequests_per_second = 0\nrequest_timeout_ms = ${plan.timeoutMs}\n`,
    background() {
      sandbox.clearFaults();
      for (const rule of [
        { kind: "503", probability: 0.02, retryAfterSeconds: 0 },
        { kind: "500", probability: 0.01 },
        { kind: "429", probability: 0.01, retryAfterSeconds: 0 },
        { kind: "drop_after_commit", method: "POST", probability: 0.03 },
        { kind: "drop_after_commit", method: "PUT", probability: 0.03 },
        { kind: "latency", probability: 0.1, latencyMs: 20 },
        { kind: "latency", method: "POST", path: "^/invoices/drafts$", probability: plan.slowCreateProbability, latencyMs: plan.slowCreateMs },
      ] as const) sandbox.addFault(rule);
    },
    throttle(retryAfterSeconds) {
      sandbox.clearFaults();
      sandbox.addFault({ kind: "429", probability: 1, retryAfterSeconds });
    },
    faultsInjected: () => ({ ...sandbox.stats().faults }),
    snapshot() {
      const s = sandbox.state;
      const booked: BookedDoc[] = [...s.booked.values()].map(({ invoice: b }) => ({
        psaId: b.references?.other ?? null, number: String(b.bookedInvoiceNumber), customer: String(b.customer?.customerNumber),
        lines: [...(b.lines ?? [])].sort((x, y) => x.lineNumber - y.lineNumber).map((l) => ({ text: l.description, quantity: l.quantity, unitPrice: minor(l.unitNetPrice) })),
        total: minor(b.netAmount),
      }));
      return {
        booked, drafts: [...s.drafts.values()].map((d) => ({ psaId: d.invoice.references?.other ?? null, createdAt: Date.parse(d.invoice.lastUpdated) })),
        customers: [...s.customers.keys()].map(String), projects: [...s.projects.keys()].map(String),
      };
    },
    stop: () => running.stop(true),
  };
}

export async function startUniMicroTarget(dir: string, _random: () => number, plan: FaultPlan): Promise<ChaosTarget> {
  const log: LoggedRequest[] = [];
  const sandbox = createUniMicroSandbox({});
  const server = serveLogged((req) => sandbox.fetch(req), log);
  const url = `http://127.0.0.1:${server.port}`;
  const keyPath = join(dir, "unimicro-client-key.pem");
  writeFileSync(keyPath, sandbox.demo!.privateKeyPem, { mode: 0o600 });
  const setRules = (rules: unknown[]) => {
    sandbox.faults.clear();
    sandbox.faults.add(FaultRulesBody.parse(rules));
    server.closeIdleConnections(); // a drop must not hit a pooled connection (see connectors/unimicro/sandbox/faults.ts)
  };
  return {
    kind: "unimicro", log,
    toml: `[[targets]]\nname = "${TARGET_NAME}"\nkind = "unimicro"\nplatform = "custom"\nbase_url = "${url}"\nidentity_url = "${url}/connect/token"\n` +
      `client_id = "${DEMO_CLIENT_ID}"\nprivate_key = "${keyPath}"\ncompany_key = "${DEMO_COMPANY.Key}"\n` +
      `accounts = { hours = 3000, expenses = 3400, products = 3000 }\nvat_codes = { hours = "3", expenses = "3", products = "3" }\n` +
      `product_numbers = { hours = "1", expenses = "2", products = "3" }\nrequests_per_second = 0\nrequest_timeout_ms = ${plan.timeoutMs}\n`,
    background: () => setRules([
      { fault: "503", probability: 0.02, retryAfterSeconds: 0 },
      { fault: "500", probability: 0.01 },
      { fault: "429", probability: 0.01, retryAfterSeconds: 0 },
      { fault: "drop_after_commit", method: "POST", probability: 0.03 },
      { fault: "drop_after_commit", method: "PUT", probability: 0.03 },
      { fault: "latency", probability: 0.1, latencyMs: 20 },
      { fault: "latency", method: "POST", path: "^/api/biz/invoices$", probability: plan.slowCreateProbability, latencyMs: plan.slowCreateMs },
    ]),
    throttle: (retryAfterSeconds) => setRules([{ fault: "429", probability: 1, retryAfterSeconds }]),
    faultsInjected() {
      const counts: Record<string, number> = {};
      for (const r of sandbox.state().requests) for (const f of r.fault?.split(",") ?? []) counts[f] = (counts[f] ?? 0) + 1;
      return counts;
    },
    snapshot() {
      const rows = sandbox.store().rows;
      const byId = new Map(rows.invoices!.map((r) => [r.ID, r]));
      const customerNumber = new Map(rows.customers!.map((c) => [c.ID, String(c.CustomerNumber)]));
      const booked: BookedDoc[] = rows.invoices!.filter((r) => r.StatusCode !== INVOICE_STATUS.draft).map((r) => ({
        psaId: markerPsaId(r.InternalNote), number: String(r.InvoiceNumber), customer: customerNumber.get(r.CustomerID) ?? `(ID ${r.CustomerID})`,
        lines: [...(r.Items ?? [])].sort((x, y) => x.SortIndex - y.SortIndex).map((it) => ({ text: it.ItemText, quantity: it.NumberOfItems, unitPrice: minor(it.PriceExVat) })),
        total: minor(r.TaxExclusiveAmount),
        ...(r.InvoiceReferenceID ? { creditedInvoiceNumber: String(byId.get(r.InvoiceReferenceID)?.InvoiceNumber) } : {}),
      }));
      return {
        booked, drafts: rows.invoices!.filter((r) => r.StatusCode === INVOICE_STATUS.draft).map((r) => ({ psaId: markerPsaId(r.InternalNote), createdAt: Date.parse(r.CreatedAt) })),
        customers: rows.customers!.map((c) => String(c.CustomerNumber)), projects: rows.projects!.map((p) => String(p.ProjectNumber)),
      };
    },
    stop: async () => { server.stop(true); },
  };
}

export function startChaosTarget(kind: ChaosTargetKind, dir: string, random: () => number, plan: FaultPlan): Promise<ChaosTarget> {
  return kind === "economic" ? startEconomicTarget(dir, random, plan) : startUniMicroTarget(dir, random, plan);
}
