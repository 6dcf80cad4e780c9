// eAccounting through the real agent (SQLite file, dispatcher, pulls, inbox, signed PSA webhook) over loopback:
// invoices as drafts that come back numbered and paid, once each; a dropped answer on draft creation (no second
// draft); supplier invoice rows as project costs, pulled twice in one week without duplicates; credit notes; the
// known errors before sending, with the record to fix.
import { afterEach, describe, expect, test } from "bun:test";
import { addDays, todayIn } from "../agent/pulls/cron.ts";
import { ev, startEaStack, type EaStack } from "./eaccounting-harness.ts";
import { customerData, invoiceData, projectData } from "./eaccounting-fixtures.ts";
import { waitFor } from "./helpers.ts";

let s: EaStack | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const today = () => todayIn("Europe/Stockholm");
const accepted = (type: string) => s!.psa.accepted().filter((i) => i.type === type);
const masterData = () => [ev("customer.upserted", customerData()), ev("project.upserted", projectData())];

describe("invoices as drafts, number and status back", () => {
  test("a PSA invoice becomes a draft; sent in eAccounting it comes back numbered, then paid: invoice.sent and invoice.paid once each", async () => {
    s = await startEaStack();
    await s.send([...masterData(), ev("invoice.finalized", invoiceData())]);
    await s.waitDone(3);
    const inv = (await s.deliveries("done")).find((d: any) => d.entity === "invoice");
    expect(inv.remoteId).toMatch(/^draft:/);
    expect(inv.note).toContain("send it from there");
    const [draft] = (await s.state()).drafts;
    expect(draft).toMatchObject({ ElectronicReference: "kontobro:psa-inv-20001", CustomerNumber: "10042", TotalAmount: 61073.75 });

    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 0 }); // still a draft
    await s.control("send-draft", { draftId: draft.Id });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 1 });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 0 }); // sent, once
    await s.control("payments", { invoiceNumber: 1001 });
    await s.control("clock", { advanceMs: 1000 });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 1 });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 0 });
    await waitFor("sent and paid at the PSA", () => accepted("invoice.sent").length === 1 && accepted("invoice.paid").length === 1);
    expect(accepted("invoice.sent")[0].data).toMatchObject({
      invoiceNumber: "20001",
      psaId: "psa-inv-20001",
      eaccountingInvoiceNumber: 1001,
      status: "sent",
      previousStatus: "draft",
      amount: 6107375,
      remainder: 6107375,
    });
    expect(accepted("invoice.paid")[0].data).toMatchObject({
      invoiceNumber: "20001",
      psaId: "psa-inv-20001",
      eaccountingInvoiceNumber: 1001,
      status: "paid",
      previousStatus: "sent",
      remainder: 0,
      paymentDate: today(),
    });
    // Paid is final: the invoice is not asked for again.
    await s.control("clock", { advanceMs: 1000 });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 0 });
  });

  test("sent and paid between two pulls: both reach the PSA, in order, once", async () => {
    s = await startEaStack();
    await s.send([...masterData(), ev("invoice.finalized", invoiceData())]);
    await s.waitDone(3);
    await s.control("send-draft", { draftId: (await s.state()).drafts[0].Id });
    await s.control("payments", { invoiceNumber: 1001 });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 2 });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 0 });
    await waitFor("both at the PSA", () => s!.psa.accepted().length === 2);
    expect(s.psa.accepted().map((i) => i.type)).toEqual(["invoice.sent", "invoice.paid"]);
  });

  test("a dropped answer on draft creation: the agent looks the draft up by its reference, no second draft", async () => {
    s = await startEaStack();
    await s.control("faults", { method: "POST", path: "/v2/customerinvoicedrafts$", fault: "drop_after_commit" });
    await s.send([...masterData(), ev("invoice.finalized", invoiceData())]);
    await s.waitDone(3);
    const st = await s.state();
    expect(st.requests.filter((r: any) => r.fault === "drop_after_commit")).toHaveLength(1);
    expect(st.drafts).toHaveLength(1);
    expect((await s.deliveries("done")).find((d: any) => d.entity === "invoice").remoteId).toBe(`draft:${st.drafts[0].Id}`);
  });
});

