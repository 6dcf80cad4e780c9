// End to end over loopback: e-conomic sandbox ledger → scheduled pull → inbox → PSA (signed webhook
// and the feed). Expenses as the knowledge base describes them, and invoice payment status.
import { afterEach, describe, expect, test } from "bun:test";
import { invoiceEvent, projectEvent, waitFor } from "./helpers.ts";
import { day, PDF, seedPsa, startPullStack, type PullStack } from "./pull-harness.ts";

let stack: PullStack;
afterEach(async () => {
  await stack?.stop();
});

const line = (account: number, amount: number, projectNumber?: number, costTypeNumber?: number) => ({
  account,
  amount,
  vatCode: "I25",
  ...(projectNumber ? { projectNumber } : {}),
  ...(costTypeNumber ? { costTypeNumber } : {}),
});
/** Everything pulled: the feed (deliverable items) and the items kept as ignored, which the feed leaves out. */
const feedAll = async (query = "") =>
  [
    ...(await stack.api(`/api/v1/inbox?limit=1000${query}`)).body.items,
    ...(await stack.api(`/api/v1/inbox/ignored?limit=1000${query}`)).body.items,
  ] as any[];

describe("e-conomic expenses to the PSA", () => {
  test("a daily pull imports exactly the right entries, once, including ones booked after the last run and dated before its window", async () => {
    stack = await startPullStack({
      economic: { expenses: { accounts: "2800, 2810", cost_types: "1, 2", activity: "Udlæg", billable: true } },
    });
    // One accounting year around today for every date used: on 1-5 January the calendar's would put some of them in
    // the year before, which the first run never read (its window is in this year), and the late one would not come.
    for (const y of new Set([day(-5), day(0)].map((d) => d.slice(0, 4))))
      expect((await fetch(`${stack.sandbox.url}/__sandbox/accounting-years/${y}`, { method: "DELETE" })).status).toBe(204);
    await stack.control("accounting-years/2090", { fromDate: day(-40), toDate: day(40) }, "PUT");
    await seedPsa(stack);
    const { booked } = await stack.book([
      {
        date: day(-1),
        supplierNumber: 1,
        supplierInvoiceNumber: "F-100",
        text: "Cement",
        lines: [line(2800, 1250, 4711, 1)],
        attachment: { fileName: "f100.pdf", contentBase64: PDF.toString("base64") },
      },
      { date: day(-1), supplierNumber: 2, text: "Travel", lines: [line(2820, 300, 4711, 1)] }, // account not configured
      { date: day(-1), supplierNumber: 2, text: "Cables", lines: [line(2810, 300, 4712, 3)] }, // cost type not configured
      { date: day(0), supplierNumber: 3, text: "Unknown project", lines: [line(2800, 500, 9999, 2)] },
      { date: day(-5), supplierNumber: 1, text: "Too old", lines: [line(2800, 100, 4711, 1)] }, // outside the two-day lookback
      { date: day(0), supplierNumber: 1, text: "Split", lines: [line(2800, 400, 4711, 1), line(2810, 600, 4712, 2)] },
      { date: day(-1), supplierNumber: 1, text: "Overhead", lines: [line(2800, 200, undefined, 1)] }, // no project
    ]);
    const v = booked.map((b: any) => b.voucherNumber);

    const first = await stack.runNow("expenses");
    expect(first).toMatchObject({ status: "ok", imported: 3, ignored: 1, duplicates: 0 });
    const items = await feedAll();
    expect(items.map((i) => `${i.data.voucherNumber}/${i.data.projectNumber}`).sort()).toEqual(
      [`${v[0]}/4711`, `${v[3]}/9999`, `${v[5]}/4711`, `${v[5]}/4712`].sort(),
    );
    expect(items.find((i) => i.data.projectNumber === "9999").state).toBe("ignored_unknown_project");

    // The PSA got the three on known projects, signed, with every field, and the receipt.
    await waitFor("three expenses at the PSA", () => stack.psa.accepted().length === 3);
    expect(stack.psa.calls.every((c) => c.verified)).toBe(true);
    const cement = stack.psa.accepted().find((i) => i.data.voucherNumber === v[0]);
    expect(cement).toMatchObject({
      type: "expense.posted",
      target: "eco",
      state: "new",
      requires: { entity: "project", key: "4711" },
      data: {
        projectNumber: "4711",
        activity: "Udlæg",
        billable: true,
        description: "Cement",
        amount: 125000,
        amountExclVat: 100000,
        vatAmount: 25000,
        currency: "DKK",
        invoiceDate: day(-1),
        supplier: { number: 1, name: "Byggmakker A/S" },
        supplierInvoiceNumber: "F-100",
        accountNumber: 2800,
        costTypeNumber: 1,
      },
      attachment: { filename: `voucher-${booked[0].accountingYear}-${v[0]}.pdf`, contentType: "application/pdf" },
    });
    expect(Buffer.from(cement.attachment.contentBase64, "base64").equals(PDF)).toBe(true);
    expect(
      stack.psa
        .accepted()
        .filter((i) => i.data.voucherNumber === v[5])
        .map((i) => i.data.amount)
        .sort(),
    ).toEqual([40000, 60000]);

    // Booked late: one dated yesterday (inside the lookback), one three days ago (outside it, booked after the first
    // run: a cost the PSA must still re-invoice). The one dated five days ago was booked before the first run.
    const late = await stack.book([
      { date: day(-1), supplierNumber: 2, text: "Late but in time", lines: [line(2810, 125, 4712, 2)] },
      { date: day(-3), supplierNumber: 2, text: "Late and dated back", lines: [line(2810, 125, 4712, 2)] },
    ]);
    const second = await stack.runNow("expenses");
    expect(second).toMatchObject({ status: "ok", imported: 2, duplicates: 3, ignored: 1 });
    const after = await feedAll();
    expect(after).toHaveLength(6);
    expect(after.filter((i) => i.data.voucherNumber === late.booked[0].voucherNumber)).toHaveLength(1);
    expect(after.filter((i) => i.data.voucherNumber === late.booked[1].voucherNumber)).toHaveLength(1);
    expect(after.filter((i) => i.data.voucherNumber === v[4])).toHaveLength(0);
    expect(new Set(after.map((i) => i.remoteId)).size).toBe(6);

    // The PSA creates project 9999: the next pull delivers the entry it ignored before, once.
    await stack.sendPsa([projectEvent(9999, 10042)]);
    expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 1, ignored: 0 });
    expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 0 });
    await waitFor("six expenses at the PSA", () => stack.psa.accepted().length === 6);
    expect(stack.psa.accepted().filter((i) => i.data.projectNumber === "9999")).toHaveLength(1);
    const runs = (await stack.api("/api/v1/pulls")).body.jobs.find((j: any) => j.stream === "expenses").runs;
    expect(runs.map((r: any) => [r.trigger, r.status])).toEqual([
      ["manual", "ok"],
      ["manual", "ok"],
      ["manual", "ok"],
      ["manual", "ok"],
    ]);
    const metrics = await (await fetch(`${stack.agent.url}/metrics`)).text();
    expect(metrics).toContain('kontobro_pull_last_run_ok{target="eco",stream="expenses"} 1');
    expect(metrics).toContain('kontobro_pull_last_run_imported{target="eco",stream="expenses"} 0');
    expect(metrics).toMatch(/kontobro_inbox_items\{target="eco",state="delivered"\} 6/);
  });

  test("a year with no entry yet when a run reads it: an entry booked into it after that run, dated before the next run's window, still reaches the PSA", async () => {
    stack = await startPullStack({ economic: { expenses: { accounts: "", cost_types: "", lookback_days: 0 } } });
    // One accounting year around today (the calendar's may split yesterday from today in January), empty.
    for (const y of new Set([day(-1), day(0)].map((d) => d.slice(0, 4))))
      expect((await fetch(`${stack.sandbox.url}/__sandbox/accounting-years/${y}`, { method: "DELETE" })).status).toBe(204);
    await stack.control("accounting-years/2090", { fromDate: day(-40), toDate: day(40) }, "PUT");
    await seedPsa(stack, [4711]);
    expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 0 });
    // Booked after the run, dated yesterday: before the next run's window (lookback 0: today only).
    const { booked } = await stack.book([{ date: day(-1), supplierNumber: 1, text: "Dated back", lines: [line(2800, 100, 4711, 1)] }]);
    expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 1 });
    expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 0 });
    expect((await feedAll()).map((i) => i.data.voucherNumber)).toEqual([booked[0].voucherNumber]);
  });

  test("blank account and cost type lists mean all; an entry with no project is never an expense", async () => {
    stack = await startPullStack({ economic: { expenses: { accounts: "", cost_types: "", lookback_days: 0 } } });
    await seedPsa(stack, [4711]);
    await stack.book([
      { date: day(0), supplierNumber: 1, lines: [line(2820, 100, 4711, 7)] },
      { date: day(0), supplierNumber: 1, lines: [line(3600, 100, 4711)] },
      { date: day(0), supplierNumber: 1, lines: [line(3600, 100)] },
      { date: day(-1), supplierNumber: 1, lines: [line(2800, 100, 4711, 1)] }, // lookback 0: today only
    ]);
    expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 2, ignored: 0 });
    expect((await feedAll()).map((i) => i.data.accountNumber).sort()).toEqual([2820, 3600]);
  });
});

