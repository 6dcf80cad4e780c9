// Calls per record at a target: the agent (its real intake, outbox and dispatcher, in this process) pushes
// records of each kind to a connector's sandbox over loopback, and the sandbox counts what it answered
// (GET /__sandbox/requests, by method and path family, in the target's own unit of calls). The first record
// of each kind is counted apart (set-up lists read, a token fetched); the next ones give the steady state.
// test/calls-per-record.test.ts holds every connector to the minimum its calls adapter declares (and its
// README states); scripts/bench.ts prints the figures and the records a day each target's budget allows.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { SAMPLE_PDF_BASE64, sampleRound } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { connectorKinds } from "../connectors/registry.ts";
import type { CallCount, CallsAdapter, CountedRecord, DailyBudget, RequestCountsBody } from "../connectors/sandbox.ts";
import { COUNTED_RECORDS } from "../connectors/sandbox.ts";

export interface RecordCalls {
  record: CountedRecord;
  /** The first record of its kind, by family: what a cold start costs once (set-up lists, tokens). */
  first: RequestCountsBody;
  /** How many records the steady state is measured over. */
  records: number;
  /** Per record after the first. */
  perRecord: CallCount;
  /** Per record after the first, by method and path family. */
  families: Record<string, CallCount>;
}

export interface TargetCalls {
  kind: string;
  title: string;
  adapter: CallsAdapter;
  results: RecordCalls[];
  /** Records the connector takes whose calls its adapter does not declare (so they were not counted). */
  undeclared: CountedRecord[];
}

const TOKEN = "calls-per-record-token-0123";

/** The registry's kinds whose sandbox declares its calls per record. */
export function countedKinds(): string[] {
  return Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.startSandbox && connectorKinds[k]!.calls);
}

/** The kinds of record a target is counted for, in the order they depend on each other. */
export function countedRecords(adapter: CallsAdapter): CountedRecord[] {
  return COUNTED_RECORDS.filter((r) => adapter.minimum[r]);
}

/**
 * The PSA events of record `n` of a kind: the demo's sample round (customer 10000+n, project 5000+n,
 * invoice 20000+n), a product, and credit note `creditBase`+n crediting invoice 20000+n.
 */
function events(record: CountedRecord, n: number, o: { creditBase: number; withProjects: boolean }): unknown[] {
  const [customer, project, invoice] = sampleRound(n) as any[];
  const inv = o.withProjects ? invoice : { ...invoice, data: { ...invoice.data, projectNumber: undefined } };
  switch (record) {
    case "customer":
      return [customer];
    case "project":
      return [project];
    case "product":
      return [
        {
          id: `calls-product-${n}`,
          type: "product.upserted",
          data: { code: `KB-${n}`, name: `Konsulenttime ${n}`, price: 145000, cost: 90000 },
        },
      ];
    case "invoice":
      return [inv];
    case "credit_note": {
      const number = o.creditBase + n;
      return [
        {
          id: `calls-credit-${number}`,
          type: "invoice.credited",
          data: {
            ...inv.data,
            number,
            psaId: `DEMO-CN-${number}`,
            creditedInvoiceNumber: inv.data.number,
            paymentId: undefined,
            lines: [{ text: "Kreditering reise", quantity: 1, unitPrice: 238050, kind: "expenses" }],
            pdf: { filename: `kreditnota-${number}.pdf`, contentBase64: SAMPLE_PDF_BASE64 },
          },
        },
      ];
    }
  }
}