describe("partial payments and the invoice's currency", () => {
  const sendAndDraft = async (currency: string) => {
    await s!.send([
      ev("customer.upserted", customerData({ currency })),
      ev("project.upserted", projectData()),
      ev("invoice.finalized", invoiceData({ currency })),
    ]);
    await s!.waitDone(3);
    await s!.control("send-draft", { draftId: (await s!.state()).drafts[0].Id });
  };
  const pay = async (amount?: number) => {
    await s!.control("payments", { invoiceNumber: 1001, amount });
    await s!.control("clock", { advanceMs: 1000 });
  };

  test("an invoice in euro at a Swedish company, paid in part: total, paid and remainder reach the PSA in euro, not in kronor", async () => {
    s = await startEaStack({ sandbox: { currencyRates: { EUR: 11.5 } } });
    await sendAndDraft("EUR");
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok" });
    await waitFor("sent at the PSA", () => s!.psa.accepted().length === 1);
    expect(s.psa.accepted()[0].data).toMatchObject({ status: "sent", currency: "EUR", amount: 6107375, paidAmount: 0, remainder: 6107375 });
    await pay(10000);
    const [invoice] = (await s.state()).invoices;
    expect(invoice).toMatchObject({ CurrencyCode: "EUR", RemainingAmountInvoiceCurrency: 51073.75, RemainingAmount: 587348.13 });
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 1 });
    await waitFor("partly paid at the PSA", () => s!.psa.accepted().length === 2);
    expect(s.psa.accepted()[1]).toMatchObject({
      type: "invoice.status_changed",
      data: { status: "partially_paid", currency: "EUR", amount: 6107375, paidAmount: 1000000, remainder: 5107375 },
    });
  });

  test("paid in parts: each part reaches the PSA once, with what is paid and what is left, a returned part too, then paid", async () => {
    s = await startEaStack();
    await sendAndDraft("SEK");
    await pay(10000);
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 2 }); // sent, and partly paid
    expect(await s.runNow("invoices")).toMatchObject({ imported: 0 }); // unchanged: nothing new
    await pay(5000); // a second part
    expect(await s.runNow("invoices")).toMatchObject({ imported: 1 });
    await pay(-5000); // the bank returned the second part
    expect(await s.runNow("invoices")).toMatchObject({ imported: 1 });
    await pay(); // the rest
    expect(await s.runNow("invoices")).toMatchObject({ imported: 1 });
    await s.control("clock", { advanceMs: 1000 });
    expect(await s.runNow("invoices")).toMatchObject({ imported: 0 });

    await waitFor("five changes at the PSA", () => s!.psa.accepted().length === 5);
    expect(s.psa.accepted().map((i) => [i.type, i.data.previousStatus, i.data.status, i.data.paidAmount, i.data.remainder])).toEqual([
      ["invoice.sent", "draft", "sent", 1000000, 5107375],
      ["invoice.status_changed", "sent", "partially_paid", 1000000, 5107375],
      ["invoice.status_changed", "partially_paid", "partially_paid", 1500000, 4607375],
      ["invoice.status_changed", "partially_paid", "partially_paid", 1000000, 5107375],
      ["invoice.paid", "partially_paid", "paid", 6107375, 0],
    ]);
    expect(new Set(s.psa.accepted().map((i) => i.id)).size).toBe(5); // the returned part brought back a remainder, as its own item
    expect(s.psa.accepted()[1].data).toMatchObject({ amount: 6107375, currency: "SEK", overdue: true }); // due in May
  });

  test("paid, then part of the payment returned by the bank: the PSA hears the invoice is partly open again", async () => {
    s = await startEaStack();
    await sendAndDraft("SEK");
    await pay();
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 2 }); // sent, paid
    await pay(-10000);
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 1 });
    await waitFor("three changes at the PSA", () => s!.psa.accepted().length === 3);
    expect(s.psa.accepted().map((i) => [i.type, i.data.previousStatus, i.data.status, i.data.remainder])).toEqual([
      ["invoice.sent", "draft", "sent", 0],
      ["invoice.paid", "sent", "paid", 0],
      ["invoice.status_changed", "paid", "partially_paid", 1000000],
    ]);
  });
});