describe("invoice payment status to the PSA", () => {
  test("sent, overdue and paid are pulled for invoices kontobro booked, each change once", async () => {
    stack = await startPullStack();
    await seedPsa(stack, [], [20001, 20002]);
    for (const n of [20001, 20002]) await stack.control(`invoices/booked/${n}`, { dueDate: day(30) }, "PATCH");
    expect(await stack.runNow("payments")).toMatchObject({ status: "ok", fetched: 2, imported: 0 }); // unpaid: the PSA knows that

    await stack.control("invoices/booked/20001", { sent: true }, "PATCH");
    await stack.control("invoices/booked/20002", { dueDate: day(-10) }, "PATCH");
    expect(await stack.runNow("payments")).toMatchObject({ imported: 2 });
    await stack.control("payments", { invoice: 20002, amount: 100 });
    expect(await stack.runNow("payments")).toMatchObject({ imported: 1, duplicates: 1 }); // 20002 partly paid
    await stack.control("payments", { invoice: 20001 });
    expect(await stack.runNow("payments")).toMatchObject({ imported: 1 });
    // Paid is still asked for a while (a payment can be reversed); unchanged, it gives nothing.
    expect(await stack.runNow("payments")).toMatchObject({ fetched: 2, imported: 0, duplicates: 2 });

    await waitFor("four status items at the PSA", () => stack.psa.accepted().length === 4);
    const got = stack.psa.accepted().map((i) => [i.type, i.data.invoiceNumber, i.data.previousStatus, i.data.status]);
    expect(got.sort()).toEqual([
      ["invoice.paid", "20001", "sent", "paid"],
      ["invoice.status_changed", "20001", "unpaid", "sent"],
      ["invoice.status_changed", "20002", "overdue", "partially_paid"],
      ["invoice.status_changed", "20002", "unpaid", "overdue"],
    ]);
    const paid = stack.psa.accepted().find((i) => i.type === "invoice.paid");
    expect(paid.data).toMatchObject({ remainder: 0, currency: "NOK" });
    expect(paid.data.amount).toBeGreaterThan(0);
  });

  test("paid in parts at e-conomic: each part reaches the PSA once, with what is paid and what is left, then paid", async () => {
    stack = await startPullStack();
    await seedPsa(stack, [], [20008]);
    await stack.control("invoices/booked/20008", { dueDate: day(30), sent: true }, "PATCH");
    const total = (await stack.control("payments", { invoice: 20008, amount: 30 })).remainder + 30;
    expect(await stack.runNow("payments")).toMatchObject({ status: "ok", imported: 1 });
    expect(await stack.runNow("payments")).toMatchObject({ imported: 0, duplicates: 1 }); // unchanged: nothing new
    await stack.control("payments", { invoice: 20008, amount: 20 }); // a second part, as large as the first would be no matter
    expect(await stack.runNow("payments")).toMatchObject({ imported: 1 });
    await stack.control("payments", { invoice: 20008, amount: -20 }); // the bank returned the second part
    expect(await stack.runNow("payments")).toMatchObject({ imported: 1 });
    await stack.control("payments", { invoice: 20008 }); // the rest
    expect(await stack.runNow("payments")).toMatchObject({ imported: 1 });

    await waitFor("four changes at the PSA", () => stack.psa.accepted().length === 4);
    const minor = (x: number) => Math.round(x * 100);
    expect(stack.psa.accepted().map((i) => [i.type, i.data.previousStatus, i.data.status, i.data.paidAmount, i.data.remainder])).toEqual([
      ["invoice.status_changed", "unpaid", "partially_paid", 3000, minor(total - 30)],
      ["invoice.status_changed", "partially_paid", "partially_paid", 5000, minor(total - 50)],
      ["invoice.status_changed", "partially_paid", "partially_paid", 3000, minor(total - 30)],
      ["invoice.paid", "partially_paid", "paid", minor(total), 0],
    ]);
    const ids = stack.psa.accepted().map((i) => i.id);
    expect(new Set(ids).size).toBe(4); // the reversal brought back an earlier remainder, as its own item
    expect(stack.psa.accepted()[0].data).toMatchObject({ amount: minor(total), currency: "NOK", overdue: false });
  });

  test("paid, then the payment reversed at e-conomic: the PSA hears the invoice is open again", async () => {
    stack = await startPullStack();
    await seedPsa(stack, [], [20005]);
    await stack.control("invoices/booked/20005", { dueDate: day(30), sent: true }, "PATCH");
    await stack.control("payments", { invoice: 20005 });
    expect(await stack.runNow("payments")).toMatchObject({ status: "ok", imported: 1 }); // paid
    const { remainder } = await stack.control("payments", { invoice: 20005, amount: -100 }); // the bank returned it
    expect(remainder).toBe(100);
    expect(await stack.runNow("payments")).toMatchObject({ status: "ok", imported: 1 });
    await waitFor("both changes at the PSA", () => stack.psa.accepted().length === 2);
    expect(stack.psa.accepted().map((i) => [i.type, i.data.previousStatus, i.data.status, i.data.remainder])).toEqual([
      ["invoice.paid", "unpaid", "paid", 0],
      ["invoice.status_changed", "paid", "partially_paid", 10000], // 100 of it is open again
    ]);
  });

  test("a fully credited invoice is not reported overdue, and credit notes are not asked about", async () => {
    stack = await startPullStack();
    await seedPsa(stack, [], [20006, 20007]);
    const creditOf = (n: number, credited: number, share: number) => ({
      id: `cn-${n}`,
      type: "invoice.credited",
      data: {
        ...invoiceEvent(n, 10042).data,
        psaId: `PSA-CN-${n}`,
        creditedInvoiceNumber: credited,
        lines: invoiceEvent(n, 10042).data.lines.map((l) => ({ ...l, quantity: l.quantity * share })),
      },
    });
    // 20006 credited in full (in two halves), 20007 by half: both were due ten days ago and e-conomic's ledger keeps
    // their remainders open until someone matches the entries there.
    await stack.sendPsa([creditOf(20016, 20006, 0.5), creditOf(20017, 20006, 0.5), creditOf(20018, 20007, 0.5)]);
    await waitFor(
      "credit notes booked",
      async () => (await stack.api("/api/v1/deliveries?status=done&limit=1000")).body.deliveries.length >= 6,
    );
    for (const n of [20006, 20007]) await stack.control(`invoices/booked/${n}`, { dueDate: day(-10), sent: true }, "PATCH");
    expect(await stack.runNow("payments")).toMatchObject({ status: "ok", fetched: 1, imported: 1 });
    await waitFor("the change at the PSA", () => stack.psa.accepted().length === 1);
    expect(stack.psa.accepted().map((i) => [i.data.invoiceNumber, i.data.status])).toEqual([["20007", "overdue"]]);
  });

  test("an invoice the PSA sent but kontobro never booked is not asked for", async () => {
    stack = await startPullStack();
    await seedPsa(stack, [], [20003]);
    await stack.sendPsa([invoiceEvent(20004, 999)]); // waits for its customer: never booked
    expect(await stack.runNow("payments")).toMatchObject({ status: "ok", fetched: 1 });
  });
});

