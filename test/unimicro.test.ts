// Uni Micro connector against its sandbox over real HTTP on loopback: happy path, check(), PDF handling.
import { afterEach, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { TargetError } from "../connectors/http.ts";
import { ctx, customer, invoice, project, seedMasterData, startEnv, thrown, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

const idOf = (rows: any[], field: string, value: unknown) => rows.find((r) => r[field] === value)?.ID;

describe("unimicro push: customer → project → invoice → credit note", () => {
  test("creates each record with internal IDs, books the invoice and credits it", async () => {
    env = startEnv();
    const c = env.connector;

    const cust = await c.push("customer", customer(), ctx());
    let co = await env.company();
    expect(co.customers).toHaveLength(1);
    const stored = co.customers[0];
    expect(String(stored.ID)).toBe(cust.remoteId);
    expect(stored.CustomerNumber).toBe(100123);
    expect(stored.OrgNumber).toBe("999888777");
    expect(stored.WebUrl).toBe("https://fjordtech.no");
    expect(stored.Info.Name).toBe("Fjordtech AS");
    expect(stored.Info.InvoiceAddress).toMatchObject({
      AddressLine1: "Strandkaien 2",
      PostalCode: "5013",
      City: "Bergen",
      CountryCode: "NO",
    });
    expect(stored.Info.DefaultEmail.EmailAddress).toBe("faktura@fjordtech.no");
    expect(stored.Info.Phones.map((p: any) => p.Number)).toEqual(["+47 55 00 00 01"]);

    // An update through the link changes the rows in place: no second address, email or fax row.
    await c.push(
      "customer",
      customer({
        name: "Fjordtech Bergen AS",
        addresses: [{ kind: "postal", street: "Bryggen 1", zip: "5003", city: "Bergen", country: "NO" }],
      }),
      ctx({ link: cust }),
    );
    co = await env.company();
    expect(co.customers).toHaveLength(1);
    expect(co.customers[0].Info.Name).toBe("Fjordtech Bergen AS");
    expect(co.customers[0].Info.InvoiceAddress.ID).toBe(stored.Info.InvoiceAddress.ID);
    expect(co.customers[0].Info.InvoiceAddress.AddressLine1).toBe("Bryggen 1");
    expect(co.customers[0].Info.Phones).toHaveLength(1);

    const proj = await c.push("project", project(), ctx());
    co = await env.company();
    expect(co.projects).toHaveLength(1);
    expect(co.projects[0]).toMatchObject({
      ProjectNumber: "24017",
      ProjectNumberNumeric: 24017,
      Name: "ERP migration",
      ProjectCustomerID: stored.ID,
    });
    expect(String(co.projects[0].ID)).toBe(proj.remoteId);

    const inv = await c.push("invoice", invoice(), ctx());
    expect(inv.note).toBeUndefined();
    co = await env.company();
    expect(co.invoices).toHaveLength(1);
    const booked = co.invoices[0];
    expect(String(booked.ID)).toBe(inv.remoteId);
    expect(booked).toMatchObject({
      StatusCode: 42002,
      InvoiceNumber: "10117",
      PaymentID: "10117",
      CustomerID: stored.ID,
      TaxExclusiveAmount: 48859,
      OurReference: "Kari Nordmann",
    });
    expect(booked.DefaultDimensions.ProjectID).toBe(co.projects[0].ID);
    const products = co.products;
    expect(booked.Items.map((i: any) => i.ProductID)).toEqual([idOf(products, "PartName", "1"), idOf(products, "PartName", "2")]);
    expect(booked.Items[0]).toMatchObject({ NumberOfItems: 37.5, PriceExVat: 1250, VatPercent: 25, SumTotalExVat: 46875 });
    expect(booked.Items.every((i: any) => typeof i.AccountID === "number" && typeof i.VatTypeID === "number")).toBe(true);
    // No KID: the invoice number is the payment id, and the voucher follows it.
    expect(co.journalentries.map((j: any) => j.JournalEntryNumber)).toEqual(["10117-2024"]);

    const credit = await c.push(
      "invoice",
      invoice({ kind: "credit_note", number: "10118", psaId: "psa-inv-10118", creditedInvoiceNumber: "10117" }),
      ctx(),
    );
    co = await env.company();
    expect(co.invoices).toHaveLength(2);
    const cn = co.invoices.find((i: any) => String(i.ID) === credit.remoteId);
    expect(cn).toMatchObject({
      StatusCode: 42002,
      InvoiceNumber: "10118",
      InvoiceReferenceID: booked.ID,
      InvoiceType: 1,
      TaxExclusiveAmount: -48859,
    });
    expect(cn.Items.map((i: any) => i.NumberOfItems)).toEqual([-37.5, -1]);
    expect(co.invoices.find((i: any) => i.ID === booked.ID).StatusCode).toBe(42006);

    expect(await c.find("invoice", invoice())).toEqual({ remoteId: inv.remoteId });
    expect(await c.find("customer", customer())).toEqual({ remoteId: cust.remoteId });
    expect(await c.find("project", { number: "99999", name: "x" })).toBeNull();
  });

  test("a KID becomes the payment id and the voucher follows it (transition answering 200, as in the 2019 swagger)", async () => {
    env = startEnv({ sandbox: { transitionStatus: 200 } });
    await seedMasterData(env);
    await env.connector.push("invoice", invoice({ paymentId: "0010117003" }), ctx());
    const co = await env.company();
    expect(co.invoices[0].PaymentID).toBe("0010117003");
    expect(co.journalentries[0].JournalEntryNumber).toBe("0010117003-2024");
  });

  test("a booked invoice is never booked twice; a renumbering target is reported in a note", async () => {
    env = startEnv({ sandbox: { invoiceNumbers: "series" } });
    await seedMasterData(env);
    const first = await env.connector.push("invoice", invoice(), ctx());
    expect(first.note).toContain("under number 10001");
    const again = await env.connector.push("invoice", invoice(), ctx({ link: first }));
    expect(again.remoteId).toBe(first.remoteId);
    expect(again.note).toContain("already booked");
    expect((await env.company()).invoices).toHaveLength(1);
  });

  test("a missing customer or unknown VAT code is a permanent problem with a hint", async () => {
    env = startEnv({ config: { vat_codes: { hours: "99", expenses: "3" } } });
    const noCustomer = await thrown(env.connector.push("invoice", invoice({ projectNumber: undefined }), ctx()));
    expect(noCustomer).toBeInstanceOf(TargetError);
    expect(noCustomer).toMatchObject({ kind: "permanent", code: "unimicro.customer_missing" });
    await seedMasterData(env);
    const vat = await thrown(env.connector.push("invoice", invoice(), ctx()));
    expect(vat).toMatchObject({ kind: "permanent", code: "unimicro.vat_code_missing" });
    expect(vat.hint).toContain("VAT code 99");
    expect((await env.company()).invoices).toHaveLength(0);
  });

  test("a purchase (input) VAT code on a sales line, or in vat_codes, needs action naming it; nothing is sent", async () => {
    env = startEnv();
    await seedMasterData(env);
    const lines = [
      { text: "Konsulenttimer april", quantity: 37.5, unitPrice: 125000, kind: "hours", vatCode: "3" },
      { text: "Hotell prosjektreise", quantity: 1, unitPrice: 198400, kind: "expenses", vatCode: "1" },
    ];
    const e = await thrown(env.connector.push("invoice", invoice({ lines }), ctx()));
    expect(e).toMatchObject({ kind: "permanent", code: "unimicro.vat_code_not_output" });
    expect(e.message).toContain(
      'VAT code 1 ("Inngående mva, høy sats") of invoice 10117, line 2 (expenses) is not an output (sales) VAT code',
    );
    expect(e.hint).toContain("correct the line's VAT code in the PSA");
    expect((await env.company()).invoices).toHaveLength(0);
    env.stop();
    env = startEnv({ config: { vat_codes: { hours: "3", expenses: "1", products: "3" } } });
    await seedMasterData(env);
    const configured = await thrown(env.connector.push("invoice", invoice(), ctx()));
    expect(configured).toMatchObject({ code: "unimicro.vat_code_not_output" });
    expect(configured.hint).toContain("fix vat_codes.expenses");
    expect((await env.company()).invoices).toHaveLength(0);
  });

  test("code 0 (no VAT handling: OutputVat false, 0 %, no VAT account) on a sales line is booked without VAT", async () => {
    env = startEnv({ config: { vat_codes: { hours: "3", expenses: "0", products: "3" } } });
    await seedMasterData(env);
    const lines = [
      { text: "Konsulenttimer april", quantity: 37.5, unitPrice: 125000, kind: "hours" },
      { text: "Gebyr", quantity: 1, unitPrice: 10000, kind: "products", vatCode: "0" },
      { text: "Hotell prosjektreise", quantity: 1, unitPrice: 198400, kind: "expenses" },
    ];
    const pushed = await env.connector.push("invoice", invoice({ lines }), ctx());
    const co = await env.company();
    expect(co.invoices).toHaveLength(1);
    expect(String(co.invoices[0].ID)).toBe(pushed.remoteId);
    const items = co.invoices[0].Items;
    expect(items.map((i: any) => [i.VatPercent, i.SumVat])).toEqual([
      [25, 11718.75],
      [0, 0],
      [0, 0],
    ]);
    expect(items[1].VatTypeID).toBe(items[2].VatTypeID);
    expect(items[1].VatTypeID).not.toBe(items[0].VatTypeID);
  });

  test("a platform keeping VAT rates only as dated rates (VatPercent 0): an input code at 25 % on a sales line still needs action; output codes are booked at the rate of the invoice's date", async () => {
    env = startEnv({ sandbox: { vatRates: "dated" } });
    await seedMasterData(env);
    const input = [
      { text: "Konsulenttimer april", quantity: 37.5, unitPrice: 125000, kind: "hours", vatCode: "3" },
      { text: "Hotell prosjektreise", quantity: 1, unitPrice: 198400, kind: "expenses", vatCode: "1" },
    ];
    const e = await thrown(env.connector.push("invoice", invoice({ lines: input }), ctx()));
    expect(e).toMatchObject({ kind: "permanent", code: "unimicro.vat_code_not_output" });
    expect(e.message).toContain('VAT code 1 ("Inngående mva, høy sats") of invoice 10117, line 2 (expenses)');
    expect((await env.company()).invoices).toHaveLength(0);
    // Output codes: the low rate of 2021-05-01 was 6 %, as the platform's dated rates say.
    const lines = [
      { text: "Konsulenttimer", quantity: 1, unitPrice: 100000, kind: "hours", vatCode: "3" },
      { text: "Persontransport", quantity: 1, unitPrice: 100000, kind: "expenses", vatCode: "33" },
    ];
    await env.connector.push("invoice", invoice({ date: "2021-05-01", dueDate: "2021-05-15", lines }), ctx());
    const items = (await env.company()).invoices[0].Items;
    expect(items.map((i: any) => i.VatPercent)).toEqual([25, 6]);
  });

  test("a wrong internal ID answered with a 500 foreign-key error is permanent, not uncertain", async () => {
    env = startEnv({ config: { product_ids: { hours: 999999 } } });
    await seedMasterData(env);
    const e = await thrown(env.connector.push("invoice", invoice(), ctx()));
    expect(e).toMatchObject({ kind: "permanent", code: "unimicro.foreign_key", status: 500 });
    expect(e.message).toContain("ProductID");
  });
});

describe("unimicro check()", () => {
  test("passes with the right company key and resolves the line set-up", async () => {
    env = startEnv();
    const items = await env.connector.check();
    expect(items.map((i) => [i.name, i.ok])).toEqual([
      ["credentials", true],
      ["company", true],
      ["hours lines", true],
      ["expenses lines", true],
      ["products lines", true],
    ]);
  });

  test("names the reachable companies when the company key is wrong", async () => {
    env = startEnv({ config: { company_key: "00000000-dead-beef-0000-000000000000" } });
    const items = await env.connector.check();
    const company = items.find((i) => i.name === "company")!;
    expect(company.ok).toBe(false);
    expect(company.message).toContain("Demo AS");
    expect(company.hint).toContain("Systeminformasjon");
  });

  test("reports a certificate the identity server does not know", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    env = startEnv({ config: { private_key: other } });
    const items = await env.connector.check();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ ok: false, name: "credentials" });
    expect(items[0]!.message).toContain("signature");
  });
});

