// The e-conomic sandbox over real HTTP on loopback: shapes, rules, idempotency, faults and control API.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { createEconomicSandbox, startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";

let sb: StartedEconomicSandbox;
const AUTH = { "X-AppSecretToken": "demo-app-secret", "X-AgreementGrantToken": "demo-agreement-grant" };

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, {
    method,
    headers: { ...AUTH, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
const rest = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  call(method, `${sb.restUrl}${path}`, body, headers);
const projects = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  call(method, `${sb.projectsUrl}${path}`, body, headers);
const control = (method: string, path: string, body?: unknown) =>
  call(method, `${sb.url}/__sandbox${path}`, body, { "X-AppSecretToken": "", "X-AgreementGrantToken": "" });

function customer(n: number | undefined, over: Record<string, unknown> = {}) {
  return {
    ...(n === undefined ? {} : { customerNumber: n }),
    name: `Customer ${n ?? "auto"}`,
    currency: "NOK",
    customerGroup: { customerGroupNumber: 1 },
    vatZone: { vatZoneNumber: 1 },
    paymentTerms: { paymentTermsNumber: 1 },
    ...over,
  };
}

function draft(over: Record<string, unknown> = {}) {
  return {
    date: "2026-03-31",
    currency: "NOK",
    customer: { customerNumber: 10042 },
    paymentTerms: { paymentTermsNumber: 1 },
    layout: { layoutNumber: 19 },
    recipient: { name: "Fjordkraft Bygg AS", vatZone: { vatZoneNumber: 1 } },
    references: { other: "MOMENT-INV-2026-0815" },
    lines: [
      {
        lineNumber: 1,
        product: { productNumber: "TIME" },
        description: "Senior, 12.5 h",
        quantity: 12.5,
        unit: { unitNumber: 2 },
        unitNetPrice: 1450,
      },
    ],
    ...over,
  };
}

const PDF = new TextEncoder().encode("%PDF-1.4\n1 0 obj <</Type /Page>> endobj\n%%EOF\n");

async function attach(n: number, bytes: Uint8Array, fieldName = "", type = "application/pdf"): Promise<Answer> {
  const form = new FormData();
  form.append(fieldName, new Blob([bytes], { type }), "invoice.pdf");
  const res = await fetch(`${sb.restUrl}/invoices/drafts/${n}/attachment/file`, { method: "POST", headers: AUTH, body: form });
  return { status: res.status, headers: res.headers, body: await res.json().catch(() => null) };
}

async function newDraft(over: Record<string, unknown> = {}): Promise<number> {
  const r = await rest("POST", "/invoices/drafts", draft(over));
  expect(r.status).toBe(201);
  return r.body.draftInvoiceNumber;
}

beforeAll(async () => {
  sb = await startEconomicSandbox({ port: 0 });
});
afterAll(async () => {
  await sb.stop();
});
beforeEach(async () => {
  expect((await control("POST", "/reset")).status).toBe(200);
  expect((await rest("POST", "/customers", customer(10042, { name: "Fjordkraft Bygg AS" }))).status).toBe(201);
});

describe("auth and generic REST behaviour", () => {
  test("missing tokens → 401; a pair that does not match → 401 E02250; the right pair → 200", async () => {
    const none = await call("GET", `${sb.restUrl}/self`, undefined, { "X-AppSecretToken": "", "X-AgreementGrantToken": "" });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ httpStatusCode: 401 });
    expect(none.body.logId).toBeString();
    const wrong = await rest("GET", "/self", undefined, { "X-AgreementGrantToken": "someone-else" });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({
      errorCode: "E02250",
      httpStatusCode: 401,
      message: "AppSecretToken does not correspond to the token.",
    });
    const ok = await rest("GET", "/self");
    expect(ok.status).toBe(200);
    expect(ok.body.agreementNumber).toBeNumber();
    const openApi = await projects("GET", "/Projects", undefined, { "X-AppSecretToken": "wrong" });
    expect(openApi.status).toBe(401);
    expect(openApi.body).toMatchObject({ code: "E02250" });
    expect(openApi.body.logTimeUtc).toBeString();
  });

  test("the demo/demo pair can read but not write", async () => {
    const demo = { "X-AppSecretToken": "demo", "X-AgreementGrantToken": "demo" };
    expect((await rest("GET", "/customers", undefined, demo)).status).toBe(200);
    expect((await rest("POST", "/customers", customer(1), demo)).status).toBe(403);
  });

  test("415 for a non-JSON write, 404 for unknown resources, 405 for a PUT on a collection", async () => {
    const res = await fetch(`${sb.restUrl}/customers`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "text/plain" },
      body: "name=x",
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as any).httpStatusCode).toBe(415);
    expect((await rest("GET", "/no-such-thing")).status).toBe(404);
    expect((await rest("GET", "/customers/999")).status).toBe(404);
    expect((await rest("PUT", "/customers", customer(1))).status).toBe(405);
    expect((await rest("POST", "/customers/10042", customer(1))).status).toBe(405);
  });

  test("null values in a write are refused with an annotated 400", async () => {
    const r = await rest("POST", "/customers", customer(1, { email: null, layout: { layoutNumber: null } }));
    expect(r.status).toBe(400);
    expect(r.body.errors.email.errors[0].errorCode).toBe("SANDBOX_NULL");
    expect(r.body.errors.layout.layoutNumber.errors).toHaveLength(1);
  });

  test("responses omit false booleans and nulls", async () => {
    const r = await rest("POST", "/customers", customer(5, { barred: false }));
    expect(r.status).toBe(201);
    expect("barred" in r.body).toBe(false);
  });
});

