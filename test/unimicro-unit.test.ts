// Pure parts of the Uni Micro connector: mapping, rules, error envelope, config; and the sandbox's
// query engine and identity checks.
import { describe, expect, test } from "bun:test";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { CreditNote, Customer, customerQuantity, Invoice } from "../agent/model.ts";
import { buildClientAssertion } from "../connectors/unimicro/auth.ts";
import { booksInputVat, describeUniError, flattenValidation, queryString, vatRateOn } from "../connectors/unimicro/client.ts";
import { type ConfigError, validateConfig } from "../agent/config.ts";
import { settingsFrom, UniMicroConfig } from "../connectors/unimicro/config.ts";
import { deterministicGuid, lineNeeds, mapCustomer, mapInvoice, paymentIdFor, voucherFollows } from "../connectors/unimicro/map.ts";
import { customerRules, invoiceRules, projectRules, type RuleOptions } from "../connectors/unimicro/rules.ts";
import { IdentityServer } from "../connectors/unimicro/sandbox/auth.ts";
import { FaultRulesBody, newFaults } from "../connectors/unimicro/sandbox/faults.ts";
import { parseFilter, runQuery } from "../connectors/unimicro/sandbox/query.ts";
import { kidFor } from "../connectors/unimicro/sandbox/store.ts";
import { customer, invoice, privateKeyPem, publicKey } from "./unimicro-fixtures.ts";

const guid = deterministicGuid("seed");
const lines = {
  hours: { accountNumber: 3000, vatCode: "3", productNumber: "1" },
  expenses: { accountNumber: 3400, vatCode: "3", productId: 31 },
};
const rules: RuleOptions = {
  title: "DnB Regnskap",
  customerNumberRange: [100000, 199999],
  lines,
  companyCurrency: "NOK",
  currencyPriceField: "unset",
};

describe("an invoice in another currency than the company's", () => {
  test("is refused until currency_price_field is set, naming both currencies and the setting; then its price goes in that field", () => {
    const eur = Invoice.parse(invoice({ currency: "EUR" }));
    const [p, ...more] = invoiceRules(eur, rules);
    expect(more).toEqual([]);
    expect(p?.code).toBe("unimicro.currency_price_field_unset");
    expect(p?.message).toContain("is in EUR, not the company's currency NOK");
    expect(p?.hint).toContain('currency_price_field = "PriceExVatCurrency"');
    expect(invoiceRules(Invoice.parse(invoice()), rules)).toEqual([]);
    expect(invoiceRules(eur, { ...rules, currencyPriceField: "PriceExVatCurrency" })).toEqual([]);

    const body: any = mapInvoice(eur, {
      guid,
      customerId: 1,
      priceField: "PriceExVatCurrency",
      lines: [{ productId: 1 }, { productId: 1 }],
    });
    expect(body.Items.map((i: any) => [i.PriceExVatCurrency, i.PriceExVat])).toEqual(eur.lines.map((l) => [l.unitPrice / 100, undefined]));
  });
});