describe("the PSA webhook down for long", () => {
  test("items it keeps refusing are told, and the alert is resolved once it takes them", async () => {
    const notices: any[] = [];
    const chat = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        notices.push(await req.json());
        return new Response("ok");
      },
    });
    try {
      stack = await startPullStack({
        notifications: { webhook: { url: `http://127.0.0.1:${chat.port}/hook` }, check_interval_seconds: 0.05, min_interval_minutes: 0 },
        psa: { retry_base_ms: 1, retry_max_ms: 5 },
      });
      stack.psa.down(true);
      await seedPsa(stack, [], [20001]);
      await stack.control("invoices/booked/20001", { sent: true }, "PATCH");
      expect(await stack.runNow("payments")).toMatchObject({ imported: 1 });
      const told = await waitFor("a notice about the PSA webhook", () => notices.find((n) => /PSA webhook/.test(JSON.stringify(n))));
      expect(JSON.stringify(told)).toContain("has not taken 1 item(s) pulled from eco");
      stack.psa.down(false);
      await waitFor("the item at the PSA", () => stack.psa.accepted().length === 1);
      await waitFor("the alert resolved", () => notices.some((n) => JSON.stringify(n).includes("the PSA webhook takes the items again")));
    } finally {
      chat.stop(true);
    }
  }, 30_000);
});