describe("schema validation", () => {
  test("a draft with bad lines gets the annotated envelope mirroring the request", async () => {
    const r = await rest(
      "POST",
      "/invoices/drafts",
      draft({
        date: "31.03.2026",
        customer: undefined,
        lines: [
          { description: "ok", quantity: 1, unitNetPrice: 10 },
          { description: "x", unitNetPrice: 10.12345, quantity: 1 },
        ],
      }),
    );
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      message: "Validation error.",
      httpStatusCode: 400,
      developerHint: "Inspect validation errors and correct your request.",
    });
    expect(r.body.logTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    expect(r.body.errors.customer.errors[0].errorCode).toBe("SANDBOX_REQUIRED");
    expect(r.body.errors.date.errors.map((e: any) => e.errorCode).sort()).toEqual(["SANDBOX_FORMAT", "SANDBOX_PATTERN"]);
    expect(r.body.errors.lines).toEqual([
      { arrayIndex: 1, unitNetPrice: { errors: [expect.objectContaining({ errorCode: "E04740", value: 10.12345 })] } },
    ]);
  });

  test("references are checked: E06000 unknown, E04500 no identifier, E04730 quantity with product", async () => {
    const r = await rest(
      "POST",
      "/invoices/drafts",
      draft({
        customer: { customerNumber: 987987987 },
        lines: [
          { product: { productNumber: "TIME" }, description: "x", unitNetPrice: 1, unit: { unitNumber: 10 } },
          { product: {}, description: "y", quantity: 1 },
        ],
      }),
    );
    expect(r.status).toBe(400);
    expect(r.body.errors.customer.errors[0]).toMatchObject({ errorCode: "E06000", value: 987987987 });
    expect(r.body.errors.lines[0]).toMatchObject({
      arrayIndex: 0,
      quantity: { errors: [{ errorCode: "E04730" }] },
      unit: { errors: [{ errorCode: "E06000", value: 10 }] },
    });
    expect(r.body.errors.lines[1]).toMatchObject({ arrayIndex: 1, product: { errors: [{ errorCode: "E04500" }] } });
  });

  test("customers are validated against customers.post", async () => {
    const r = await rest("POST", "/customers", { name: "", currency: "NOKK" });
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.errors).sort()).toEqual(["currency", "customerGroup", "name", "paymentTerms", "vatZone"]);
  });
});