describe("an invoice sent in eAccounting before kontobro linked its draft", () => {
  test("its number reaches the PSA once the draft is linked, though the invoices pull read it before (watermark past it)", async () => {
    s = await startEaStack();
    await s.send(masterData());
    await s.waitDone(2);
    // The draft is made but its answer is lost; the attempts after it cannot look it up yet, so no link is stored.
    // The first attempt's own lookup (every first push looks) goes through; the draft POST is slowed until the
    // lookups after it are refused.
    await s.control("faults", [
      { method: "POST", path: "/v2/customerinvoicedrafts$", fault: "latency", latencyMs: 1000 },
      { method: "POST", path: "/v2/customerinvoicedrafts$", fault: "drop_after_commit" },
    ]);
    await s.control("requests", undefined, "DELETE");
    await s.send([ev("invoice.finalized", invoiceData())]);
    await waitFor("the first attempt's lookup", async () => (await s!.control("requests")).families["GET /v2/customerinvoices"]);
    await s.control("faults", [{ method: "GET", path: "/v2/customerinvoicedrafts", fault: "503", count: 100_000 }]);
    await waitFor("the draft made, unlinked", async () => (await s!.state()).drafts.length === 1);
    // A person sends the draft meanwhile; the pulls read the invoice while no link names it, and move on.
    await s.control("send-draft", { reference: ["ElectronicReference", "kontobro:psa-inv-20001"] });
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 0 });
    await s.control("clock", { advanceMs: 400_000 }); // past overlap_seconds (300)
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 0 });
    expect((await s.deliveries("done")).some((d: any) => d.entity === "invoice")).toBe(false);
    // The lookup works again: the attempt finds the invoice made from its draft and links it.
    await s.control("faults", undefined, "DELETE");
    await s.waitDone(3);
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 1 });
    expect(await s.runNow("invoices")).toMatchObject({ status: "ok", imported: 0 });
    await waitFor("sent at the PSA", () => accepted("invoice.sent").length === 1);
    expect(accepted("invoice.sent")[0].data).toMatchObject({ invoiceNumber: "20001", eaccountingInvoiceNumber: 1001, status: "sent" });
  });
});

describe("a line's VAT code", () => {
  const withVatCode = () =>
    invoiceData({
      lines: [
        { text: "Konsulttimmar april", quantity: 37.5, unitPrice: 125000, kind: "hours" },
        { text: "Kursavgift", quantity: 1, unitPrice: 500000, kind: "expenses", vatCode: "0" },
      ],
    });

  test("eAccounting books the article's VAT, so a line carrying a VAT code needs action, naming it; nothing is sent", async () => {
    s = await startEaStack();
    await s.send([...masterData(), ev("invoice.finalized", withVatCode())]);
    const d = await waitFor("the invoice needs action", async () =>
      (await s!.deliveries("needs_action")).find((x: any) => x.entity === "invoice"),
    );
    expect(d.errorCode).toBe("eaccounting.line_vat_code");
    expect(d.errorMessage).toContain('line 2 ("Kursavgift") carries VAT code 0');
    expect(d.errorMessage).toContain("article 100's account coding");
    expect(d.errorHint).toContain('line_vat_code = "ignore"');
    expect((await s.state()).drafts).toHaveLength(0);
  });

  test('with line_vat_code = "ignore" the operator accepts the article\'s VAT: the invoice is drafted', async () => {
    s = await startEaStack({ target: { line_vat_code: "ignore" } });
    await s.send([...masterData(), ev("invoice.finalized", withVatCode())]);
    await s.waitDone(3);
    expect((await s.state()).drafts).toHaveLength(1);
  });
});

describe("a line's account", () => {
  const withAccount = () =>
    invoiceData({
      lines: [
        { text: "Konsulttimmar april", quantity: 37.5, unitPrice: 125000, kind: "hours" },
        { text: "Licens", quantity: 1, unitPrice: 500000, kind: "products", account: "3010" },
      ],
    });

  test("eAccounting books the article's coding sales account, so a line carrying an account needs action, naming it; nothing is sent", async () => {
    s = await startEaStack();
    await s.send([...masterData(), ev("invoice.finalized", withAccount())]);
    const d = await waitFor("the invoice needs action", async () =>
      (await s!.deliveries("needs_action")).find((x: any) => x.entity === "invoice"),
    );
    expect(d.errorCode).toBe("eaccounting.line_account");
    expect(d.errorMessage).toContain('line 2 ("Licens") carries account 3010, but eAccounting has no account on a line');
    expect(d.errorMessage).toContain("sales account of article 100's account coding");
    expect(d.errorHint).toContain('line_account = "ignore"');
    expect((await s.state()).drafts).toHaveLength(0);
  });

  test('with line_account = "ignore" the operator accepts the article\'s account: the invoice is drafted', async () => {
    s = await startEaStack({ target: { line_account: "ignore" } });
    await s.send([...masterData(), ev("invoice.finalized", withAccount())]);
    await s.waitDone(3);
    expect((await s.state()).drafts).toHaveLength(1);
  });
});

