// The e-conomic sandbox's ledger over HTTP: accounting years and booked entries (e-conomic's filters),
// suppliers, VAT accounts, voucher receipts, paid/unpaid/overdue invoices, and webhooks it calls.
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { silentLogger } from "../agent/log.ts";
import { economic } from "../connectors/economic/index.ts";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { waitFor } from "./helpers.ts";

const sandbox = await startEconomicSandbox({ port: 0 });
afterAll(async () => {
  await sandbox.stop();
});
beforeEach(async () => {
  await fetch(`${sandbox.url}/__sandbox/reset`, { method: "POST" });
});

const AUTH = { "X-AppSecretToken": "demo-app-secret", "X-AgreementGrantToken": "demo-agreement-grant", "content-type": "application/json" };
const get = async (path: string) => {
  const res = await fetch(`${sandbox.url}${path}`, { headers: AUTH });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
};
const control = async (path: string, body: unknown, method = "POST") => {
  const res = await fetch(`${sandbox.url}/__sandbox/${path}`, {
    method,
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  return { status: res.status, body: (await res.json()) as any };
};
const year = String(new Date().getUTCFullYear());
const date = `${year}-06-15`;

describe("e-conomic sandbox: ledger", () => {
  test("booking a supplier invoice makes cost (net, project, cost type), VAT and supplier (gross) entries", async () => {
    const res = await control("book/supplier-invoices", {
      vouchers: [
        {
          date,
          supplierNumber: 2,
          supplierInvoiceNumber: "F-7",
          text: "Cables",
          dueDate: `${year}-07-01`,
          lines: [{ account: 2810, amount: 1250, vatCode: "I25", projectNumber: 4711, costTypeNumber: 2 }],
        },
      ],
    });
    expect(res.status).toBe(201);
    const [{ voucherNumber, entryNumbers }] = res.body.booked;
    expect(entryNumbers).toEqual([1, 2, 3]);
    const { body } = await get(`/accounting-years/${year}/entries?filter=voucherNumber$eq:${voucherNumber}`);
    expect(body.collection.map((e: any) => [e.account.accountNumber, e.amount])).toEqual([
      [2810, 1000],
      [7300, 250],
      [6800, -1250],
    ]);
    expect(body.collection[0]).toMatchObject({
      entryType: "supplierInvoice",
      project: { projectNumber: 4711 },
      costType: { costTypeNumber: 2 },
      vatAccount: { vatCode: "I25" },
      date,
    });
    expect(body.collection[2]).toMatchObject({
      supplier: { supplierNumber: 2 },
      supplierInvoiceNumber: "F-7",
      remainder: -1250,
      dueDate: `${year}-07-01`,
    });
    expect(body.collection[0].self).toBe(`${sandbox.url}/accounting-years/${year}/entries/1`);
  });

  test("entries follow e-conomic's filters, sort and paging; account is not filterable there", async () => {
    await control("book/supplier-invoices", {
      vouchers: [1, 2, 3].map((n) => ({
        date: `${year}-06-${10 + n}`,
        supplierNumber: 1,
        lines: [{ account: 2800, amount: 100, projectNumber: 4711, costTypeNumber: n }],
      })),
    });
    const f = encodeURIComponent(
      `date$gte:${year}-06-12$and:entryNumber$gt:0$and:(entryType$eq:supplierInvoice$or:entryType$eq:financeVoucher)$and:costType.costTypeNumber$in:[2,3]`,
    );
    const page = await get(`/accounting-years/${year}/entries?filter=${f}&sort=entryNumber&pagesize=1`);
    expect(page.body.collection.map((e: any) => e.costType.costTypeNumber)).toEqual([2]);
    expect(page.body.pagination.results).toBe(2);
    expect(page.body.pagination.nextPage).toContain("skippages=1");
    expect((await get(`/accounting-years/${year}/entries?filter=account.accountNumber$eq:2800`)).status).toBe(400);
    expect((await get(`/accounting-years/1999/entries`)).status).toBe(404);
    const years = await get(`/accounting-years?filter=${encodeURIComponent(`toDate$gte:${year}-03-01$and:fromDate$lte:${year}-03-01`)}`);
    expect(years.body.collection.map((y: any) => [y.year, y.entries])).toEqual([[year, `${sandbox.url}/accounting-years/${year}/entries`]]);
  });

  test("suppliers, VAT accounts and accounts; new routes need both tokens", async () => {
    expect((await get("/suppliers/1")).body).toMatchObject({ supplierNumber: 1, name: "Byggmakker A/S" });
    expect((await get("/suppliers/99")).status).toBe(404);
    expect((await get("/vat-accounts")).body.collection.find((v: any) => v.vatCode === "I25")).toMatchObject({
      ratePercentage: 25,
      account: { accountNumber: 7300 },
    });
    expect((await get("/accounts/2800")).body.name).toBe("Materialer til projekter");
    expect((await fetch(`${sandbox.url}/accounting-years`)).status).toBe(401);
    expect((await control("suppliers", { supplierNumber: 9, name: "Ny leverandør" })).status).toBe(201);
    expect((await get("/suppliers/9")).body.name).toBe("Ny leverandør");
  });

  test("a voucher's receipt, and the hook's input checks", async () => {
    const pdf = Buffer.from("%PDF-1.4 receipt");
    const res = await control("book/supplier-invoices", {
      journal: 1,
      vouchers: [
        {
          date,
          supplierNumber: 1,
          lines: [{ account: 2800, amount: 100 }],
          attachment: { fileName: "r.pdf", contentBase64: pdf.toString("base64") },
        },
      ],
    });
    const v = res.body.booked[0].voucherNumber;
    const meta = await get(`/journals/1/vouchers/${year}-${v}/attachment`);
    expect(meta.body.file).toBe(`${sandbox.url}/journals/1/vouchers/${year}-${v}/attachment/file`);
    const file = await fetch(meta.body.file, { headers: AUTH });
    expect(Buffer.from(await file.arrayBuffer()).equals(pdf)).toBe(true);
    expect((await get(`/journals/1/vouchers/${year}-${v + 1}/attachment`)).status).toBe(404);
    const bad = await control("book/supplier-invoices", {
      vouchers: [{ date: "1990-01-01", supplierNumber: 77, lines: [{ account: 1, amount: 1 }] }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0]).toContain("vouchers[0].date");
  });
});

describe("e-conomic sandbox: payment status and webhooks", () => {
  async function bookInvoice(n: number) {
    await fetch(`${sandbox.url}/customers`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({
        customerNumber: 1,
        name: "C",
        currency: "DKK",
        customerGroup: { customerGroupNumber: 1 },
        vatZone: { vatZoneNumber: 1 },
        paymentTerms: { paymentTermsNumber: 1 },
      }),
    });
    const draft = (await (
      await fetch(`${sandbox.url}/invoices/drafts`, {
        method: "POST",
        headers: AUTH,
        body: JSON.stringify({
          date,
          currency: "DKK",
          customer: { customerNumber: 1 },
          paymentTerms: { paymentTermsNumber: 1 },
          layout: { layoutNumber: 19 },
          recipient: { name: "C", vatZone: { vatZoneNumber: 1 } },
          lines: [{ lineNumber: 1, product: { productNumber: "TIME" }, description: "x", quantity: 1, unitNetPrice: 100 }],
        }),
      })
    ).json()) as any;
    const res = await fetch(`${sandbox.url}/invoices/booked/${n}`, {
      method: "PUT",
      headers: AUTH,
      body: JSON.stringify({ draftInvoice: { draftInvoiceNumber: draft.draftInvoiceNumber } }),
    });
    expect(res.status).toBe(201);
  }
  const numbers = async (status: string) => (await get(`/invoices/${status}`)).body.collection.map((i: any) => i.bookedInvoiceNumber);

  test("unpaid → overdue → paid by a registered payment; sent shows on the invoice", async () => {
    await bookInvoice(501);
    await control("invoices/booked/501", { dueDate: "2999-01-01" }, "PATCH");
    expect([await numbers("unpaid"), await numbers("not-due"), await numbers("overdue"), await numbers("paid")]).toEqual([
      [501],
      [501],
      [],
      [],
    ]);
    await control("invoices/booked/501", { dueDate: "2000-01-01", sent: true }, "PATCH");
    expect(await numbers("overdue")).toEqual([501]);
    expect((await get("/invoices/overdue")).body.collection[0].sent).toBe(`${sandbox.url}/invoices/sent`);
    expect((await control("payments", { invoice: 501, amount: 25 })).body.remainder).toBe(100);
    expect(await numbers("paid")).toEqual([]);
    expect((await control("payments", { invoice: 501 })).body.remainder).toBe(0);
    expect([await numbers("paid"), await numbers("unpaid")]).toEqual([[501], []]);
    expect((await get(`/invoices/paid?filter=${encodeURIComponent("bookedInvoiceNumber$in:[501,502]")}`)).body.collection).toHaveLength(1);
    const { body } = await get(`/accounting-years/${year}/entries?filter=entryType$eq:customerPayment`);
    expect(body.collection.length).toBeGreaterThanOrEqual(2);
    expect((await control("payments", { invoice: 999 })).status).toBe(404);
  });

  test("booking an invoice calls the subscribed URL with its merge fields filled in", async () => {
    const calls: string[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req) => {
        calls.push(`${req.method} ${new URL(req.url).search}`);
        return new Response("ok");
      },
    });
    try {
      expect(
        (
          await control("webhooks", {
            type: "invoice",
            url: `http://127.0.0.1:${receiver.port}/hook?type=invoice&no=[INVOICENO]`,
            method: "GET",
          })
        ).status,
      ).toBe(201);
      await bookInvoice(777);
      await waitFor("the webhook call", () => calls.length === 1);
      expect(calls).toEqual(["GET ?type=invoice&no=777"]);
    } finally {
      receiver.stop(true);
    }
  });
});

describe("kontobro check: expense accounts", () => {
  test("a listed expense account that does not exist fails the check with a hint", async () => {
    const cfg = economic.configSchema.parse({
      rest_url: sandbox.url,
      projects_url: sandbox.projectsUrl,
      app_secret_token: "demo-app-secret",
      agreement_grant_token: "demo-agreement-grant",
      expenses: { accounts: "2800, 4242" },
    });
    const items = await economic.create("eco", cfg, { log: silentLogger }).check();
    expect(items.find((i) => i.name === "expense account 2800")?.ok).toBe(true);
    expect(items.find((i) => i.name === "expense account 4242")).toMatchObject({
      ok: false,
      message: expect.stringContaining("[targets.expenses]"),
      hint: expect.stringContaining("blank = all"),
    });
  });
});