describe("customers and products", () => {
  test("create → 201 + Location, get, full-replace put, duplicate number → 400", async () => {
    const created = await rest("POST", "/customers", customer(20001, { email: "a@example.com", city: "Bergen" }));
    expect(created.status).toBe(201);
    expect(created.headers.get("location")).toBe(`${sb.restUrl}/customers/20001`);
    expect(created.body).toMatchObject({
      customerNumber: 20001,
      self: `${sb.restUrl}/customers/20001`,
      customerGroup: { customerGroupNumber: 1, self: `${sb.restUrl}/customer-groups/1` },
    });
    expect((await rest("GET", "/customers/20001")).body.city).toBe("Bergen");
    const put = await rest("PUT", "/customers/20001", customer(20001, { name: "Renamed" }));
    expect(put.status).toBe(200);
    const after = (await rest("GET", "/customers/20001")).body;
    expect(after.name).toBe("Renamed");
    expect(after.city).toBeUndefined(); // PUT replaces the whole document
    const dup = await rest("POST", "/customers", customer(20001));
    expect(dup.status).toBe(400);
    expect(dup.body.errors.customerNumber.errors[0].value).toBe(20001);
    expect((await rest("PUT", "/customers/20001", customer(20002))).status).toBe(400);
    expect((await rest("PUT", "/customers/424242", customer(424242))).status).toBe(404);
  });

  test("a customer without number gets the next one; an unknown group is E06000", async () => {
    const auto = await rest("POST", "/customers", customer(undefined));
    expect(auto.body.customerNumber).toBe(10043);
    const bad = await rest("POST", "/customers", customer(3, { customerGroup: { customerGroupNumber: 77 } }));
    expect(bad.body.errors.customerGroup.errors[0]).toMatchObject({ errorCode: "E06000", value: 77 });
  });

  test("products: seeded TIME/EXPENSE/PRODUCT, create, put, duplicate, self-link id encoding", async () => {
    const seeded = await rest("GET", "/products");
    expect(seeded.body.collection.map((p: any) => p.productNumber).sort()).toEqual(["EXPENSE", "PRODUCT", "TIME"]);
    const body = { productNumber: "A/B 1", name: "Odd number", productGroup: { productGroupNumber: 1 }, salesPrice: 99.5 };
    const created = await rest("POST", "/products", body);
    expect(created.status).toBe(201);
    expect(created.body.self).toBe(`${sb.restUrl}/products/A_6_B_9_1`);
    expect((await rest("GET", "/products/A_6_B_9_1")).body.name).toBe("Odd number");
    expect((await rest("PUT", "/products/A_6_B_9_1", { ...body, name: "Renamed" })).status).toBe(200);
    expect((await rest("GET", "/products/A_6_B_9_1")).body.name).toBe("Renamed");
    expect((await rest("POST", "/products", body)).status).toBe(400);
    const noGroup = await rest("POST", "/products", { productNumber: "X", name: "x" });
    expect(noGroup.body.errors.productGroup.errors[0].errorCode).toBe("SANDBOX_REQUIRED");
  });
});

describe("projects (OpenAPI)", () => {
  test("create returns {number}; a duplicate number is ProjectCannotBeCreatedUpdatedNumberAlreadyExists", async () => {
    const created = await projects("POST", "/Projects", {
      number: 4711,
      name: "Rehab Strandgaten 1",
      projectGroupNumber: 2,
      customerNumber: 10042,
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ number: 4711 });
    const got = await projects("GET", "/Projects/4711");
    expect(got.body).toMatchObject({ number: 4711, name: "Rehab Strandgaten 1", customerNumber: 10042, isClosed: false });
    expect(got.body.objectVersion).toBeString();
    const dup = await projects("POST", "/projects", { number: 4711, name: "Again", projectGroupNumber: 1 });
    expect(dup.status).toBe(400);
    expect(dup.body).toMatchObject({ code: "ProjectCannotBeCreatedUpdatedNumberAlreadyExists", property: "number" });
    expect(dup.body.logTimeUtc).toBeString();
    expect((await projects("GET", "/Projects/999")).status).toBe(404);
  });

  test("group rules: customer needed unless Internal, unknown group, unknown customer, schema errors", async () => {
    expect((await projects("POST", "/Projects", { number: 1, name: "Internal", projectGroupNumber: 1 })).status).toBe(201);
    const noCustomer = await projects("POST", "/Projects", { number: 2, name: "External", projectGroupNumber: 2 });
    expect(noCustomer.body).toMatchObject({ code: "ProjectCannotBeCreatedUpdatedCustomerNumberRequired", property: "customerNumber" });
    const noGroup = await projects("POST", "/Projects", { number: 3, name: "x", projectGroupNumber: 99 });
    expect(noGroup.body.code).toBe("ProjectCannotBeCreatedUpdatedGroupDoesNotExist");
    const unknownCustomer = await projects("POST", "/Projects", { number: 4, name: "x", projectGroupNumber: 2, customerNumber: 5555 });
    expect(unknownCustomer.body.code).toBe("ProjectCannotBeCreatedUpdatedCustomerNotFound");
    const missing = await projects("POST", "/Projects", { number: 5 });
    expect(missing.status).toBe(400);
    expect(missing.body.property).toBe("name");
    const tooLong = await projects("POST", "/Projects", { name: "x".repeat(101), projectGroupNumber: 1 });
    expect(tooLong.body).toMatchObject({ code: "SANDBOX_MAXLENGTH", property: "name" });
  });

  test("PUT needs the current objectVersion; a stale one is 409 with property version", async () => {
    await projects("POST", "/Projects", { number: 4711, name: "v1", projectGroupNumber: 1 });
    const v1 = (await projects("GET", "/Projects/4711")).body;
    const put = await projects("PUT", "/Projects", { ...v1, name: "v2" });
    expect(put.status).toBe(204);
    const v2 = (await projects("GET", "/Projects/4711")).body;
    expect(v2.name).toBe("v2");
    expect(v2.objectVersion).not.toBe(v1.objectVersion);
    const stale = await projects("PUT", "/Projects", { ...v1, name: "v3" });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ message: "Update conflict. Version does not match.", property: "version" });
    expect((await projects("PUT", "/Projects", { number: 4711, name: "no version", projectGroupNumber: 1 })).status).toBe(400);
    expect((await projects("PUT", "/Projects", { number: 8888, name: "x", projectGroupNumber: 1, objectVersion: "x" })).status).toBe(404);
  });

  test("GET /Projects pages with a cursor; ProjectGroups lists the seed", async () => {
    for (let n = 1; n <= 1005; n++)
      sb.sandbox.state.projects.set(n, { number: n, name: `P${n}`, projectGroupNumber: 1, objectVersion: "x" });
    const first = await projects("GET", "/Projects");
    expect(first.body.items).toHaveLength(1000);
    expect(first.body.cursor).toBe("1001");
    const second = await projects("GET", `/Projects?cursor=${first.body.cursor}`);
    expect(second.body.items.map((p: any) => p.number)).toEqual([1001, 1002, 1003, 1004, 1005]);
    expect(second.body.cursor).toBeUndefined();
    expect((await projects("GET", "/Projects?filter=number$gt:1002")).body.items).toHaveLength(3);
    expect((await projects("GET", "/Projects/count")).body).toBe(1005);
    const groups = (await projects("GET", "/ProjectGroups")).body.items;
    expect(groups.find((g: any) => g.type === 1)).toMatchObject({ number: 1 });
  });
});

