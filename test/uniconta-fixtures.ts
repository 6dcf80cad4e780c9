// Shared set-up for the Uniconta tests: the sandbox on loopback and a connector pointed at it.
import { silentLogger } from "../agent/log.ts";
import { CreditNote, Customer, Invoice, Project } from "../agent/model.ts";
import type { PeriodCounters, PushContext } from "../connectors/contract.ts";
import type { UnicontaConnector } from "../connectors/uniconta/connector.ts";
import { uniconta } from "../connectors/uniconta/index.ts";
import { DEMO, startUnicontaSandbox, type UnicontaSandboxOptions } from "../connectors/uniconta/sandbox/index.ts";

export const COMPANY = DEMO.companyId;

export const BASE_CONFIG = {
  company_id: DEMO.companyId,
  username: DEMO.user,
  password: DEMO.password,
  posting: "gateway",
  accounts: { hours: "1000", expenses: "1020", products: "1010" },
  vat_codes: { hours: "U25", expenses: "U25", products: "U25" },
  categories: { hours: "TIMER", expenses: "UDLÆG", products: "VARER" },
  credit_note_payment_terms: "NK0",
  requests_per_second: 0,
  request_timeout_ms: 5000,
};

export interface Env {
  url: string;
  connector: UnicontaConnector;
  sandbox: ReturnType<typeof startUnicontaSandbox>["sandbox"];
  control(path: string, body?: unknown, method?: string): Promise<any>;
  state(): Promise<any>;
  /** Rows of an entity type in the demo company, as the sandbox holds them. */
  rows(type: string): Promise<any[]>;
  /** Requests the sandbox answered (method, decoded path, status, calls charged). */
  requests(): Promise<any[]>;
  faults(rules: unknown): Promise<void>;
  /** A second connector on the same sandbox (another process, or the same one after a restart). */
  connectorWith(config: Record<string, unknown>, counters?: PeriodCounters): UnicontaConnector;
  stop(): Promise<void>;
}

export function startEnv(o: { sandbox?: UnicontaSandboxOptions; config?: Record<string, unknown>; counters?: PeriodCounters } = {}): Env {
  const srv = startUnicontaSandbox(o.sandbox);
  const make = (over: Record<string, unknown>, counters?: PeriodCounters) => {
    const cfg = uniconta.configSchema.parse({ api_url: srv.url, gateway_url: `${srv.url}/gateway`, ...BASE_CONFIG, ...over });
    return uniconta.create("uc-test", cfg, { log: silentLogger, ...(counters ? { counters } : {}) }) as UnicontaConnector;
  };
  const control = async (path: string, body?: unknown, method = body === undefined ? "GET" : "POST") => {
    const res = await fetch(`${srv.url}/__sandbox/${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
    const out = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`sandbox ${path}: ${res.status} ${JSON.stringify(out)}`);
    return out;
  };
  const state = () => control("state");
  return {
    url: srv.url,
    sandbox: srv.sandbox,
    connector: make(o.config ?? {}, o.counters),
    control,
    state,
    rows: async (type) => (await state()).companies[COMPANY].rows[type] ?? [],
    requests: async () => (await state()).requests,
    faults: async (rules) => {
      await control("faults", rules);
    },
    connectorWith: (config, counters) => make({ ...(o.config ?? {}), ...config }, counters),
    stop: () => srv.stop(),
  };
}

let seq = 0;
export const ctx = (over: Partial<PushContext> = {}): PushContext => ({
  link: null,
  uncertain: false,
  idempotencyKey: `uc-test-${++seq}`,
  ...over,
});

export const customerData = (over: Record<string, unknown> = {}) => ({
  number: "10042",
  name: "Fjordkraft Consulting ApS",
  orgNumber: "12 34 56 78",
  vatNumber: "DK12345678",
  email: "faktura@fjordkraft.dk",
  website: "https://fjordkraft.dk",
  phone: "+45 33 00 00 00",
  fax: "+45 33 00 00 01",
  group: "ERHVERV",
  currency: "DKK",
  addresses: [{ kind: "postal", street: "Vesterbrogade 1\n2. sal", zip: "1620", city: "København V", country: "DK" }],
  contacts: [{ name: "Kari Nordmann", email: "kari@fjordkraft.dk" }],
  ...over,
});
export const customer = (over: Record<string, unknown> = {}) => Customer.parse(customerData(over));

export const projectData = (over: Record<string, unknown> = {}) => ({
  number: "P24017",
  name: "ERP migration",
  customerNumber: "10042",
  startDate: "2026-03-01",
  department: "KBH",
  ...over,
});
export const project = (over: Record<string, unknown> = {}) => Project.parse(projectData(over));

export const invoiceData = (over: Record<string, unknown> = {}) => ({
  number: "20001",
  psaId: "psa-inv-20001",
  customerNumber: "10042",
  projectNumber: "P24017",
  date: "2026-04-30",
  dueDate: "2026-05-14",
  currency: "DKK",
  ourReference: "Kari Nordmann",
  yourReference: "Ole Olsen",
  heading: "April 2026",
  lines: [
    { text: "Konsulenttimer april", quantity: 37.5, unitPrice: 125000, kind: "hours" },
    { text: "Hotel Bergen", quantity: 1, unitPrice: 198400, kind: "expenses" },
  ],
  ...over,
});
export const invoice = (over: Record<string, unknown> = {}) => Invoice.parse(invoiceData(over));
export const creditNote = (over: Record<string, unknown> = {}) =>
  CreditNote.parse({
    ...invoiceData({ number: "20002", psaId: "psa-cn-20002" }),
    kind: "credit_note",
    creditedInvoiceNumber: "20001",
    ...over,
  });

/** The related-records lookup the dispatcher gives a push (the project the PSA sent). */
export const related =
  (records: { project?: unknown; customer?: unknown } = {}) =>
  (entity: string) =>
    (records as any)[entity] ?? null;

/** Customer and project in place, as the core's ordering guarantees before an invoice. */
export async function seedMasterData(env: Env, p = project()): Promise<void> {
  await env.connector.push("customer", customer(), ctx());
  await env.connector.push("project", p, ctx());
}

/** Runs `p` and returns what it threw (fails the test if it did not throw). */
export async function thrown(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to throw");
}

/** Counters kept in memory, shared by connectors (as the agent's database shares them). */
export function memoryCounters(): PeriodCounters & { values: Map<string, { period: string; value: number }> } {
  const values = new Map<string, { period: string; value: number }>();
  return {
    values,
    add(name, period, by) {
      const v = values.get(name);
      const value = (v && v.period === period ? v.value : 0) + by;
      values.set(name, { period, value });
      return value;
    },
    get(name, period) {
      const v = values.get(name);
      return v && v.period === period ? v.value : 0;
    },
  };
}