describe("unimicro invoice PDF", () => {
  const pdf = { filename: "10117.pdf", contentBase64: Buffer.from("%PDF-1.4 test").toString("base64") };

  test("DnB Regnskap / Uni Economy: not attached, and the note says so", async () => {
    env = startEnv();
    await seedMasterData(env);
    const r = await env.connector.push("invoice", invoice({ pdf }), ctx());
    expect(r.note).toContain("PDF was not sent");
    expect((await env.company()).files).toHaveLength(0);
  });

  test("where the platform takes attachments: uploaded through the Files service and linked once", async () => {
    env = startEnv({ sandbox: { profile: "unimicro" }, config: { platform: "custom", attach_pdf: true } });
    await seedMasterData(env);
    const r = await env.connector.push("invoice", invoice({ pdf }), ctx());
    expect(r.note).toBeUndefined();
    await env.connector.push("invoice", invoice({ pdf }), ctx({ uncertain: true }));
    const co = await env.company();
    expect(co.files.map((f: any) => f.Name)).toEqual(["10117.pdf"]);
    expect(co.fileLinks).toEqual([{ FileID: co.files[0].ID, EntityType: "CustomerInvoice", EntityID: Number(r.remoteId) }]);
    const state = await env.state();
    expect(state.requests.some((q: any) => q.path === "/files-service/api/file")).toBe(true);
    // The attempt that booked it sent the PDF without looking first; the uncertain one looked and sent nothing more.
    expect(state.requests.filter((q: any) => q.path.startsWith("/api/biz/files/CustomerInvoice/"))).toHaveLength(1);
    expect(state.requests.filter((q: any) => q.path === "/files-service/api/file")).toHaveLength(1);
  });
});
