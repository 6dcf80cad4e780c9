// The sandbox's control API under /__sandbox (not Uniconta's): state, reset, faults, the quota, the invoice
// number series, and what people do in Uniconta by hand: invoice an order, post project costs, register a
// payment, create a row directly (a debtor with a credit limit typed in by a person, a foreign order, …).
import type { Hono } from "hono";
import { faultRoutes } from "../../sandbox-faults.ts";
import { FaultRulesBody, type UnicontaFaults } from "./faults.ts";
import { balances, postOrder, postProjectCosts, registerPayment, type PostingOptions, type ProjectCost } from "./posting.ts";
import type { Quota } from "./quota.ts";
import { UcError, type CompanyStore } from "./store.ts";

export interface ControlDeps {
  faults: UnicontaFaults;
  quota: Quota;
  store(companyId?: number): CompanyStore | undefined;
  stores(): Map<number, CompanyStore>;
  today(): string;
  posting: PostingOptions;
  state(): unknown;
  reset(): void;
}

export function registerControl(app: Hono, d: ControlDeps): void {
  const withStore = async (c: any, work: (store: CompanyStore, body: any) => unknown) => {
    const body = await c.req.json().catch(() => ({}));
    const store = d.store(body.companyId);
    if (!store) return c.json({ error: `unknown companyId ${body.companyId}` }, 400);
    try {
      return c.json(work(store, body) ?? { ok: true }, 201);
    } catch (e) {
      if (e instanceof UcError) return c.json({ ErrorCode: e.code, Message: e.message }, 400);
      throw e;
    }
  };

  app.get("/__sandbox/state", (c) => c.json(d.state()));
  app.post("/__sandbox/reset", (c) => {
    d.reset();
    return c.json({ reset: true });
  });
  faultRoutes(app, d.faults, FaultRulesBody);

  /** {limit?, mode?, slowMs?, used?, user?}: the daily quota and what a user has used of it today. */
  app.post("/__sandbox/quota", async (c) => {
    const b = await c.req.json().catch(() => ({}));
    if (typeof b.limit === "number") d.quota.o.limit = b.limit;
    if (b.mode === "slow" || b.mode === "refuse") d.quota.o.mode = b.mode;
    if (typeof b.slowMs === "number") d.quota.o.slowMs = b.slowMs;
    if (typeof b.used === "number") d.quota.set(typeof b.user === "string" ? b.user : "kontobro", b.used);
    return c.json(d.quota.state());
  });

  /** {next}: General Ledger › Maintenance › Voucher number series, the invoice series' next number. */
  app.post("/__sandbox/number-series", (c) =>
    withStore(c, (store, b) => {
      const s = store.raw("NumberSerieClient").find((r) => r.Use === "Invoice")!;
      if (typeof b.next === "number") s.NextNumber = b.next;
      return { ...s };
    }),
  );

  /** {orderNumber, simulate?}: a person invoices an order in Uniconta (the "order only" route). */
  app.post("/__sandbox/invoice-order", (c) =>
    withStore(c, (store, b) => postOrder(store, Number(b.orderNumber), { simulate: !!b.simulate, today: d.today() }, d.posting)),
  );

  /**
   * {costs: ProjectCost[]}: a posted journal of project costs (supplier invoices, travel, …). A cost without a
   * date is posted on the company's calendar day (Danish time), as a person posting it in Uniconta today would.
   */
  app.post("/__sandbox/project-costs", (c) =>
    withStore(c, (store, b) =>
      postProjectCosts(
        store,
        ((b.costs ?? []) as Partial<ProjectCost>[]).map((cost) => ({ ...cost, date: cost.date ?? d.today() }) as ProjectCost),
      ),
    ),
  );

  /** {invoice, amount?}: a payment received for a posted invoice (the whole remainder without amount). */
  app.post("/__sandbox/payments", (c) =>
    withStore(c, (store, b) => registerPayment(store, Number(b.invoice), typeof b.amount === "number" ? b.amount : undefined, d.today())),
  );

  /** {type, row}: a row created by a person in Uniconta (quota not charged, checks as for the API). */
  app.post("/__sandbox/rows", (c) => withStore(c, (store, b) => store.insert(String(b.type), b.row)[0]));

  /** What each debtor owes, computed from the debtor transactions. */
  app.get("/__sandbox/balances", (c) => c.json(balances(d.store(Number(c.req.query("companyId") ?? "") || undefined)!)));

  app.all("/__sandbox/*", (c) => c.json({ message: `No control endpoint ${c.req.method} ${c.req.path}.` }, 404));
}