describe("invoices", () => {
  test("draft → attach PDF → book with number → draft gone; booked keeps everything", async () => {
    await projects("POST", "/Projects", { number: 4711, name: "Rehab", projectGroupNumber: 2, customerNumber: 10042 });
    const created = await rest("POST", "/invoices/drafts", draft({ project: { projectNumber: 4711 } }));
    expect(created.status).toBe(201);
    expect(created.headers.get("location")).toBe(created.body.self);
    expect(created.body).toMatchObject({ netAmount: 18125, vatAmount: 4531.25, grossAmount: 22656.25, dueDate: "2026-04-14" });
    const n = created.body.draftInvoiceNumber;
    const up = await attach(n, PDF);
    expect(up.status).toBe(201);
    expect((await rest("GET", `/invoices/drafts/${n}/attachment`)).body.pages).toBe(1);
    const booked = await rest("PUT", "/invoices/booked/815", { draftInvoice: { draftInvoiceNumber: n } });
    expect(booked.status).toBe(201);
    expect(booked.body).toMatchObject({
      bookedInvoiceNumber: 815,
      references: { other: "MOMENT-INV-2026-0815" },
      project: { projectNumber: 4711 },
      customer: { customerNumber: 10042 },
      netAmount: 18125,
      vatAmount: 4531.25,
      grossAmount: 22656.25,
      remainder: 22656.25,
    });
    expect(booked.body.lines).toHaveLength(1);
    expect((await rest("GET", `/invoices/drafts/${n}`)).status).toBe(404);
    expect((await rest("GET", "/invoices/booked/815")).body.bookedInvoiceNumber).toBe(815);
    const state = (await control("GET", "/state")).body;
    expect(state.drafts).toHaveLength(0);
    expect(state.booked[0]).toMatchObject({ bookedInvoiceNumber: 815, hasAttachment: true, attachment: { size: PDF.byteLength } });
  });

  test("a used number is refused; POST /invoices/booked without number takes the next", async () => {
    const a = await newDraft();
    expect((await rest("POST", "/invoices/booked", { draftInvoice: { draftInvoiceNumber: a }, bookWithNumber: 7 })).status).toBe(201);
    const b = await newDraft({ references: { other: "SECOND" } });
    const clash = await rest("PUT", "/invoices/booked/7", { draftInvoice: { draftInvoiceNumber: b } });
    expect(clash.status).toBe(400);
    expect(clash.body.errors.bookWithNumber.errors[0].value).toBe(7);
    expect((await rest("GET", `/invoices/drafts/${b}`)).status).toBe(200); // nothing happened
    const mismatch = await rest("PUT", "/invoices/booked/9", { draftInvoice: { draftInvoiceNumber: b }, bookWithNumber: 10 });
    expect(mismatch.status).toBe(400);
    const next = await rest("POST", "/invoices/booked", { draftInvoice: { self: `${sb.restUrl}/invoices/drafts/${b}` }, sendBy: "ean" });
    expect(next.status).toBe(201);
    expect(next.body.bookedInvoiceNumber).toBe(8);
    const gone = await rest("POST", "/invoices/booked", { draftInvoice: { draftInvoiceNumber: b } });
    expect(gone.body.errors.draftInvoice.errors[0].errorCode).toBe("E06000");
  });

  test("VAT is booked as e-conomic books it: each line with its product group's sales account for the recipient's zone, that account's VAT code's rate", async () => {
    // Group 2 books domestic sales on 1020, an account without VAT code: its lines carry no VAT, also for a domestic customer.
    sb.sandbox.state.productGroups.set(2, { productGroupNumber: 2, name: "Exempt services" });
    sb.sandbox.state.salesAccounts.set(2, { 1: 1020, 2: 1020, 3: 1020, 4: 1020 });
    sb.sandbox.state.products.set("EXEMPT", { productNumber: "EXEMPT", name: "Exempt", productGroup: { productGroupNumber: 2 } });
    const n = await newDraft({
      lines: [
        { product: { productNumber: "PRODUCT" }, description: "Taxed", quantity: 1, unitNetPrice: 100 },
        { product: { productNumber: "EXEMPT" }, description: "Exempt", quantity: 1, unitNetPrice: 100 },
      ],
    });
    const d = (await rest("GET", `/invoices/drafts/${n}`)).body;
    expect(d).toMatchObject({ netAmount: 200, vatAmount: 25, grossAmount: 225 });
    expect(d.lines.map((l: any) => [l.vatRate, l.vatAmount])).toEqual([
      [25, 25],
      [0, 0],
    ]);
  });

  test("a credit note is a booked invoice with negative amounts", async () => {
    const n = await newDraft({
      lines: [{ product: { productNumber: "PRODUCT" }, description: "Return", quantity: -2, unitNetPrice: 100 }],
    });
    const booked = await rest("POST", "/invoices/booked", { draftInvoice: { draftInvoiceNumber: n } });
    expect(booked.body).toMatchObject({ netAmount: -200, vatAmount: -50, grossAmount: -250, remainder: -250 });
  });

  test("attachments: PDF only, 9 MB cap, multipart only, named field accepted", async () => {
    const n = await newDraft();
    expect((await attach(n, new TextEncoder().encode("hello"))).status).toBe(400);
    const big = new Uint8Array(9 * 1024 * 1024 + 1);
    big.set(PDF);
    expect((await attach(n, big)).status).toBe(413);
    expect((await rest("POST", `/invoices/drafts/${n}/attachment/file`, { file: "x" })).status).toBe(415);
    expect((await rest("GET", `/invoices/drafts/${n}/attachment`)).status).toBe(404);
    expect((await attach(n, PDF, "file")).status).toBe(201);
    const file = await fetch(`${sb.restUrl}/invoices/drafts/${n}/attachment/file`, { headers: AUTH });
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(PDF);
    expect((await rest("DELETE", `/invoices/drafts/${n}/attachment/file`)).status).toBe(204);
    expect((await rest("DELETE", `/invoices/drafts/${n}/attachment/file`)).status).toBe(404);
    expect((await attach(999, PDF)).status).toBe(404);
  });

  test("attachmentMaxBytes: the notes' 9.0 MB read as 9,000,000 bytes refuses a PDF the default reading (9 × 1024 × 1024) takes", async () => {
    const between = new Uint8Array(9_000_001);
    between.set(PDF);
    expect((await attach(await newDraft(), between)).status).toBe(201);
    const main = sb;
    sb = await startEconomicSandbox({ port: 0, attachmentMaxBytes: 9_000_000 });
    try {
      expect((await rest("POST", "/customers", customer(10042, { name: "Fjordkraft Bygg AS" }))).status).toBe(201);
      const refused = await attach(await newDraft(), between);
      expect(refused.status).toBe(413);
      expect(refused.body.message).toContain("9.0 MB");
    } finally {
      await sb.stop();
      sb = main;
    }
  });

  test("drafts can be deleted once", async () => {
    const n = await newDraft();
    const del = await rest("DELETE", `/invoices/drafts/${n}`);
    expect(del.body).toMatchObject({ message: "Deleted invoice.", deletedCount: 1, deletedItems: [{ draftInvoiceNumber: n }] });
    expect((await rest("DELETE", `/invoices/drafts/${n}`)).status).toBe(404);
  });
});