describe("credit notes", () => {
  const credit = () =>
    ev("invoice.credited", {
      ...invoiceData({ number: "20002", psaId: "psa-cn-20002" }),
      creditedInvoiceNumber: "20001",
      lines: [{ text: "Rabatt", quantity: 2, unitPrice: 125000 }],
    });

  test("not transferred: needs action with the hint, nothing sent", async () => {
    s = await startEaStack();
    await s.send([...masterData(), ev("invoice.finalized", invoiceData()), credit()]);
    const d = await waitFor("the credit note needs action", async () =>
      (await s!.deliveries("needs_action")).find((x: any) => x.key === "20002"),
    );
    expect(d.errorCode).toBe("eaccounting.credit_note_not_transferred");
    expect(d.errorHint).toContain("Credit the invoice in eAccounting");
    expect((await s.state()).drafts).toHaveLength(1);
  });

  test('with credit_notes = "draft": a credit invoice draft with the customer\'s negative quantities', async () => {
    s = await startEaStack({ target: { credit_notes: "draft" } });
    await s.send([...masterData(), ev("invoice.finalized", invoiceData()), credit()]);
    await s.waitDone(4);
    const cn = (await s.state()).drafts.find((d: any) => d.ElectronicReference === "kontobro:psa-cn-20002");
    expect(cn).toMatchObject({ IsCreditInvoice: true, TotalAmount: -3125 });
    expect(cn.Rows.filter((r: any) => !r.IsTextRow).map((r: any) => r.Quantity)).toEqual([-2]);
  });
});

