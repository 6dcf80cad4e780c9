// A customer deleted in eAccounting after kontobro sent it, through the real agent (SQLite file, dispatcher) and the
// sandbox over loopback: the next invoice needs action naming the customer, and what the hint says works (the PSA
// sends the customer again: it is created again and the invoice follows by itself); one a person re-created under
// the same number is the one the invoice goes to.
import { afterEach, describe, expect, test } from "bun:test";
import { customerData, invoiceData, productData, projectData } from "./eaccounting-fixtures.ts";
import { ev, startEaStack, type EaStack } from "./eaccounting-harness.ts";
import { waitFor } from "./helpers.ts";

let s: EaStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const secondInvoice = () => ev("invoice.finalized", invoiceData({ number: "20002", psaId: "psa-inv-20002" }));
const customers10042 = async () => (await s!.state()).customers.filter((c: any) => c.CustomerNumber === "10042");
const draftOf = async (psaId: string) => (await s!.state()).drafts.find((d: any) => d.ElectronicReference === `kontobro:${psaId}`);

/** Customer 10042 as a person creates it in eAccounting. */
const person10042 = {
  CustomerNumber: "10042",
  Name: "Fjordkraft Consulting AB",
  InvoiceAddress1: "Storgatan 1",
  InvoicePostalCode: "11122",
  InvoiceCity: "Stockholm",
  InvoiceCountryCode: "SE",
};

async function sentThenDeleted(): Promise<string> {
  s = await startEaStack();
  await s.send([ev("customer.upserted", customerData()), ev("project.upserted", projectData()), ev("invoice.finalized", invoiceData())]);
  await s.waitDone(3);
  const [old] = await customers10042();
  await s.control("customers/10042", undefined, "DELETE");
  return old.Id;
}

describe("a customer deleted in eAccounting", () => {
  test("the next invoice needs action naming the customer; the PSA sends the customer again: it is created again and the invoice follows", async () => {
    const oldId = await sentThenDeleted();
    await s!.send([secondInvoice()]);
    const waiting = await waitFor("the invoice needs action", async () =>
      (await s!.deliveries("needs_action")).find((x: any) => x.entity === "invoice"),
    );
    expect(waiting).toMatchObject({ entity: "invoice", errorCode: "eaccounting.customer_missing" });
    expect(waiting.errorHint).toContain("Send customer 10042 again from the PSA");

    // What the hint says: the PSA sends the customer again (unchanged).
    await s!.send([ev("customer.upserted", customerData())]);
    await waitFor("the invoice is drafted", async () => !!(await draftOf("psa-inv-20002")));
    const [again] = await customers10042();
    expect(again.Id).not.toBe(oldId);
    expect((await draftOf("psa-inv-20002")).CustomerId).toBe(again.Id);
    expect(await s!.deliveries("needs_action")).toEqual([]);
  });

  test("after a restart (no ids kept in memory) the same: needs action, and the PSA's resend re-creates it", async () => {
    await sentThenDeleted();
    await s!.restart();
    await s!.send([secondInvoice()]);
    await waitFor("the invoice needs action", async () =>
      (await s!.deliveries("needs_action")).some((d: any) => d.errorCode === "eaccounting.customer_missing"),
    );
    await s!.send([ev("customer.upserted", customerData())]);
    await waitFor("the invoice is drafted", async () => !!(await draftOf("psa-inv-20002")));
    expect(await customers10042()).toHaveLength(1);
  });

  test("the hint's other way: a person creates the customer in eAccounting again and presses retry; the invoice goes to it", async () => {
    await sentThenDeleted();
    await s!.send([secondInvoice()]);
    const waiting = await waitFor("the invoice needs action", async () =>
      (await s!.deliveries("needs_action")).find((x: any) => x.errorCode === "eaccounting.customer_missing"),
    );
    const made = await s!.control("customers", person10042);
    await s!.api(`/api/v1/deliveries/${waiting.id}/retry`, { method: "POST" });
    await waitFor("the invoice is drafted", async () => !!(await draftOf("psa-inv-20002")));
    expect((await draftOf("psa-inv-20002")).CustomerId).toBe(made.Id);
    // The customer's next version updates the one the person made (matched by number and name), no second one.
    await s!.send([ev("customer.upserted", customerData({ phone: "+46 8 999 99" }))]);
    await s!.waitDone(5);
    expect((await customers10042()).map((c: any) => c.Id)).toEqual([made.Id]);
  });

  test("re-created by a person under the same number: the next invoice goes to that customer, not to the deleted one's id", async () => {
    await sentThenDeleted();
    const made = await s!.control("customers", person10042);
    await s!.send([secondInvoice()]);
    await waitFor("the invoice is drafted", async () => !!(await draftOf("psa-inv-20002")));
    expect((await draftOf("psa-inv-20002")).CustomerId).toBe(made.Id);
  });
});

describe("an article deleted in eAccounting", () => {
  test("the next invoice with the product's line needs action naming it; the PSA sends the product again, unchanged: created again, the invoice follows", async () => {
    s = await startEaStack();
    const line = { text: "Konsulttimmar", quantity: 37.5, unitPrice: 125000, kind: "hours", productCode: "KONS" };
    await s.send([
      ev("customer.upserted", customerData()),
      ev("project.upserted", projectData()),
      ev("product.upserted", productData()),
      ev("invoice.finalized", invoiceData({ lines: [line] })),
    ]);
    await s.waitDone(4);
    await s.control("articles/KONS", undefined, "DELETE");

    await s.send([ev("invoice.finalized", invoiceData({ number: "20002", psaId: "psa-inv-20002", lines: [line] }))]);
    const waiting = await waitFor("the invoice needs action", async () =>
      (await s!.deliveries("needs_action")).find((x: any) => x.entity === "invoice"),
    );
    expect(waiting).toMatchObject({ errorCode: "eaccounting.article_missing" });
    expect(waiting.errorHint).toContain("Send product KONS again from the PSA (unchanged will do)");

    await s.send([ev("product.upserted", productData())]); // what the hint says
    await waitFor("the invoice is drafted", async () => !!(await draftOf("psa-inv-20002")));
    expect((await s.state()).articles.filter((a: any) => a.Number === "KONS")).toHaveLength(1);
    expect(await s.deliveries("needs_action")).toEqual([]);
  });
});