describe("collections: filters and paging", () => {
  test("filter drafts and booked invoices by references.other", async () => {
    await newDraft({ references: { other: "PSA-1" } });
    await newDraft({ references: { other: "PSA-2" } });
    const one = await rest("GET", `/invoices/drafts?filter=${encodeURIComponent("references.other$eq:psa-2")}`);
    expect(one.body.collection.map((d: any) => d.references.other)).toEqual(["PSA-2"]);
    expect(one.body.pagination).toMatchObject({ results: 1, resultsWithoutFilter: 2 });
    const b = await rest("POST", "/invoices/booked", {
      draftInvoice: { draftInvoiceNumber: one.body.collection[0].draftInvoiceNumber },
      bookWithNumber: 42,
    });
    expect(b.status).toBe(201);
    const q = encodeURIComponent("references.other$eq:PSA-2$and:(customer.customerNumber$eq:10042$or:bookedInvoiceNumber$gt:100)");
    expect((await rest("GET", `/invoices/booked?filter=${q}`)).body.collection.map((i: any) => i.bookedInvoiceNumber)).toEqual([42]);
    expect((await rest("GET", `/invoices/booked?filter=${encodeURIComponent("bookedInvoiceNumber$lt:42")}`)).body.collection).toEqual([]);
  });

  test("$like, $ne, $in and 400 for a non-filterable field or bad syntax", async () => {
    await rest("POST", "/customers", customer(2, { name: "Bergen Bygg" }));
    await rest("POST", "/customers", customer(3, { name: "Oslo Rør" }));
    const like = await rest("GET", `/customers?filter=${encodeURIComponent("name$like:bygg")}`);
    expect(like.body.collection.map((c: any) => c.customerNumber)).toEqual([2, 10042]);
    const starts = await rest("GET", `/customers?filter=${encodeURIComponent("name$like:bergen*")}`);
    expect(starts.body.collection.map((c: any) => c.customerNumber)).toEqual([2]);
    const notIn = await rest("GET", `/customers?filter=${encodeURIComponent("customerNumber$nin:[2,3]$and:name$ne:x")}`);
    expect(notIn.body.collection.map((c: any) => c.customerNumber)).toEqual([10042]);
    expect((await rest("GET", `/customers?filter=${encodeURIComponent("balance$eq:0")}`)).status).toBe(200);
    expect((await rest("GET", `/customers?filter=${encodeURIComponent("paymentTerms.paymentTermsNumber$eq:1")}`)).status).toBe(400);
    expect((await rest("GET", `/customers?filter=${encodeURIComponent("name$eq:x$and:(")}`)).status).toBe(400);
  });

  test("pages of 20 by default, nextPage until the last page, pagesize at most 1000", async () => {
    for (let n = 1; n <= 44; n++) sb.sandbox.state.customers.set(n, { ...customer(n), balance: 0 });
    const first = await rest("GET", "/customers");
    expect(first.body.collection).toHaveLength(20);
    expect(first.body.pagination).toMatchObject({
      skipPages: 0,
      pageSize: 20,
      maxPageSizeAllowed: 1000,
      results: 45,
      resultsWithoutFilter: 45,
    });
    expect(first.body.pagination.nextPage).toBe(`${sb.restUrl}/customers?skippages=1&pagesize=20`);
    expect(first.body.pagination.lastPage).toBe(`${sb.restUrl}/customers?skippages=2&pagesize=20`);
    const last = await call("GET", first.body.pagination.lastPage);
    expect(last.body.collection.map((c: any) => c.customerNumber)).toEqual([41, 42, 43, 44, 10042]);
    expect(last.body.pagination.nextPage).toBeUndefined();
    expect((await rest("GET", "/customers?pagesize=1000")).body.collection).toHaveLength(45);
    expect((await rest("GET", "/customers?pagesize=1001")).status).toBe(400);
    expect((await rest("GET", "/customers?sort=-customerNumber&pagesize=2")).body.collection.map((c: any) => c.customerNumber)).toEqual([
      10042, 44,
    ]);
  });
});