describe("map", () => {
  test("guids are stable per seed and path, UUID-shaped, and differ between paths", () => {
    expect(guid("Info")).toBe(deterministicGuid("seed")("Info"));
    expect(guid("Info")).not.toBe(guid("Info.InvoiceAddress"));
    expect(guid("Info")).not.toBe(deterministicGuid("other")("Info"));
    expect(guid("Items.0")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test("a new customer: numbers as integers, every child row with _createguid", () => {
    const body: any = mapCustomer(
      Customer.parse(
        customer({
          addresses: [
            { kind: "postal", street: "Strandkaien 2\nPostboks 7\nBygg B\n3. etg", zip: "5013", city: "Bergen", country: "NO" },
            { kind: "delivery", city: "Oslo" },
          ],
        }),
      ),
      { guid, currencyCodeId: 7 },
    );
    expect(body).toMatchObject({
      CustomerNumber: 100123,
      OrgNumber: "999888777",
      WebUrl: "https://fjordtech.no",
      CurrencyCodeID: 7,
      _createguid: guid("Customer"),
    });
    expect(body.Info).toMatchObject({ Name: "Fjordtech AS", _createguid: guid("Info") });
    expect(body.Info.InvoiceAddress).toEqual({
      _createguid: guid("Info.InvoiceAddress"),
      AddressLine1: "Strandkaien 2",
      AddressLine2: "Postboks 7",
      AddressLine3: "Bygg B, 3. etg",
      PostalCode: "5013",
      City: "Bergen",
      CountryCode: "NO",
    });
    expect(body.Info.ShippingAddress).toEqual({ _createguid: guid("Info.ShippingAddress"), City: "Oslo" });
    expect(body.Info.DefaultEmail).toEqual({ _createguid: guid("Info.DefaultEmail"), EmailAddress: "faktura@fjordtech.no" });
  });

  test("an existing customer: child rows by ID, no guids, so a PUT updates in place", () => {
    const body: any = mapCustomer(Customer.parse(customer()), {
      guid,
      existing: { infoId: 5, invoiceAddressId: 6, emailId: 7, phoneId: 8, faxId: 9 },
    });
    expect(body._createguid).toBeUndefined();
    expect(body.Info.ID).toBe(5);
    expect(body.Info.InvoiceAddress.ID).toBe(6);
    expect(body.Info.DefaultEmail).toEqual({ ID: 7, EmailAddress: "faktura@fjordtech.no" });
    expect(body.Info.Phones).toEqual([{ ID: 9, Number: "+47 55 00 00 01", Description: "Fax" }]);
    expect(JSON.stringify(body)).not.toContain("_createguid");
  });

  test("an invoice draft: internal IDs, amounts in kroner, project dimensions, payment id", () => {
    const inv = Invoice.parse(invoice());
    const body: any = mapInvoice(inv, {
      guid,
      customerId: 412,
      projectId: 57,
      lines: [
        { productId: 31, accountId: 301, vatTypeId: 10 },
        { productId: 32, accountId: 302, vatTypeId: 10 },
      ],
    });
    expect(body).toMatchObject({
      CustomerID: 412,
      InvoiceDate: "2024-04-30",
      PaymentDueDate: "2024-05-14",
      InvoiceNumber: "10117",
      PaymentID: "10117",
      InternalNote: "kontobro:psa-inv-10117",
      OurReference: "Kari Nordmann",
    });
    expect(body.DefaultDimensions).toEqual({ ProjectID: 57, _createguid: guid("DefaultDimensions") });
    expect(body.Items[0]).toMatchObject({
      ProductID: 31,
      AccountID: 301,
      VatTypeID: 10,
      NumberOfItems: 37.5,
      PriceExVat: 1250,
      ItemText: "Konsulenttimer april",
      SortIndex: 1,
      PriceSetByUser: true,
    });
    expect(body.Items[0].Dimensions).toEqual({ ProjectID: 57, _createguid: guid("Items.0.Dimensions") });
    expect(body.Items[1].PriceExVat).toBe(1984);
  });

  test("rewriting a draft deletes its old items and keeps its dimensions row", () => {
    const body: any = mapInvoice(Invoice.parse(invoice()), {
      guid,
      customerId: 1,
      projectId: 57,
      lines: [{ productId: 31 }, { productId: 31 }],
      existing: { itemIds: [90, 91], defaultDimensionsId: 70 },
    });
    expect(body.Items.slice(0, 2)).toEqual([
      { ID: 90, Deleted: true },
      { ID: 91, Deleted: true },
    ]);
    expect(body.Items).toHaveLength(4);
    expect(body.DefaultDimensions).toEqual({ ID: 70, ProjectID: 57 });
    expect(body._createguid).toBeUndefined();
  });

  test("credit notes go out with negative lines: the customer's quantity, never guessed from the lines", () => {
    const positive = CreditNote.parse(invoice({ kind: "credit_note", creditedInvoiceNumber: "10110" }));
    expect(positive.lines.map((l) => customerQuantity(positive, l))).toEqual([-37.5, -1]);
    const plain = Invoice.parse(invoice());
    expect(plain.lines.map((l) => customerQuantity(plain, l))).toEqual([37.5, 1]);
    const body: any = mapInvoice(positive, { guid, customerId: 1, lines: [{ productId: 1 }, { productId: 1 }] });
    expect(body.Items.map((i: any) => i.NumberOfItems)).toEqual([-37.5, -1]);
    expect(body.DefaultDimensions).toBeUndefined();
  });

  test("payment id, voucher numbering and line set-up", () => {
    expect(paymentIdFor({ number: "10117" })).toBe("10117");
    expect(paymentIdFor({ number: "10117", paymentId: "0010117003" })).toBe("0010117003");
    expect(voucherFollows("10117-2024", "10117")).toBe(true);
    expect(voucherFollows("0010117003-2024", "10117003")).toBe(true);
    expect(voucherFollows("118-2024", "10117")).toBe(false);
    expect(voucherFollows(undefined, "10117")).toBe(false);
    expect(lineNeeds({ kind: "hours" }, lines)).toEqual({ accountNumber: 3000, vatCode: "3", productNumber: "1" });
    expect(lineNeeds({ kind: "expenses", account: "7140", vatCode: "5" }, lines)).toEqual({
      accountNumber: 7140,
      vatCode: "5",
      productId: 31,
    });
    expect(lineNeeds({ kind: "hours", productCode: "P-9" }, lines)).toMatchObject({ productNumber: "P-9" });
  });
});

describe("rules", () => {
  const codes = (ps: { code: string }[]) => ps.map((p) => p.code);

  test("customer numbers: numeric and inside the range", () => {
    expect(customerRules(Customer.parse(customer()), rules)).toEqual([]);
    expect(codes(customerRules(Customer.parse(customer({ number: "99999" })), rules))).toEqual(["unimicro.customer_number_out_of_range"]);
    expect(codes(customerRules(Customer.parse(customer({ number: "200000" })), rules))).toEqual(["unimicro.customer_number_out_of_range"]);
    expect(codes(customerRules(Customer.parse(customer({ number: "K-100" })), rules))).toEqual(["unimicro.customer_number_not_numeric"]);
    expect(customerRules(Customer.parse(customer({ number: "42" })), { ...rules, customerNumberRange: null })).toEqual([]);
    const p = customerRules(Customer.parse(customer({ number: "42" })), rules)[0]!;
    expect(p.message).toContain("100000 to 199999");
    expect(p.hint).toContain("PSA");
  });

  test("Norwegian organisation numbers have 9 digits; foreign ones are left alone", () => {
    expect(codes(customerRules(Customer.parse(customer({ orgNumber: "12345" })), rules))).toEqual(["unimicro.org_number_invalid"]);
    expect(customerRules(Customer.parse(customer({ orgNumber: "SE556677889901", addresses: [{ country: "SE" }] })), rules)).toEqual([]);
  });

  test("project numbers: digits only, at most 9", () => {
    expect(projectRules({ number: "24017", name: "x", status: "active" }, rules)).toEqual([]);
    expect(codes(projectRules({ number: "P-24017", name: "x", status: "active" }, rules))).toEqual(["unimicro.project_number_not_numeric"]);
    expect(codes(projectRules({ number: "1234567890", name: "x", status: "active" }, rules))).toEqual([
      "unimicro.project_number_not_numeric",
    ]);
  });

  test("invoices: KID or numeric invoice number, line set-up, credit notes", () => {
    expect(invoiceRules(Invoice.parse(invoice()), rules)).toEqual([]);
    expect(codes(invoiceRules(Invoice.parse(invoice({ number: "INV-7" })), rules))).toEqual(["unimicro.invoice_number_not_numeric"]);
    expect(invoiceRules(Invoice.parse(invoice({ number: "INV-7", paymentId: "00071" })), rules)).toEqual([]);
    expect(codes(invoiceRules(Invoice.parse(invoice({ paymentId: "7A" })), rules))).toEqual(["unimicro.kid_invalid"]);
    expect(codes(invoiceRules(Invoice.parse(invoice({ projectNumber: "P1" })), rules))).toEqual(["unimicro.project_number_not_numeric"]);
    expect(
      codes(invoiceRules(Invoice.parse(invoice({ lines: [{ text: "Vare", quantity: 1, unitPrice: 100, kind: "products" }] })), rules)),
    ).toEqual(["unimicro.line_account_missing", "unimicro.line_vat_missing", "unimicro.line_product_missing"]);
    // Negative invoices and credit notes that would charge are refused at intake already; the rules stay as guards.
    const parsed = Invoice.parse(invoice());
    expect(codes(invoiceRules({ ...parsed, lines: [{ ...parsed.lines[0]!, quantity: -1 }] }, rules))).toEqual([
      "unimicro.invoice_negative",
    ]);
    const credit = CreditNote.parse(invoice({ kind: "credit_note", creditedInvoiceNumber: "1" }));
    expect(codes(invoiceRules({ ...credit, lines: [{ ...credit.lines[0]!, quantity: -1 }] }, rules))).toEqual([
      "unimicro.credit_note_not_negative",
    ]);
    // A credit note crediting its own number is refused at intake already; the connector's rule stays as a guard.
    expect(CreditNote.safeParse(invoice({ kind: "credit_note", creditedInvoiceNumber: "10117" })).success).toBe(false);
    const selfCredit = {
      ...CreditNote.parse(invoice({ kind: "credit_note", creditedInvoiceNumber: "1" })),
      creditedInvoiceNumber: "10117",
    };
    expect(codes(invoiceRules(selfCredit, rules))).toEqual(["unimicro.credit_note_self"]);
  });
});

describe("error envelope", () => {
  test("validation results become a plain message with field and hint", () => {
    const p = describeUniError(
      400,
      { Message: "Validation failed", _validationResults: { CustomerNumber: [{ Message: "Customer number already in use", Level: 3 }] } },
      "POST",
      "/api/biz/customers",
      "DnB Regnskap",
    );
    expect(p).toMatchObject({ code: "unimicro.validation", field: "CustomerNumber" });
    expect(p.message).toBe(
      "DnB Regnskap refused POST /api/biz/customers: Validation failed (CustomerNumber: Customer number already in use)",
    );
    expect(p.hint).toContain("already exists");
  });

  test("foreign keys, missing guids, 403 and unknown shapes", () => {
    expect(
      describeUniError(
        500,
        { Message: "An error occurred (foreign key constraint) when saving CustomerInvoiceItem.VatTypeID" },
        "POST",
        "/x",
        "T",
      ),
    ).toMatchObject({ code: "unimicro.foreign_key" });
    expect(
      describeUniError(
        400,
        { Message: "creating new entities in a PUT is not allowed unless _createguid property is specified" },
        "PUT",
        "/x",
        "T",
      ).hint,
    ).toContain("bug");
    expect(describeUniError(403, null, "GET", "/x", "T")).toMatchObject({
      code: "unimicro.http_403",
      message: "T refused GET /x: HTTP 403",
    });
    expect(flattenValidation([{ PropertyName: "Name", Message: "required" }])).toEqual([{ field: "Name", message: "required" }]);
    expect(flattenValidation("broken")).toEqual([{ message: "broken" }]);
  });

  test("query strings encode spaces as %20", () => {
    expect(queryString({ filter: "CustomerNumber eq 1", top: 1, skip: undefined })).toBe("?filter=CustomerNumber%20eq%201&top=1");
  });
});

describe("config", () => {
  const base = { client_id: "c", private_key: "k.pem", company_key: "key" };
  test("brand defaults, and what must be given", () => {
    const s = settingsFrom(
      UniMicroConfig.parse({ ...base, platform: "sparebank1-regnskap", accounts: { hours: 3000 }, vat_codes: { hours: 3 } }),
    );
    expect(s).toMatchObject({ title: "SpareBank 1 Regnskap", baseUrl: "https://regnskap.sb1.no", customerNumberRange: [100000, 199999] });
    expect(s.lines.hours).toEqual({ accountNumber: 3000, vatCode: "3", productId: undefined, productNumber: undefined });
    const dnb = UniMicroConfig.safeParse({ ...base, platform: "dnb-regnskap" });
    expect(dnb.success).toBe(false);
    expect(dnb.error!.issues.map((i) => i.path.join("."))).toEqual(["identity_url"]);
    expect(UniMicroConfig.safeParse({ ...base, platform: "custom" }).error!.issues.map((i) => i.path.join("."))).toEqual([
      "base_url",
      "identity_url",
    ]);
    expect(
      settingsFrom(UniMicroConfig.parse({ ...base, platform: "custom", base_url: "http://x/", identity_url: "http://x/connect/token" }))
        .customerNumberRange,
    ).toBeNull();
  });

  test("the old key names timeout_ms and rate_per_second still work, with a warning naming the new ones; not beside them", () => {
    const target = { name: "uni", kind: "unimicro", ...base, platform: "sparebank1-regnskap" };
    const old = validateConfig({ targets: [{ ...target, timeout_ms: 5000, rate_per_second: 0 }] }, {});
    expect(settingsFrom(old.targets[0]!.settings)).toMatchObject({ timeoutMs: 5000, requestsPerSecond: 0 });
    expect(old.warnings).toEqual([
      "targets[0].timeout_ms is now called request_timeout_ms; it still works, but rename it in kontobro.toml",
      "targets[0].rate_per_second is now called requests_per_second; it still works, but rename it in kontobro.toml",
    ]);
    const now = validateConfig({ targets: [{ ...target, request_timeout_ms: 5000, requests_per_second: 0 }] }, {});
    expect(now.warnings).toEqual([]);
    expect(settingsFrom(now.targets[0]!.settings)).toMatchObject({ timeoutMs: 5000, requestsPerSecond: 0 });
    let problems: string[] = [];
    try {
      validateConfig({ targets: [{ ...target, timeout_ms: 5000, request_timeout_ms: 6000 }] }, {});
    } catch (e) {
      problems = (e as ConfigError).problems;
    }
    expect(problems).toEqual(["targets[0].timeout_ms: is the old name of request_timeout_ms, which is set too; remove timeout_ms"]);
  });
});

describe("sandbox query engine", () => {
  const rows = [
    { ID: 1, StatusCode: 42001, Info: { Name: "Alfa" } },
    { ID: 2, StatusCode: null, Info: { Name: "Beta" } },
    { ID: 3, StatusCode: 42002, Info: { Name: "alfabet" } },
  ];
  const ids = (filter: string) => rows.filter(parseFilter(filter)).map((r) => r.ID);

  test("null compares like SQL: `ne` drops rows whose value is null", () => {
    expect(ids("StatusCode ne 42001")).toEqual([3]);
    expect(ids("StatusCode eq null")).toEqual([2]);
  });

  test("and binds tighter than or; functions; case-insensitive names", () => {
    expect(ids("statuscode eq 42001 or StatusCode eq 42002 and ID eq 3")).toEqual([1, 3]);
    expect(ids("(StatusCode eq 42001 or StatusCode eq 42002) and startswith(info.name,'alfa')")).toEqual([1, 3]);
    expect(ids("contains(Info.Name,'ET')")).toEqual([2, 3]);
    expect(() => parseFilter("ID eq")).toThrow();
  });

  test("select, expand, orderby, top", () => {
    expect(runQuery(rows, { orderby: "ID desc", top: "1", select: "ID,Info.Name" })).toEqual([{ ID: 3, Info: { Name: "alfabet" } }]);
    expect(runQuery(rows, { filter: "ID eq 1" })).toEqual([{ ID: 1, StatusCode: 42001 }]);
    expect(runQuery(rows, { filter: "ID eq 1", expand: "Info" })[0]!.Info).toEqual({ Name: "Alfa" });
  });

  test("KIDs carry a MOD10 check digit", () => {
    expect(kidFor("10117")).toBe("00101170");
  });
});

describe("sandbox fault rules", () => {
  test("one-shot by default, counted, method and case-insensitive path filters, `kind` alias", () => {
    const f = newFaults();
    f.add(
      FaultRulesBody.parse([
        { fault: "503", path: "^/api/biz/customers$" },
        { kind: "429", method: "post", path: "ACTION=INVOICE", count: 2 },
      ]),
    );
    expect(f.decide("GET", "/api/biz/projects", "").fired).toEqual([]);
    expect(f.decide("GET", "/api/biz/customers", "?top=1").fail).toBe("503");
    expect(f.decide("GET", "/api/biz/customers", "").fail).toBeUndefined();
    expect(f.decide("GET", "/api/biz/invoices/9", "?action=invoice").fail).toBeUndefined();
    expect(f.decide("POST", "/api/biz/invoices/9", "?action=invoice").fail).toBe("429");
    expect(f.decide("POST", "/api/biz/invoices/9", "?action=invoice").fail).toBe("429");
    expect(f.list()).toEqual([]);
    expect(FaultRulesBody.safeParse({ fault: "teapot" }).success).toBe(false);
  });
});

describe("sandbox identity server", () => {
  const url = "http://127.0.0.1/connect/token";
  const key = createPrivateKey(privateKeyPem);
  const form = (assertion: string, clientId = "c1") => ({
    grant_type: "client_credentials",
    scope: "AppFramework",
    client_id: clientId,
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: assertion,
  });

  test("accepts a signed assertion once; rejects replay, wrong audience and an unknown key", () => {
    const ids = new IdentityServer(
      [
        { clientId: "c1", publicKey },
        { clientId: "c2", publicKey: generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey },
      ],
      60,
    );
    const a = buildClientAssertion({ clientId: "c1", audience: url, key, nowMs: Date.now() });
    const ok = ids.token(form(a), url);
    expect(ok.status).toBe(200);
    expect(ok.body.expires_in).toBe(60);
    expect(ids.authenticate(`Bearer ${ok.body.access_token}`)).toBe("c1");
    expect(ids.token(form(a), url).body.error_description).toContain("already used");
    expect(
      ids.token(form(buildClientAssertion({ clientId: "c1", audience: "http://elsewhere/connect/token", key, nowMs: Date.now() })), url)
        .body.error_description,
    ).toContain("aud");
    expect(
      ids.token(form(buildClientAssertion({ clientId: "c2", audience: url, key, nowMs: Date.now() }), "c2"), url).body.error_description,
    ).toContain("signature");
    expect(
      ids.token(form(buildClientAssertion({ clientId: "c1", audience: url, key, nowMs: Date.now() - 600_000 })), url).body
        .error_description,
    ).toContain("expired");
    ids.expireAll();
    expect(ids.authenticate(`Bearer ${ok.body.access_token}`)).toBeNull();
  });
});

describe("unimicro booksInputVat: which VAT codes a sales line may not use", () => {
  test("a code that is not an output code is refused only where it would book VAT as input VAT", () => {
    // An input code at 25 %, and one whose rate is not said but which has only an input VAT account.
    expect(booksInputVat({ outputVat: false, percent: 25 })).toBe(true);
    expect(booksInputVat({ outputVat: false, incomingAccount: true, outgoingAccount: false })).toBe(true);
    // Code 0, no VAT handling: not an output code, books no VAT.
    expect(booksInputVat({ outputVat: false, percent: 0 })).toBe(false);
    expect(booksInputVat({ outputVat: false })).toBe(false);
    expect(booksInputVat({ outputVat: false, incomingAccount: true, outgoingAccount: true })).toBe(false);
    expect(booksInputVat({ outputVat: true, percent: 25, incomingAccount: true })).toBe(false);
    expect(booksInputVat({ percent: 25 })).toBe(false);
  });

  test("dated rates (VatTypePercentages) decide on the invoice's date, over a VatPercent left at 0", () => {
    const input = { outputVat: false, percent: 0, rates: [{ from: "2005-01-01", percent: 25 }] };
    expect(booksInputVat(input, "2024-04-30")).toBe(true);
    // The rate that applies on the date: 0 % then, 25 % from 2024 on.
    const changed = {
      outputVat: false,
      percent: 0,
      rates: [
        { to: "2023-12-31", percent: 0 },
        { from: "2024-01-01", percent: 25 },
      ],
    };
    expect(booksInputVat(changed, "2023-06-30")).toBe(false);
    expect(booksInputVat(changed, "2024-01-01")).toBe(true);
    // Dated rates none of which applies on the date: any rate above 0 is refused.
    expect(booksInputVat({ outputVat: false, percent: 0, rates: [{ from: "2025-01-01", percent: 25 }] }, "2024-04-30")).toBe(true);
    // Code 0 with a dated 0 %; no dated rates: VatPercent, as before.
    expect(booksInputVat({ outputVat: false, percent: 0, rates: [{ from: "2005-01-01", percent: 0 }] }, "2024-04-30")).toBe(false);
    expect(booksInputVat({ outputVat: false, percent: 25, rates: [] }, "2024-04-30")).toBe(true);
    expect(
      vatRateOn(
        {
          percent: 0,
          rates: [
            { from: "2020-04-01", to: "2021-09-30", percent: 6 },
            { from: "2021-10-01", percent: 12 },
          ],
        },
        "2021-09-30",
      ),
    ).toBe(6);
  });
});
