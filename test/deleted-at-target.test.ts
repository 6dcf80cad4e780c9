// A customer, project or product a person deletes at the target after kontobro sent it, through the real agent (SQLite file,
// dispatcher) and each target's sandbox over loopback: the next invoice needs action naming the record, and what the
// hint says works: the PSA sends the record again, unchanged, it is created again, and the invoice follows by itself.
// (eAccounting: test eaccounting-deleted-customer.)
import { afterEach, describe, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { demoConfig, startDemoTarget } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { DEMO as UC, startUnicontaSandbox } from "../connectors/uniconta/sandbox/index.ts";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";
import { BASE_CONFIG, customerData, invoiceData, projectData } from "./uniconta-fixtures.ts";

type Entity = "customer" | "project" | "product";

/** One target's agent and sandbox, and what a person does there. */
interface Setup {
  /** An invoice; with `product`, its first line is the product's (productCode). */
  events: Record<Entity, () => object> & { invoice: (n: number, product?: boolean) => object };
  send(events: object[]): Promise<void>;
  deliveries(): Promise<any[]>;
  /** A person deletes the record at the target. */
  remove(entity: Entity): Promise<void>;
  exists(entity: Entity): Promise<boolean>;
  stop(): Promise<void>;
}

let running: Setup | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

const TOKEN = "test-token-0123456789";
const apiOf =
  (url: () => string, token: () => string) =>
  async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${url()}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token()}`, "content-type": "application/json" },
    });
    return res.json() as Promise<any>;
  };

async function economic(): Promise<Setup> {
  const stack = await startStack();
  const auth = { "x-appsecrettoken": "demo-app-secret", "x-agreementgranttoken": "demo-agreement-grant" };
  const path = (e: Entity) =>
    e === "customer" ? "/customers/10042" : e === "project" ? "/projectsapi/v1.1.0/projects/4711" : `/products/${PRODUCT}`;
  return {
    events: {
      customer: () => customerEvent(10042),
      project: () => projectEvent(4711, 10042),
      product: () => productEvent(),
      invoice: (n, product) => invoiceEvent(n, 10042, 4711, product ? { lines: productLines() } : {}),
    },
    send: async (events) => void (await stack.post(events)),
    deliveries: () => stack.deliveries(),
    async remove(e) {
      expect((await fetch(`${stack.sandboxUrl}${path(e)}`, { method: "DELETE", headers: auth })).status).toBe(204);
    },
    exists: async (e) => (await fetch(`${stack.sandboxUrl}${path(e)}`, { headers: auth })).status === 200,
    stop: () => stack.stop(),
  };
}

async function unimicro(): Promise<Setup> {
  const target = await startDemoTarget("unimicro");
  const { config, targets } = demoConfig({ dataDir: tempDir(), port: 0, target: { ...target.target, requests_per_second: 0 } });
  Object.assign(config.dispatch, { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 });
  const agent: RunningAgent = await startAgent(config, targets, silentLogger);
  const api = apiOf(
    () => agent.url,
    () => agent.apiToken,
  );
  const row = async (e: Entity) => {
    const company = Object.values(((await (await fetch(`${target.sandboxUrl}/__sandbox/state`)).json()) as any).companies)[0] as any;
    return e === "customer"
      ? company.customers.find((c: any) => String(c.CustomerNumber) === "10501")
      : e === "project"
        ? company.projects.find((p: any) => String(p.ProjectNumber) === "701")
        : company.products.find((p: any) => p.PartName === PRODUCT);
  };
  return {
    events: {
      customer: () => customerEvent(10501),
      project: () => projectEvent(701, 10501),
      product: () => productEvent(),
      invoice: (n, product) => invoiceEvent(n, 10501, 701, product ? { lines: productLines() } : {}),
    },
    send: async (events) => void (await api("/api/v1/events", { method: "POST", body: JSON.stringify(events) })),
    deliveries: async () => (await api("/api/v1/deliveries?limit=1000")).deliveries,
    async remove(e) {
      const res = await fetch(`${target.sandboxUrl}/__sandbox/manual/${e}s/${(await row(e)).ID}`, { method: "DELETE" });
      expect(res.status).toBe(201);
    },
    exists: async (e) => !!(await row(e)),
    async stop() {
      await agent.stop();
      await target.stop();
    },
  };
}

async function uniconta(): Promise<Setup> {
  const srv = startUnicontaSandbox();
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: tempDir() },
      http: { port: 0, api_token: TOKEN },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 },
      targets: [{ name: "uc", kind: "uniconta", api_url: srv.url, gateway_url: `${srv.url}/gateway`, ...BASE_CONFIG }],
    },
    {},
  );
  const agent = await startAgent(config, targets, silentLogger);
  const api = apiOf(
    () => agent.url,
    () => TOKEN,
  );
  const auth = { authorization: `Basic ${Buffer.from(`00${UC.companyId}/${UC.user}:${UC.password}`).toString("base64")}` };
  const key = (e: Entity) =>
    e === "customer" ? ["DebtorClient", "Account", customerData().number] : ["ProjectClient", "Number", projectData().number];
  let n = 0;
  const ev = (type: string, data: object) => ({ id: `${type}-${++n}-${Math.random()}`, type, data });
  return {
    events: {
      customer: () => ev("customer.upserted", customerData()),
      project: () => ev("project.upserted", projectData()),
      product: () => {
        throw new Error("kontobro sends no products to Uniconta");
      },
      invoice: (k) => ev("invoice.finalized", invoiceData({ number: String(k), psaId: `psa-inv-${k}` })),
    },
    send: async (events) => void (await api("/api/v1/events", { method: "POST", body: JSON.stringify(events) })),
    deliveries: async () => (await api("/api/v1/deliveries?limit=1000")).deliveries,
    async remove(e) {
      const [type, field, value] = key(e);
      const res = await fetch(`${srv.url}/api/Entities/Delete/${type}`, {
        method: "DELETE",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ [field!]: value }),
      });
      expect(res.status).toBe(200);
    },
    async exists(e) {
      const [type, field, value] = key(e);
      const rows = ((await (await fetch(`${srv.url}/__sandbox/state`)).json()) as any).companies[UC.companyId].rows[type!] ?? [];
      return rows.some((r: any) => String(r[field!]) === value);
    },
    async stop() {
      await agent.stop();
      await srv.stop();
    },
  };
}

const PRODUCT = "CONSULT-7";
const productEvent = () => ({
  id: `prod-${Math.random()}`,
  type: "product.upserted",
  data: { code: PRODUCT, name: "Consulting senior", price: 145000 },
});
const productLines = () => [{ text: "Consulting", quantity: 7.5, unitPrice: 145000, kind: "hours", productCode: PRODUCT }];

const done = async (s: Setup, entity: string, min: number) =>
  (await s.deliveries()).filter((d: any) => d.entity === entity && d.status === "done").length >= min;

for (const [kind, start, hasInvoice] of [
  ["economic", economic, true],
  ["unimicro", unimicro, true],
  // Uniconta refuses to delete a customer or project an invoice or order refers to (CouldNotDeleteRecordThatIsReferred).
  ["uniconta", uniconta, false],
] as const) {
  describe(`${kind}: a record deleted there after kontobro sent it`, () => {
    for (const entity of ["customer", "project", ...(kind === "uniconta" ? [] : ["product" as const])] as const) {
      test(`${entity}: the next invoice needs action naming it; the PSA sends it again, unchanged: created again, the invoice follows`, async () => {
        const s = (running = await start());
        // Uniconta: a customer with a project cannot be deleted, so the customer case has no project.
        const alone = kind === "uniconta" && entity === "customer";
        const product = entity === "product";
        await s.send([
          s.events.customer(),
          ...(alone ? [] : [s.events.project()]),
          ...(product ? [s.events.product()] : []),
          ...(hasInvoice ? [s.events.invoice(20001, product)] : []),
        ]);
        await waitFor(
          "sent",
          async () =>
            (await done(s, "customer", 1)) && (alone || (await done(s, "project", 1))) && (!product || (await done(s, "product", 1))),
        );
        if (hasInvoice) await waitFor("first invoice", () => done(s, "invoice", 1));
        await s.remove(entity);
        expect(await s.exists(entity)).toBe(false);

        const invoice = s.events.invoice(hasInvoice ? 20002 : 20001, product) as any;
        if (alone) delete invoice.data.projectNumber;
        await s.send([invoice]);
        const waiting = await waitFor("the invoice needs action", async () =>
          (await s.deliveries()).find((d: any) => d.entity === "invoice" && d.status === "needs_action"),
        );
        expect(waiting.errorCode).toBe(`${kind}.${entity}_missing`);
        expect(waiting.errorHint).toContain("again from the PSA (unchanged will do)");

        await s.send([s.events[entity]()]); // what the hint says
        await waitFor("the invoice is booked", () => done(s, "invoice", hasInvoice ? 2 : 1));
        expect(await s.exists(entity)).toBe(true);
      });
    }
  });
}