describe("supplier invoices to project costs", () => {
  test("rows with a project come as expenses, pulled twice in one week without duplicates; other weeks, drafts and deleted ones are not", async () => {
    s = await startEaStack({ target: { expenses: { billable: false, activity: "Utlägg" } } });
    await s.send([...masterData(), ev("project.upserted", projectData({ number: "P24018", name: "Second project" }))]);
    await s.waitDone(3);
    const item = (await s.state()).costCenters.find((c: any) => c.Number === 1).Items.find((i: any) => i.ShortName === "P24017");
    const eaProject = await s.control("projects", { Number: "P24018", Name: "Second project" });
    const row = (amount: number, extra: object = {}) => ({
      AccountNumber: 5830,
      DebetAmount: amount,
      CreditAmount: 0,
      TransactionText: "Hotell",
      ...extra,
    });
    const booked = await s.control("supplier-invoices", {
      invoices: [
        {
          SupplierName: "Hotel Bergen AS",
          SupplierNumber: "S1",
          InvoiceNumber: "H-1",
          InvoiceDate: `${today()}T00:00:00`,
          Rows: [
            row(1984, { CostCenterItemId1: item.Id }),
            { AccountNumber: 2641, DebetAmount: 496, TransactionText: "Moms" },
            { AccountNumber: 2440, CreditAmount: 2480, TransactionText: "Leverantörsskuld" },
          ],
        },
        {
          SupplierName: "SJ AB",
          InvoiceNumber: "T-9",
          InvoiceDate: `${addDays(today(), -7)}T00:00:00`,
          Rows: [row(450, { ProjectId: eaProject.Id }), row(100)],
        },
        {
          SupplierName: "Old AB",
          InvoiceNumber: "O-1",
          InvoiceDate: `${addDays(today(), -30)}T00:00:00`,
          Rows: [row(999, { CostCenterItemId1: item.Id })],
        },
        {
          SupplierName: "Draft AB",
          InvoiceNumber: "D-1",
          Status: 0,
          InvoiceDate: `${today()}T00:00:00`,
          Rows: [row(50, { CostCenterItemId1: item.Id })],
        },
      ],
    });
    await s.control("clock", { advanceMs: 1000 }); // entered before the first run (the server's clock counts seconds)
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 2, duplicates: 0 });
    // Later the same week: a new one and the same ones again.
    await s.control("clock", { advanceMs: 3_600_000 });
    await s.control("supplier-invoices", {
      SupplierName: "Taxi AB",
      InvoiceNumber: "X-2",
      InvoiceDate: `${today()}T00:00:00`,
      Rows: [row(300, { CostCenterItemId1: item.Id })],
    });
    await s.control(`supplier-invoices/${booked.booked[0].Id}`, { Status: 1 }, "PUT"); // touched again: still the same costs
    expect(await s.runNow("expenses")).toMatchObject({ imported: 1, duplicates: 2 });
    expect(await s.runNow("expenses")).toMatchObject({ imported: 0, duplicates: 3 });
    await waitFor("three expenses at the PSA", () => accepted("expense.posted").length === 3);
    const hotel = accepted("expense.posted").find((i) => i.data.supplier.name === "Hotel Bergen AS");
    expect(hotel).toMatchObject({
      requires: { entity: "project", key: "P24017" },
      data: {
        projectNumber: "P24017",
        activity: "Utlägg",
        billable: false,
        description: `${today()} ${booked.booked[0].VoucherNumber} Hotel Bergen AS`,
        date: today(),
        quantity: 1,
        unitCost: 198400,
        unitPrice: 198400,
        amount: 198400,
        vatRate: 25,
        supplierInvoiceNumber: "H-1",
      },
    });
    expect(accepted("expense.posted").find((i) => i.data.supplier.name === "SJ AB").data.projectNumber).toBe("P24018");
    expect(new Set(accepted("expense.posted").map((i) => i.remoteId)).size).toBe(3);
  });

  test("a supplier invoice entered after a run but dated before the window (late bookkeeping, days of downtime) still comes", async () => {
    s = await startEaStack();
    await s.send(masterData());
    await s.waitDone(2);
    const item = (await s.state()).costCenters.find((c: any) => c.Number === 1).Items.find((i: any) => i.ShortName === "P24017");
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 0 });
    await s.control("clock", { advanceMs: 3_600_000 }); // an hour later the bookkeeper enters last month's invoice
    await s.control("supplier-invoices", {
      SupplierName: "Late AB",
      InvoiceNumber: "L-1",
      InvoiceDate: `${addDays(today(), -30)}T00:00:00`,
      Rows: [{ AccountNumber: 5830, DebetAmount: 700, CreditAmount: 0, TransactionText: "Hyra", CostCenterItemId1: item.Id }],
    });
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 1 });
    expect(await s.runNow("expenses")).toMatchObject({ imported: 0, duplicates: 1 });
    await waitFor("the late cost at the PSA", () => accepted("expense.posted").length === 1);
    expect(accepted("expense.posted")[0].data).toMatchObject({ projectNumber: "P24017", amount: 70000, date: addDays(today(), -30) });
  });
});

describe("supplier costs changed or deleted after they were pulled", () => {
  test("a row's new amount reaches the PSA as expense.changed naming the cost, a deleted invoice as expense.cancelled; each once", async () => {
    s = await startEaStack();
    await s.send(masterData());
    await s.waitDone(2);
    const item = (await s.state()).costCenters.find((c: any) => c.Number === 1).Items.find((i: any) => i.ShortName === "P24017");
    const [booked] = (
      await s.control("supplier-invoices", {
        SupplierName: "Hotel Bergen AS",
        InvoiceNumber: "H-7",
        InvoiceDate: `${today()}T00:00:00`,
        Rows: [{ AccountNumber: 5830, DebetAmount: 1984, CreditAmount: 0, TransactionText: "Hotell", CostCenterItemId1: item.Id }],
      })
    ).booked;
    await s.control("clock", { advanceMs: 1000 });
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 1 });
    await waitFor("the cost at the PSA", () => accepted("expense.posted").length === 1);
    const posted = accepted("expense.posted")[0];
    // The bookkeeper corrects the amount: 1984 was a typo for 1894.
    await s.control("clock", { advanceMs: 3_600_000 });
    const rows = booked.Rows.map((r: any) => ({ ...r, DebetAmount: 1894 }));
    await s.control(`supplier-invoices/${booked.Id}`, { Rows: rows }, "PUT");
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 1, duplicates: 0 });
    expect(await s.runNow("expenses")).toMatchObject({ imported: 0, duplicates: 1 });
    await waitFor("the change at the PSA", () => accepted("expense.changed").length === 1);
    const changed = accepted("expense.changed")[0];
    expect(changed.id).not.toBe(posted.id);
    expect(changed.data).toMatchObject({ amount: 189400, projectNumber: "P24017", replaces: posted.id, replacesRemoteId: posted.remoteId });
    // Then the invoice is deleted (Status 2): the PSA is told the cost is gone, once.
    await s.control("clock", { advanceMs: 3_600_000 });
    await s.control(`supplier-invoices/${booked.Id}`, { Status: 2 }, "PUT");
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 1 });
    expect(await s.runNow("expenses")).toMatchObject({ imported: 0, duplicates: 1 });
    await waitFor("the cancellation at the PSA", () => accepted("expense.cancelled").length === 1);
    const cancelled = accepted("expense.cancelled")[0];
    expect(cancelled).toMatchObject({ requires: { entity: "project", key: "P24017" } });
    expect(cancelled.data).toMatchObject({ status: "deleted", replaces: posted.id, replacesRemoteId: posted.remoteId });
    expect(new Set([posted.id, changed.id, cancelled.id]).size).toBe(3);
    expect(
      s.psa
        .accepted()
        .filter((i) => i.type.startsWith("expense."))
        .map((i) => i.type),
    ).toEqual(["expense.posted", "expense.changed", "expense.cancelled"]);
  });
});