describe("the feed", () => {
  test("pages in order with a stable cursor; reading past items acknowledges them", async () => {
    stack = await startPullStack({ psa: { webhook_url: undefined } });
    await seedPsa(stack, [4711]);
    await stack.book(
      [1, 2, 3, 4, 5].map((n) => ({ date: day(0), supplierNumber: 1, text: `E${n}`, lines: [line(2800, 100 * n, 4711, 1)] })),
    );
    expect(await stack.runNow("expenses")).toMatchObject({ imported: 5 });
    const seen: any[] = [];
    let cursor = "0";
    for (let page = 0; page < 10; page++) {
      const { status, body } = await stack.api(`/api/v1/inbox?after=${cursor}&limit=2`);
      expect(status).toBe(200);
      seen.push(...body.items);
      expect(body.items.every((i: any) => i.state === "new")).toBe(true); // not acknowledged until read past
      cursor = body.next;
      if (!body.more) break;
    }
    expect(seen.map((i) => i.data.description)).toEqual(["E1", "E2", "E3", "E4", "E5"]);
    expect(seen.map((i) => i.seq)).toEqual([...seen.map((i) => i.seq)].sort((a, b) => a - b));
    // Nothing new: the same cursor comes back; everything read is now delivered.
    const idle = (await stack.api(`/api/v1/inbox?after=${cursor}&limit=2`)).body;
    expect(idle).toEqual({ items: [], next: cursor, more: false });
    expect((await feedAll()).map((i) => [i.state, i.deliveredAt !== undefined])).toEqual(Array(5).fill(["delivered", true]));
    // A new item appears after the cursor, once.
    await stack.book([{ date: day(0), supplierNumber: 1, text: "E6", lines: [line(2800, 600, 4711, 1)] }]);
    await stack.runNow("expenses");
    const next = (await stack.api(`/api/v1/inbox?after=${cursor}&limit=2`)).body;
    expect(next.items.map((i: any) => i.data.description)).toEqual(["E6"]);
    expect(Number(next.next)).toBeGreaterThan(Number(cursor));
    // The receipt link, and bad requests.
    expect((await stack.api(`/api/v1/inbox/${seen[0].id}/attachment`)).status).toBe(404);
    expect((await stack.api("/api/v1/inbox?after=abc")).body).toMatchObject({ error: "bad_request", field: "after" });
    expect((await stack.api("/api/v1/inbox?limit=5000")).status).toBe(400);
    expect((await fetch(`${stack.agent.url}/api/v1/inbox`)).status).toBe(401);
  });

  test("a feed cursor beyond the newest item (restored backup, reinstall) is refused, not silently acknowledged", async () => {
    stack = await startPullStack();
    const res = await stack.api("/api/v1/inbox?after=5000");
    expect(res.status).toBe(409);
    expect(res.body.hint).toContain("after=0");
  });
});
