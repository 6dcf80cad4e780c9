// The chaos run's adapter for the Uniconta sandbox (scripts/chaos.ts): the sandbox behind a request log,
// its fault rules, the [[targets]] table (posting through the sandbox's gateway with the PSA's invoice
// numbers), and the posted invoices, unposted orders (the drafts), debtors and projects read back.
import { minor, serveLogged, type BookedDoc, type ChaosAdapter, type LoggedRequest, chaosBackgroundFaults } from "../../sandbox.ts";
import { demoTarget } from "../index.ts";
import { FaultRulesBody } from "./faults.ts";
import { createUnicontaSandbox, DEMO } from "./index.ts";
import type { Row } from "./store.ts";

const REFERENCE = "kontobro:";
const psaIdOf = (ref: unknown) => (typeof ref === "string" && ref.startsWith(REFERENCE) ? ref.slice(REFERENCE.length) : null);
/** A TOML inline table of string values, e.g. { hours = "1000", … }. */
const inline = (t: unknown) =>
  `{ ${Object.entries(t as Record<string, string>)
    .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
    .join(", ")} }`;

export const chaos: ChaosAdapter = async ({ name, random, plan }) => {
  const log: LoggedRequest[] = [];
  // A sandbox quota no chaos run reaches: being slowed by it would be a finding of its own (below).
  const sandbox = createUnicontaSandbox({ random, honourInvoiceNumber: true, quota: { limit: 1_000_000 } });
  const store = () => sandbox.store(DEMO.companyId);
  // Orders and posted invoices carry no creation time: noted when the answer that made them is written
  // (a dropped or slow answer included: the sandbox commits before it answers).
  const madeAt = new Map<number, number>();
  let invoicesSeen = 0;
  const noteMade = () => {
    const now = Date.now();
    for (const o of store().raw("DebtorOrderClient")) if (!madeAt.has(Number(o.RowId))) madeAt.set(Number(o.RowId), now);
    const invoices = store().raw("DebtorInvoiceClient");
    for (; invoicesSeen < invoices.length; invoicesSeen++) madeAt.set(Number(invoices[invoicesSeen]!.RowId), now);
  };
  const server = serveLogged(async (req) => {
    const res = await sandbox.fetch(req);
    if (req.method === "POST") noteMade();
    return res;
  }, log);
  // Pooled keep-alive connections would let a client silently retry a dropped request (faults.ts).
  sandbox.faults.onDropArmed = () => server.closeIdleConnections();
  const url = `http://127.0.0.1:${server.port}`;
  const demo = demoTarget(url);
  const setRules = (rules: unknown[]) => {
    sandbox.faults.clear();
    sandbox.faults.add(FaultRulesBody.parse(rules));
  };
  return {
    log,
    toml:
      `[[targets]]\nname = "${name}"\nkind = "uniconta"\napi_url = "${url}"\ngateway_url = "${url}/gateway"\nposting = "gateway"\n` +
      `company_id = ${DEMO.companyId}\nusername = "${DEMO.user}"\npassword = "${DEMO.password}"\n` +
      `default_customer_group = "ERHVERV"\ncredit_note_payment_terms = "NK0"\n` +
      `accounts = ${inline(demo.accounts)}\nvat_codes = ${inline(demo.vat_codes)}\ncategories = ${inline(demo.categories)}\n` +
      `send_invoice_number = true\ncalls_per_day = 1000000\nrequests_per_second = 0\nrequest_timeout_ms = ${plan.timeoutMs}\nlate_answer_wait_ms = ${plan.lateAnswerWaitMs}\n`,
    // Slow creates: the order (the draft) and its posting through the gateway.
    background: () =>
      setRules(chaosBackgroundFaults(plan, ["/Entities/Insert/DebtorOrderClient$", "^/gateway/Companies/\\d+/Invoice/DebtorOrders/"])),
    throttle: (retryAfterSeconds) => setRules([{ fault: "429", probability: 1, retryAfterSeconds }]),
    faultsInjected: () => ({ ...sandbox.faults.injected }),
    findings() {
      const over = sandbox.state().quota.users[DEMO.user]?.over ?? 0;
      return over === 0 ? [] : [`the agent went ${over} calls over the sandbox's daily quota of ${sandbox.quota.o.limit}`];
    },
    snapshot() {
      const s = store();
      const linesOf = new Map<number, Row[]>();
      for (const l of s.raw("DebtorInvoiceLines"))
        linesOf.set(Number(l.InvoiceNumber), [...(linesOf.get(Number(l.InvoiceNumber)) ?? []), l]);
      const booked: BookedDoc[] = s.raw("DebtorInvoiceClient").map((r) => ({
        psaId: psaIdOf(r.OurRef),
        number: String(r.InvoiceNumber),
        customer: String(r.Account),
        lines: [...(linesOf.get(Number(r.InvoiceNumber)) ?? [])]
          .sort((x, y) => Number(x.LineNumber) - Number(y.LineNumber))
          .map((l) => ({ text: String(l.Text ?? ""), quantity: Number(l.Qty), unitPrice: minor(l.Price) })),
        total: minor(r.NetAmount),
        ...(madeAt.has(Number(r.RowId)) ? { createdAt: madeAt.get(Number(r.RowId))! } : {}),
      }));
      return {
        booked,
        drafts: s.raw("DebtorOrderClient").map((o) => ({ psaId: psaIdOf(o.OurRef), createdAt: madeAt.get(Number(o.RowId)) ?? 0 })),
        customers: s.raw("DebtorClient").map((d) => String(d.Account)),
        projects: s.raw("ProjectClient").map((p) => String(p.Number)),
      };
    },
    stop: async () => {
      server.stop(true);
    },
  };
};
