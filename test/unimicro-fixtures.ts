// Shared set-up for the Uni Micro tests: a sandbox on loopback and a connector pointed at it.
import { generateKeyPairSync } from "node:crypto";
import { silentLogger } from "../agent/log.ts";
import type { PushContext } from "../connectors/contract.ts";
import { unimicroFactory } from "../connectors/unimicro/index.ts";
import { DEMO_COMPANY, startUniMicroSandbox, type UniMicroSandboxOptions } from "../connectors/unimicro/sandbox/index.ts";

const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
export const CLIENT_ID = "kontobro-test";
export const privateKeyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
export const publicKey = pair.publicKey;

export interface Env {
  url: string;
  connector: ReturnType<typeof unimicroFactory.create>;
  /** Another connector on the same sandbox and settings (another process's, or a hosted worker's). */
  another(): ReturnType<typeof unimicroFactory.create>;
  state(): Promise<any>;
  company(): Promise<any>;
  faults(rules: unknown): Promise<void>;
  control(path: string, body?: unknown): Promise<any>;
  stop(): void;
}

export function startEnv(o: { sandbox?: UniMicroSandboxOptions; config?: Record<string, unknown> } = {}): Env {
  const srv = startUniMicroSandbox({ clients: [{ clientId: CLIENT_ID, publicKey }], ...o.sandbox });
  const config = unimicroFactory.configSchema.parse({
    platform: "dnb-regnskap",
    base_url: srv.url,
    identity_url: `${srv.url}/connect/token`,
    client_id: CLIENT_ID,
    private_key: privateKeyPem,
    company_key: DEMO_COMPANY.Key,
    accounts: { hours: 3000, expenses: 3400, products: 3000 },
    vat_codes: { hours: "3", expenses: "3", products: "3" },
    product_numbers: { hours: "1", expenses: "2", products: "3" },
    requests_per_second: 0,
    request_timeout_ms: 5000,
    ...o.config,
  });
  const another = () => unimicroFactory.create("uni-test", config, { log: silentLogger });
  const connector = another();
  const control = async (path: string, body?: unknown): Promise<any> => {
    const res = await fetch(
      `${srv.url}/__sandbox/${path}`,
      body === undefined
        ? { method: path === "state" ? "GET" : "POST" }
        : { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } },
    );
    if (!res.ok) throw new Error(`sandbox control ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const state = () => control("state");
  return {
    url: srv.url,
    connector,
    another,
    state,
    company: async () => (await state()).companies[DEMO_COMPANY.Key],
    faults: async (rules) => {
      await control("faults", rules);
    },
    control,
    stop: () => srv.stop(),
  };
}

let seq = 0;
export const ctx = (over: Partial<PushContext> = {}): PushContext => ({
  link: null,
  uncertain: false,
  idempotencyKey: `test-${++seq}`,
  ...over,
});

export const customer = (over: Record<string, unknown> = {}) => ({
  number: "100123",
  name: "Fjordtech AS",
  orgNumber: "999 888 777",
  email: "faktura@fjordtech.no",
  website: "https://fjordtech.no",
  phone: "+47 55 00 00 00",
  fax: "+47 55 00 00 01",
  addresses: [{ kind: "postal", street: "Strandkaien 2", zip: "5013", city: "Bergen", country: "NO" }],
  ...over,
});

export const project = (over: Record<string, unknown> = {}) => ({
  number: "24017",
  name: "ERP migration",
  customerNumber: "100123",
  startDate: "2024-03-01",
  ...over,
});

export const invoice = (over: Record<string, unknown> = {}) => ({
  number: "10117",
  psaId: "psa-inv-10117",
  customerNumber: "100123",
  projectNumber: "24017",
  date: "2024-04-30",
  dueDate: "2024-05-14",
  ourReference: "Kari Nordmann",
  lines: [
    { text: "Konsulenttimer april", quantity: 37.5, unitPrice: 125000, kind: "hours" },
    { text: "Hotell prosjektreise", quantity: 1, unitPrice: 198400, kind: "expenses" },
  ],
  ...over,
});

/** Customer and project in place, as the core's ordering guarantees before an invoice. */
export async function seedMasterData(env: Env): Promise<void> {
  await env.connector.push("customer", customer(), ctx());
  await env.connector.push("project", project(), ctx());
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
