// A credit note sent to a target before kontobro held the invoice it credits (its dependency is "if known": it does
// not wait for an invoice kontobro may never see) is booked there unchecked. When that invoice then arrives as another
// customer's (or in another currency, or as a credit note), the target holds a wrong credit: it is told on the status
// page and by notice, with a hint to reverse it there, until a new version of the credit note (or of the invoice) no
// longer differs. Real agent, e-conomic sandbox over loopback, a webhook receiver for the notices.
import { afterEach, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  for (const c of cleanups.splice(0)) await c();
});

function webhookReceiver() {
  const notices: any[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req) => {
      notices.push(await req.json());
      return new Response("ok");
    },
  });
  cleanups.push(() => server.stop(true));
  return {
    notices,
    notifications: { min_interval_minutes: 0, check_interval_seconds: 0.05, webhook: { url: `http://127.0.0.1:${server.port}/hook` } },
  };
}

const one = [{ text: "Consulting", quantity: 1, unitPrice: 100000, kind: "hours" }];
const credit = (number: number, credited: number, customer: string, id = `cn-${number}`) => ({
  id,
  type: "invoice.credited",
  data: {
    ...invoiceEvent(number, 9).data,
    psaId: `PSA-CN-${number}`,
    customerNumber: customer,
    creditedInvoiceNumber: credited,
    lines: one,
  },
});

test("a credit note booked before its invoice arrived as another customer's: told (status page, notice) until a new version of it agrees", async () => {
  const hook = webhookReceiver();
  stack = await startStack({ sections: { notifications: hook.notifications } });
  await stack.post([customerEvent(9), customerEvent(10)]);
  await stack.waitDelivered(2);
  // Credit note 1042 for customer 10 of invoice 1041, which kontobro does not hold: unchecked, it is booked.
  expect((await stack.post([credit(1042, 1041, "10")])).status).toBe(202);
  await stack.waitDelivered(3);
  expect((await stack.sandboxState()).booked.map((b: any) => b.references?.other)).toEqual(["PSA-CN-1042"]);

  // Invoice 1041 arrives: customer 9's.
  expect((await stack.post([{ ...invoiceEvent(1041, 9), data: { ...invoiceEvent(1041, 9).data, lines: one } }])).status).toBe(202);
  const told = await waitFor("the notice", () =>
    hook.notices.find((n) => n.problems?.some((p: any) => p.code === "invoice.credits_other_customer")),
  );
  const problem = told.problems.find((p: any) => p.code === "invoice.credits_other_customer");
  expect(told.subject).toBe("[kontobro] eco: credit note 1042 needs action");
  expect(problem).toMatchObject({ kind: "delivery", what: "credit note 1042" });
  expect(problem.message).toContain("Credit note 1042 credits invoice 1041 of customer 9, but is for customer 10.");
  expect(problem.message).toContain("It was sent to eco before kontobro held invoice 1041 as it is now");
  expect(problem.hint).toStartWith("Reverse credit note 1042 at eco");

  const page = await (await fetch(stack.agent.url)).text();
  expect(page).toContain('data-credit-note="1042" data-code="invoice.credits_other_customer"');
  expect(page).toContain("Credit note 1042 credits invoice 1041 of customer 9");

  // Told once, not at every round.
  await Bun.sleep(300);
  expect(hook.notices.filter((n) => n.problems?.some((p: any) => p.code === "invoice.credits_other_customer"))).toHaveLength(1);

  // The PSA corrects the credit note: customer 9's, as its invoice. Resolved.
  expect((await stack.post([credit(1042, 1041, "9", "cn-1042-v2")])).status).toBe(202);
  const back = await waitFor("the resolution", () => hook.notices.find((n) => n.resolved?.some((p: any) => p.what === "credit note 1042")));
  expect(back.resolved.find((p: any) => p.what === "credit note 1042").resolution).toBe(
    "the credit note and the document it credits no longer differ (a new version of one of them)",
  );
  expect(await (await fetch(stack.agent.url)).text()).not.toContain('data-credit-note="1042"');
}, 30_000);

test("a credit note booked before its invoice arrived in another currency: told until the invoice's next version agrees", async () => {
  const hook = webhookReceiver();
  stack = await startStack({ sections: { notifications: hook.notifications } });
  await stack.post([customerEvent(9)]);
  await stack.waitDelivered(1);
  expect((await stack.post([credit(1052, 1051, "9")])).status).toBe(202);
  await stack.waitDelivered(2);
  const invoice = (currency: string, id: string) => ({
    ...invoiceEvent(1051, 9, undefined, {}, id),
    data: { ...invoiceEvent(1051, 9).data, currency, lines: one },
  });
  expect((await stack.post([invoice("EUR", "i-1051")])).status).toBe(202);
  const told = await waitFor("the notice", () => hook.notices.find((n) => n.problems?.some((p: any) => p.what === "credit note 1052")));
  expect(told.problems.find((p: any) => p.what === "credit note 1052").code).toBe("invoice.credits_other_currency");
  expect((await stack.post([invoice("NOK", "i-1051-v2")])).status).toBe(202);
  await waitFor("the resolution", () => hook.notices.find((n) => n.resolved?.some((p: any) => p.what === "credit note 1052")));
}, 30_000);