describe("idempotency", () => {
  test("a repeated key returns the cached answer with X-ResultFromCache and does not act again", async () => {
    const key = { "Idempotency-Key": "create-auto-1" };
    const first = await rest("POST", "/customers", customer(undefined), key);
    const again = await rest("POST", "/customers", customer(undefined), key);
    expect(first.status).toBe(201);
    expect(first.headers.get("x-resultfromcache")).toBeNull();
    expect(again.status).toBe(201);
    expect(again.headers.get("x-resultfromcache")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect(sb.sandbox.state.customers.size).toBe(2);
    const other = await rest("POST", "/customers", customer(undefined), { "Idempotency-Key": "create-auto-2" });
    expect(other.body.customerNumber).toBe(first.body.customerNumber + 1);
    const read = await rest("GET", "/customers/10042", undefined, key);
    expect(read.headers.get("x-resultfromcache")).toBeNull();
  });

  test("concurrent repeats wait for the first and replay it", async () => {
    const key = { "Idempotency-Key": "same-time" };
    const answers = await Promise.all([1, 2, 3].map(() => rest("POST", "/customers", customer(undefined), key)));
    expect(new Set(answers.map((a) => a.body.customerNumber)).size).toBe(1);
    expect(answers.filter((a) => a.headers.get("x-resultfromcache") === "true")).toHaveLength(2);
    expect(sb.sandbox.state.customers.size).toBe(2);
  });
});

describe("faults", () => {
  test("503 once, then the request goes through", async () => {
    await control("POST", "/faults", { rules: [{ kind: "503", method: "GET", path: "^/self$", count: 1 }] });
    const failed = await rest("GET", "/self");
    expect(failed.status).toBe(503);
    expect(failed.body.httpStatusCode).toBe(503);
    expect((await rest("GET", "/self")).status).toBe(200);
    expect(sb.sandbox.stats().faults["503"]).toBe(1);
  });

  test("500 does not act: the state stays unchanged", async () => {
    sb.sandbox.addFault({ kind: "500", method: "POST", path: "^/customers$", count: 1 });
    expect((await rest("POST", "/customers", customer(31))).status).toBe(500);
    expect((await rest("GET", "/customers/31")).status).toBe(404);
  });

  test("429 carries Retry-After and the documented body", async () => {
    await control("POST", "/faults", { rules: [{ kind: "429", path: "^/customers", count: 2, retryAfterSeconds: 7 }] });
    const r = await rest("GET", "/customers");
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("7");
    expect(r.body).toMatchObject({ message: "Too many requests.", httpStatusCode: 429 });
    expect(r.body.logId).toBeString();
    expect((await projects("GET", "/Projects")).status).toBe(200); // other paths are not hit
    expect((await rest("GET", "/customers")).status).toBe(429);
    expect((await rest("GET", "/customers")).status).toBe(200);
  });

  test("drop_after_commit: no answer, but the state changed and the idempotent retry replays", async () => {
    await control("POST", "/faults", { rules: [{ kind: "drop_after_commit", method: "PUT", path: "^/invoices/booked/", count: 1 }] });
    const n = await newDraft();
    const key = { "Idempotency-Key": "book-815" };
    const send = () =>
      fetch(`${sb.restUrl}/invoices/booked/815`, {
        method: "PUT",
        headers: { ...AUTH, ...key, "content-type": "application/json" },
        body: JSON.stringify({ draftInvoice: { draftInvoiceNumber: n } }),
      });
    await expect(send()).rejects.toThrow();
    expect(sb.sandbox.state.booked.has(815)).toBe(true);
    expect(sb.sandbox.state.drafts.has(n)).toBe(false);
    const retry = await send();
    expect(retry.status).toBe(201);
    expect(retry.headers.get("x-resultfromcache")).toBe("true");
    expect(((await retry.json()) as any).bookedInvoiceNumber).toBe(815);
    expect(sb.sandbox.state.booked.size).toBe(1);
    expect((await control("GET", "/state")).body.faults.drop_after_commit).toBe(1);
  });

  test("drop_after_commit on a POST without a key: the client gets an error, the customer exists", async () => {
    sb.sandbox.addFault({ kind: "drop_after_commit", method: "POST", path: "^/customers$", count: 1 });
    await rest("GET", "/self"); // a warm keep-alive connection: POST is still not retried by fetch
    await expect(rest("POST", "/customers", customer(777))).rejects.toThrow();
    expect((await rest("GET", "/customers/777")).status).toBe(200);
    expect((await rest("POST", "/customers", customer(777))).status).toBe(400); // a blind retry collides
  });

  test("a dropped PUT is seen even by a client with warm keep-alive connections", async () => {
    // Bun's fetch retries a PUT once, silently, when a reused connection is reset; while a drop rule is
    // armed the sandbox closes idle connections and answers with Connection: close, so the drop is seen.
    await rest("GET", "/self");
    await rest("GET", "/units");
    sb.sandbox.addFault({ kind: "drop_after_commit", method: "PUT", path: "^/customers/10042$", count: 1 });
    await Bun.sleep(0); // let the sandbox close idle connections
    await expect(
      rest("PUT", "/customers/10042", customer(10042, { name: "Renamed" }), { "Idempotency-Key": "put-10042" }),
    ).rejects.toThrow();
    expect(sb.sandbox.state.customers.get(10042)!.name).toBe("Renamed");
    expect(sb.sandbox.stats().requests.byMethod.PUT).toBe(1);
    const replay = await rest("PUT", "/customers/10042", customer(10042, { name: "Renamed" }), { "Idempotency-Key": "put-10042" });
    expect(replay.headers.get("x-resultfromcache")).toBe("true");
  });

  test("the control API takes a bare rule or a list too", async () => {
    expect((await control("POST", "/faults", { kind: "503", path: "^/self$" })).status).toBe(201);
    expect((await control("POST", "/faults", [{ kind: "500", path: "^/units$" }])).status).toBe(201);
    expect((await rest("GET", "/self")).status).toBe(503);
    expect((await rest("GET", "/units")).status).toBe(500);
  });

  test("latency and probability rules are counted; probability 0 never fires", async () => {
    await control("POST", "/faults", {
      rules: [
        { kind: "latency", path: "^/units", latencyMs: 5, count: 1 },
        { kind: "500", path: "^/layouts", probability: 0 },
      ],
    });
    expect((await rest("GET", "/units")).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await rest("GET", "/layouts")).status).toBe(200);
    const state = (await control("GET", "/state")).body;
    expect(state.faults).toMatchObject({ latency: 1, "500": 0 });
    expect(state.faultRules).toHaveLength(1); // the spent one-shot latency rule is gone
    expect((await control("DELETE", "/faults")).body.cleared).toBe(1);
  });

  test("a probability rule uses the injected random source", async () => {
    const local = createEconomicSandbox({ random: () => 0.3 });
    local.addFault({ kind: "503", probability: 0.5 });
    local.addFault({ kind: "500", probability: 0.2 });
    const res = await local.app.request("/self", { headers: AUTH });
    expect(res.status).toBe(503);
    expect(local.stats().faults).toMatchObject({ "503": 1, "500": 0 });
  });

  test("bad fault rules are refused", async () => {
    expect((await control("POST", "/faults", { rules: [{ kind: "418" }] })).status).toBe(400);
    expect((await control("POST", "/faults", { rules: [{ kind: "500", path: "(" }] })).status).toBe(400);
    expect((await control("POST", "/faults", {})).status).toBe(400);
  });
});