/** Counts calls per record for one connector: its sandbox and an agent in this process, both stopped after. */
export async function countCalls(kind: string, o: { records: number }): Promise<TargetCalls> {
  const factory = connectorKinds[kind]!;
  const adapter = await factory.calls!();
  const sandbox = await factory.startSandbox!({ port: 0 });
  const dataDir = mkdtempSync(join(tmpdir(), "kontobro-calls-"));
  // Nothing pulled on a schedule: only pushes reach the sandbox while it counts.
  const noPulls = Object.fromEntries(
    Object.keys(factory.pulls ?? {}).map((s) => [s, { cron: "0 0 1 1 *", timezone: "UTC", enabled: false }]),
  );
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: dataDir },
      http: { port: 0, api_token: TOKEN },
      dispatch: { retry_base_ms: 20, retry_max_ms: 500, idle_poll_ms: 20 },
      targets: [{ ...sandbox.demoTarget, ...adapter.target, requests_per_second: 0, pulls: noPulls }],
    },
    {},
  );
  const agent = await startAgent(config, targets, silentLogger);
  const connector = [...agent.connectors.values()][0]!;
  const takes = (r: CountedRecord) => connector.supports(r === "credit_note" ? "invoice" : r);
  const undeclared = COUNTED_RECORDS.filter((r) => takes(r) && !adapter.minimum[r]);
  const records = countedRecords(adapter);
  const o2 = { creditBase: 20000 + o.records + 1, withProjects: records.includes("project") };
  const results: RecordCalls[] = [];
  try {
    await sandboxRequests(sandbox.url, "DELETE");
    for (const record of records) {
      await pushAll(agent.url, events(record, 1, o2));
      const first = await sandboxRequests(sandbox.url, "DELETE");
      const batch = Array.from({ length: o.records }, (_, i) => events(record, i + 2, o2)).flat();
      await pushAll(agent.url, batch);
      const steady = await sandboxRequests(sandbox.url, "DELETE");
      const per = (c: CallCount) => ({ requests: c.requests / o.records, calls: c.calls / o.records });
      results.push({
        record,
        first,
        records: o.records,
        perRecord: per(steady),
        families: Object.fromEntries(Object.entries(steady.families).map(([f, c]) => [f, per(c)])),
      });
    }
  } finally {
    await agent.stop();
    await sandbox.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { kind, title: factory.title, adapter, results, undeclared };
}

/** The sandbox's counts; with DELETE, read and started again from zero. */
async function sandboxRequests(url: string, method: "GET" | "DELETE"): Promise<RequestCountsBody> {
  const body = (await (await fetch(`${url}/__sandbox/requests`)).json()) as RequestCountsBody;
  if (method === "DELETE") await fetch(`${url}/__sandbox/requests`, { method: "DELETE" });
  return body;
}

/** Posts the events to the agent and waits until every delivery of them is done; a refusal stops the count. */
async function pushAll(agentUrl: string, evs: unknown[]): Promise<void> {
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const res = await fetch(`${agentUrl}/api/v1/events`, { method: "POST", body: JSON.stringify(evs), headers });
  if (!res.ok) throw new Error(`the agent refused the events (${res.status}): ${await res.text()}`);
  const ids = new Set(evs.map((e) => (e as { id: string }).id));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const list = (await (await fetch(`${agentUrl}/api/v1/deliveries?limit=1000`, { headers })).json()) as { deliveries: any[] };
    const mine = list.deliveries.filter((d) => ids.has(d.eventId));
    const stuck = mine.find((d) => d.status === "needs_action");
    if (stuck) throw new Error(`${stuck.entity} ${stuck.key} needs action: ${stuck.errorCode}: ${stuck.errorMessage}`);
    if (mine.length >= ids.size && mine.every((d) => d.status === "done")) return;
    if (Date.now() > deadline)
      throw new Error(`not delivered within 60 s: ${mine.map((d) => `${d.entity} ${d.key} ${d.status} ${d.errorCode ?? ""}`).join(", ")}`);
    await Bun.sleep(20);
  }
}

/**
 * Records a day the budget allows at `perRecord` calls each; a budget counted per endpoint is bounded by the
 * endpoint (path, any method) a record calls most. Infinity when a record makes no counted call.
 */
export function recordsPerDay(budget: DailyBudget, r: RecordCalls): number {
  if (!budget.perEndpoint) return r.perRecord.calls > 0 ? budget.calls / r.perRecord.calls : Infinity;
  const byEndpoint = new Map<string, number>();
  for (const [family, c] of Object.entries(r.families)) {
    const path = family.slice(family.indexOf(" ") + 1).split("?")[0]!;
    byEndpoint.set(path, (byEndpoint.get(path) ?? 0) + c.calls);
  }
  const busiest = Math.max(0, ...byEndpoint.values());
  return busiest > 0 ? budget.calls / busiest : Infinity;
}