describe("supplier invoices read over several pages while one changes", () => {
  test("a row changed between two pages, on a server listing by ModifiedUtc, does not push the one behind it out of the run: each cost reaches the PSA", async () => {
    // eAccounting documents no order for lists; this sandbox sorts them by ModifiedUtc, so a changed row moves to the end.
    s = await startEaStack({ target: { expenses: { page_size: 2 } }, sandbox: { query: { order: "modified" } } });
    await s.send(masterData());
    await s.waitDone(2);
    const item = (await s.state()).costCenters.find((c: any) => c.Number === 1).Items.find((i: any) => i.ShortName === "P24017");
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok", imported: 0 }); // the first run: the window only
    // Three costs entered late, dated before the window: only a read of what changed since the last run finds them.
    await s.control("clock", { advanceMs: 3_600_000 });
    const cost = (n: string, amount: number) => ({
      SupplierName: "Hotel Bergen AS",
      InvoiceNumber: n,
      InvoiceDate: `${addDays(today(), -30)}T00:00:00`,
      Rows: [{ AccountNumber: 5830, DebetAmount: amount, CreditAmount: 0, TransactionText: "Hotell", CostCenterItemId1: item.Id }],
    });
    const { booked } = await s.control("supplier-invoices", { invoices: [cost("A-1", 100), cost("B-2", 200), cost("C-3", 300)] });
    await s.control("clock", { advanceMs: 3_600_000 }); // older than the next run's overlap
    // Page 2 is slow; while it is on its way the bookkeeper corrects A-1 (on page 1).
    await s.control("faults", [{ method: "GET", path: "/v2/supplierinvoices\\?\\$page=2&", fault: "latency", latencyMs: 1500 }]);
    const read = async () => (await s!.state()).requests.filter((r: any) => r.path.startsWith("/v2/supplierinvoices?") && r.status === 200);
    const readBefore = (await read()).length;
    const run = s.runNow("expenses");
    await waitFor("page 1 read", async () => (await read()).length > readBefore);
    await s.control("clock", { advanceMs: 1000 });
    await s.control(`supplier-invoices/${booked[0].Id}`, { Rows: booked[0].Rows.map((r: any) => ({ ...r, DebetAmount: 150 })) }, "PUT");
    expect(await run).toMatchObject({ status: "ok" });
    // The next run reads what changed since: A-1's new amount. One page: one request for the list.
    const before = (await read()).length;
    expect(await s.runNow("expenses")).toMatchObject({ status: "ok" });
    expect((await read()).length - before).toBe(1);
    await waitFor(
      "three costs and a change at the PSA",
      () => accepted("expense.posted").length >= 3 && accepted("expense.changed").length === 1,
    );
    expect(
      accepted("expense.posted")
        .map((i) => i.data.supplierInvoiceNumber)
        .sort(),
    ).toEqual(["A-1", "B-2", "C-3"]);
    expect(accepted("expense.changed")[0].data).toMatchObject({ supplierInvoiceNumber: "A-1", amount: 15000 });
  });
});

