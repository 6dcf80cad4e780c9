// Shared set-up for the eAccounting tests: the sandbox on loopback and a connector pointed at it.
import { silentLogger } from "../agent/log.ts";
import { Customer, Invoice, Product, Project } from "../agent/model.ts";
import type { ConnectorDeps, PushContext } from "../connectors/contract.ts";
import { memoryCredentials } from "../connectors/eaccounting/auth.ts";
import type { EaccountingConnector } from "../connectors/eaccounting/connector.ts";
import { eaccounting } from "../connectors/eaccounting/index.ts";
import { DEMO, startEaccountingSandbox, type EaccountingSandboxOptions } from "../connectors/eaccounting/sandbox/index.ts";

export const targetConfig = (url: string, over: Record<string, unknown> = {}) => ({
  api_url: `${url}/v2`,
  identity_url: `${url}/connect`,
  client_id: DEMO.clientId,
  client_secret: DEMO.clientSecret,
  refresh_token: DEMO.refreshToken,
  default_article: "100",
  requests_per_second: 0,
  request_timeout_ms: 5000,
  ...over,
});

export interface Env {
  url: string;
  sandbox: ReturnType<typeof startEaccountingSandbox>["sandbox"];
  connector: EaccountingConnector;
  connectorWith(config: Record<string, unknown>, deps?: Partial<ConnectorDeps>): EaccountingConnector;
  control(path: string, body?: unknown, method?: string): Promise<any>;
  state(): Promise<any>;
  faults(rules: unknown): Promise<void>;
  stop(): Promise<void>;
}

export function startEnv(
  o: { sandbox?: EaccountingSandboxOptions; config?: Record<string, unknown>; deps?: Partial<ConnectorDeps> } = {},
): Env {
  const srv = startEaccountingSandbox(o.sandbox);
  // One store for every connector of the environment, as the agent's processes share the database: the
  // refresh token rotates, so a second connector must see the first one's.
  const credentials = memoryCredentials();
  const make = (over: Record<string, unknown>, deps: Partial<ConnectorDeps> = {}) =>
    eaccounting.create("ea-test", eaccounting.configSchema.parse(targetConfig(srv.url, over)), {
      log: silentLogger,
      credentials,
      ...deps,
    }) as EaccountingConnector;
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
  return {
    url: srv.url,
    sandbox: srv.sandbox,
    connector: make(o.config ?? {}, o.deps),
    connectorWith: (config, deps) => make({ ...(o.config ?? {}), ...config }, { ...o.deps, ...deps }),
    control,
    state: () => control("state"),
    faults: async (rules) => {
      await control("faults", rules);
    },
    stop: () => srv.stop(),
  };
}

let seq = 0;
export const ctx = (over: Partial<PushContext> = {}): PushContext => ({
  link: null,
  uncertain: false,
  idempotencyKey: `ea-test-${++seq}`,
  ...over,
});

export const customerData = (over: Record<string, unknown> = {}) => ({
  number: "10042",
  name: "Fjordkraft Consulting AB",
  orgNumber: "556677-8899",
  email: "faktura@fjordkraft.se",
  phone: "+46 8 123 45",
  addresses: [{ kind: "invoice", street: "Storgatan 1", zip: "11122", city: "Stockholm", country: "SE" }],
  contacts: [{ name: "Kari Nordmann", email: "kari@fjordkraft.se" }],
  currency: "SEK",
  paymentTermsDays: 30,
  ...over,
});
export const customer = (over: Record<string, unknown> = {}) => Customer.parse(customerData(over));
export const productData = (over: Record<string, unknown> = {}) => ({
  code: "KONS",
  name: "Konsulttimmar senior",
  unit: "h",
  price: 145000,
  vatRate: 25,
  ...over,
});
export const product = (over: Record<string, unknown> = {}) => Product.parse(productData(over));
export const projectData = (over: Record<string, unknown> = {}) => ({
  number: "P24017",
  name: "ERP migration",
  customerNumber: "10042",
  ...over,
});
export const project = (over: Record<string, unknown> = {}) => Project.parse(projectData(over));
export const invoiceData = (over: Record<string, unknown> = {}) => ({
  number: "20001",
  psaId: "psa-inv-20001",
  customerNumber: "10042",
  projectNumber: "P24017",
  date: "2026-04-30",
  dueDate: "2026-05-30",
  currency: "SEK",
  ourReference: "Kari Nordmann",
  yourReference: "Ole Olsen",
  heading: "April 2026",
  lines: [
    { text: "Konsulttimmar april", quantity: 37.5, unitPrice: 125000, kind: "hours" },
    { text: "Hotell", quantity: 1, unitPrice: 198400, kind: "expenses" },
  ],
  ...over,
});
export const invoice = (over: Record<string, unknown> = {}) => Invoice.parse(invoiceData(over));

/** The related-records lookup a push gets from the dispatcher. */
export const related =
  (records: { customer?: unknown; project?: unknown } = {}) =>
  (entity: string) =>
    (records as any)[entity] ?? null;

export async function thrown(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to throw");
}