describe("seed and control", () => {
  test("removing customer group 1, the Internal project group and journal 1 makes set-up checks fail readably", async () => {
    expect((await rest("GET", "/customer-groups/1")).status).toBe(200);
    expect((await rest("GET", "/journals/1")).status).toBe(200);
    const removed = await control("POST", "/seed/remove", { items: ["customerGroup1", "internalProjectGroup", "journal1"] });
    expect(removed.status).toBe(200);
    expect((await rest("GET", "/customer-groups/1")).status).toBe(404);
    expect((await rest("GET", "/journals/1")).status).toBe(404);
    const groups = (await projects("GET", "/ProjectGroups")).body.items;
    expect(groups.some((g: any) => g.type === 1)).toBe(false);
    const c = await rest("POST", "/customers", customer(50));
    expect(c.body.errors.customerGroup.errors[0]).toMatchObject({ errorCode: "E06000", message: "customerGroup does not exist." });
    expect((await projects("POST", "/Projects", { name: "x", projectGroupNumber: 1 })).body.code).toBe(
      "ProjectCannotBeCreatedUpdatedGroupDoesNotExist",
    );
    expect((await control("POST", "/seed/remove", { items: ["vatZone1"] })).status).toBe(400);
  });

  test("state counts requests; reset restores the seed", async () => {
    await rest("GET", "/self");
    const state = (await control("GET", "/state")).body;
    expect(state.requests.total).toBeGreaterThanOrEqual(2);
    expect(state.customers.map((c: any) => c.customerNumber)).toEqual([10042]);
    await control("POST", "/seed/remove", { items: ["journal1"] });
    await control("POST", "/reset");
    const after = (await control("GET", "/state")).body;
    expect(after.customers).toEqual([]);
    expect(after.seed.journals).toEqual([1]);
    expect(after.requests.total).toBe(0);
  });
});