describe("the known errors before sending", () => {
  test("a 51-character name and a customer without city are refused with no request; the invoice waits for its customer and follows the fix", async () => {
    s = await startEaStack();
    await s.send([
      ev("customer.upserted", customerData({ name: "x".repeat(51) })),
      ev(
        "customer.upserted",
        customerData({
          number: "10043",
          name: "Utan stad AB",
          addresses: [{ kind: "invoice", street: "Gatan 1", zip: "11122", country: "SE" }],
        }),
      ),
      ev("project.upserted", projectData({ customerNumber: "10043" })),
      ev("invoice.finalized", invoiceData({ customerNumber: "10043" })),
    ]);
    const failed = await waitFor("two customers need action", async () => {
      const d = await s!.deliveries("needs_action");
      return d.length >= 2 ? d : null;
    });
    const byKey = Object.fromEntries(failed!.map((d: any) => [d.key, d]));
    expect(byKey["10042"]).toMatchObject({ errorCode: "eaccounting.too_long", errorField: "name" });
    expect(byKey["10042"].errorMessage).toContain("Customer 10042");
    expect(byKey["10043"]).toMatchObject({ errorCode: "eaccounting.address_missing", errorField: "addresses.0.city" });
    expect((await s.state()).requests.filter((r: any) => r.path.startsWith("/v2/customers") && r.method === "POST")).toHaveLength(0);
    // The PSA fixes the customer: it goes, and the project and invoice follow by themselves.
    await s.send([
      ev(
        "customer.upserted",
        customerData({
          number: "10043",
          name: "Utan stad AB",
          addresses: [{ kind: "invoice", street: "Gatan 1", zip: "11122", city: "Uppsala", country: "SE" }],
        }),
      ),
    ]);
    await waitFor("the invoice as a draft", async () => (await s!.state()).drafts.length === 1);
    expect((await s.state()).drafts[0]).toMatchObject({ InvoiceCity: "Uppsala", CustomerNumber: "10043" });
  });

  test("a line text over eAccounting's 2,000 characters and a reference over its 100 are refused before any draft, never cut", async () => {
    s = await startEaStack();
    const long = "Konsulttimmar, ".repeat(133) + "april"; // 2,000 characters: fits
    await s.send([
      ...masterData(),
      ev(
        "invoice.finalized",
        invoiceData({
          yourReference: "O".repeat(101),
          lines: [
            { text: long, quantity: 37.5, unitPrice: 125000, kind: "hours" },
            { text: `${long}!`, quantity: 1, unitPrice: 198400, kind: "expenses" },
          ],
        }),
      ),
    ]);
    const failed = await waitFor("the invoice needs action", async () =>
      (await s!.deliveries("needs_action")).find((d: any) => d.entity === "invoice"),
    );
    expect(failed).toMatchObject({ errorCode: "eaccounting.too_long", errorField: "yourReference" });
    expect(failed.errorMessage).toContain("2001 characters; eAccounting takes at most 2000");
    expect(failed.errorMessage).toContain("the text of line 2");
    expect(failed.errorMessage).toContain("your reference is 101 characters; eAccounting takes at most 100");
    expect((await s.state()).drafts).toHaveLength(0);
  });

  test("an invoice's PDF, which kontobro does not attach in eAccounting, is said in the note, never dropped silently", async () => {
    s = await startEaStack();
    await s.send([
      ...masterData(),
      ev("invoice.finalized", invoiceData({ pdf: { filename: "20001.pdf", contentBase64: "JVBERi0xLjQK" } })),
    ]);
    await s.waitDone(3);
    const inv = (await s.deliveries("done")).find((d: any) => d.entity === "invoice");
    expect(inv.note).toContain("20001.pdf was not attached");
  });

  test("with reference_field = OurReference, the PSA's own our reference (displaced by the marker) is said in the note, never dropped silently", async () => {
    s = await startEaStack({ target: { reference_field: "OurReference" } });
    await s.send([...masterData(), ev("invoice.finalized", invoiceData())]);
    await s.waitDone(3);
    const inv = (await s.deliveries("done")).find((d: any) => d.entity === "invoice");
    const [draft] = (await s.state()).drafts;
    expect(draft).toMatchObject({ OurReference: "kontobro:psa-inv-20001", YourReference: "Ole Olsen" });
    expect(inv.note).toContain(`The PSA's our reference "Kari Nordmann" was not sent: OurReference carries kontobro's marker`);
    expect(inv.note).not.toContain("your reference");
  });
});
