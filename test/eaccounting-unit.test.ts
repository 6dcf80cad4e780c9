// eAccounting, pure parts: mapping both ways, name splitting, pre-flight rules, the error envelope, the
// expense window, the config.
import { describe, expect, test } from "bun:test";
import { CreditNote, Customer, Invoice, Product, Project } from "../agent/model.ts";
import { describeEaccountingError, retryAfterOf } from "../connectors/eaccounting/client.ts";
import { EaccountingConfig } from "../connectors/eaccounting/config.ts";
import {
  addressLines,
  articleFields,
  customerAddress,
  customerFields,
  customerFromApi,
  draftFields,
  itemFields,
  joinName,
  mergeEntity,
  productFromApi,
  splitName,
  unitKindOf,
} from "../connectors/eaccounting/map.ts";
import { windowStart } from "../connectors/eaccounting/pull.ts";
import { draftTotalDiffers } from "../connectors/eaccounting/invoice-push.ts";
import { customerRules, invoiceRules, productRules, projectRules } from "../connectors/eaccounting/rules.ts";
import { TargetError } from "../connectors/http.ts";

const cfg = EaccountingConfig.parse({ client_id: "c", client_secret: "s", default_article: "100" });
const customer = (over: Record<string, unknown> = {}) =>
  Customer.parse({
    number: "10042",
    name: "Fjordkraft Consulting AB",
    orgNumber: "556677-8899",
    vatNumber: "SE 556677889901",
    email: "faktura@example.se",
    website: "https://example.se",
    phone: "+46 8 123 45",
    addresses: [
      { kind: "visit", street: "Besöksvägen 2", zip: "11133", city: "Stockholm", country: "SE" },
      { kind: "postal", street: "Box 12\nAvd. Ekonomi", zip: "11122", city: "Stockholm", country: "SE" },
    ],
    contacts: [{ name: "Kari Nordmann", email: "kari@example.se", phone: "+46 70 1" }],
    currency: "SEK",
    paymentTermsDays: 14,
    ...over,
  });
const invoice = (over: Record<string, unknown> = {}) =>
  Invoice.parse({
    number: "20001",
    psaId: "psa-20001",
    customerNumber: "10042",
    projectNumber: "P24017",
    date: "2026-04-30",
    dueDate: "2026-05-14",
    currency: "SEK",
    ourReference: "Kari Nordmann",
    yourReference: "Ole Olsen",
    heading: "April 2026",
    lines: [
      { text: "Konsulttimmar", quantity: 37.5, unitPrice: 125000, kind: "hours", productCode: "100" },
      { text: "Resa", quantity: 1, unitPrice: 198400, kind: "expenses" },
    ],
    ...over,
  });

describe("name splitting", () => {
  test("split at the first space coming in; '?' as first name when there is none; joined with a space going out", () => {
    expect(splitName("Kari Nordmann")).toEqual({ firstName: "Kari", lastName: "Nordmann" });
    expect(splitName("  Anna  Maria   von Svensson ")).toEqual({ firstName: "Anna", lastName: "Maria von Svensson" });
    expect(splitName("Nordmann")).toEqual({ firstName: "?", lastName: "Nordmann" });
    expect(joinName("Kari", "Nordmann")).toBe("Kari Nordmann");
    expect(joinName("?", "Nordmann")).toBe("Nordmann");
    expect(joinName(undefined, "Nordmann")).toBe("Nordmann");
    for (const full of ["Kari Nordmann", "Anna Maria von Svensson", "Nordmann"]) {
      const { firstName, lastName } = splitName(full);
      expect(joinName(firstName, lastName)).toBe(full);
    }
  });
});

describe("mapping", () => {
  test("customer out: company, the invoice address else the head office, two address lines, terms, one contact", () => {
    const c = customer();
    expect(customerAddress(c)!.kind).toBe("postal"); // no invoice address: the head office (postal) before the visit address
    expect(addressLines("Box 12\nAvd. Ekonomi\nPlan 3")).toEqual(["Box 12", "Avd. Ekonomi, Plan 3"]);
    expect(customerFields(c, { Id: "t14", NumberOfDays: 14 })).toEqual({
      CustomerNumber: "10042",
      Name: "Fjordkraft Consulting AB",
      IsPrivatePerson: false,
      IsActive: true,
      CorporateIdentityNumber: "556677-8899",
      VatNumber: "SE556677889901",
      InvoiceAddress1: "Box 12",
      InvoiceAddress2: "Avd. Ekonomi",
      InvoicePostalCode: "11122",
      InvoiceCity: "Stockholm",
      InvoiceCountryCode: "SE",
      EmailAddress: "faktura@example.se",
      Telephone: "+46 8 123 45",
      WwwAddress: "https://example.se",
      CurrencyCode: "SEK",
      TermsOfPaymentId: "t14",
      ContactPersonName: "Kari Nordmann",
      ContactPersonEmail: "kari@example.se",
      ContactPersonPhone: "+46 70 1",
    });
    const invoiceAddress = customer({
      addresses: [
        { kind: "postal", street: "A", zip: "1", city: "B", country: "SE" },
        { kind: "invoice", street: "Faktura 1", zip: "2", city: "C", country: "NO" },
      ],
    });
    expect(customerFields(invoiceAddress, { Id: "t", NumberOfDays: 30 })).toMatchObject({
      InvoiceAddress1: "Faktura 1",
      InvoiceCountryCode: "NO",
    });
  });

  test("customer in: the PSA's canonical shape, the contact's name split; a PUT keeps what kontobro does not own", () => {
    const row = {
      Id: "g",
      CustomerNumber: "7",
      Name: "Från eAccounting AB",
      InvoiceAddress1: "Gatan 1",
      InvoiceAddress2: "Lgh 2",
      InvoicePostalCode: "111 22",
      InvoiceCity: "Stockholm",
      InvoiceCountryCode: "SE",
      TermsOfPaymentId: "t30",
      ContactPersonName: "Svensson",
      CurrencyCode: "SEK",
      IsActive: true,
      Note: "kept",
    };
    const c = customerFromApi(row, () => 30);
    expect(Customer.parse(c)).toMatchObject({
      number: "7",
      name: "Från eAccounting AB",
      paymentTermsDays: 30,
      currency: "SEK",
      active: true,
      addresses: [{ kind: "invoice", street: "Gatan 1\nLgh 2", zip: "111 22", city: "Stockholm", country: "SE" }],
    });
    expect(c.contacts).toEqual([{ name: "Svensson", firstName: "?", lastName: "Svensson" }]);
    const merged = mergeEntity(row, { Name: "New", CustomerNumber: "7" }, ["Name", "CustomerNumber", "Telephone"]);
    expect(merged).toMatchObject({ Name: "New", Note: "kept", InvoiceCity: "Stockholm" });
  });

  test("articles: units by kind, price excluding and including VAT; back in the PSA's shape", () => {
    expect([unitKindOf("h"), unitKindOf("Timer"), unitKindOf("km"), unitKindOf("stk"), unitKindOf(undefined)]).toEqual([
      "hours",
      "hours",
      "kilometres",
      null,
      null,
    ]);
    const p = Product.parse({ code: "KONS", name: "Konsult", unit: "h", price: 125000, vatRate: 25 });
    expect(articleFields(p, { unitId: "u-h", codingId: "c25", vatRate: 25 })).toEqual({
      Number: "KONS",
      Name: "Konsult",
      IsActive: true,
      UnitId: "u-h",
      CodingId: "c25",
      NetPrice: 1250,
      GrossPrice: 1562.5,
      IsServiceArticle: true,
    });
    expect(articleFields(Product.parse({ code: "X", name: "X", price: 99999 }), { unitId: "u", vatRate: 12 })).toMatchObject({
      NetPrice: 999.99,
      GrossPrice: 1119.99,
    });
    expect(
      productFromApi(
        { Number: "EA-1", Name: "Art", UnitId: "u", NetPrice: 12.5, CodingId: "c", IsActive: false },
        () => "st",
        () => 25,
      ),
    ).toEqual({ code: "EA-1", name: "Art", unit: "st", price: 1250, vatRate: 25, active: false });
  });

  test("projects are cost-centre items: abbreviation = number, name, active = not closed", () => {
    expect(itemFields(Project.parse({ number: "P24017", name: "ERP", status: "closed" }), "cc1")).toEqual({
      CostCenterId: "cc1",
      ShortName: "P24017",
      Name: "ERP",
      IsActive: false,
    });
  });

  test("an invoice becomes a draft: address from the PSA's customer, references, text rows, article, unit, cost-centre item; a credit note's quantities are negative", () => {
    const ctx = {
      cfg,
      customerId: "cust",
      customer: customer(),
      remoteCustomer: {},
      articleIds: ["a100", "a200"],
      unitIds: [undefined, "u-st"],
      costCenterItemId: "item",
    };
    const d = draftFields(invoice(), ctx);
    expect(d).toMatchObject({
      CustomerId: "cust",
      RotReducedInvoicingType: 0,
      EuThirdParty: false,
      InvoiceDate: "2026-04-30T00:00:00",
      DueDate: "2026-05-14T00:00:00",
      InvoiceCustomerName: "Fjordkraft Consulting AB",
      InvoiceAddress1: "Box 12",
      InvoicePostalCode: "11122",
      InvoiceCity: "Stockholm",
      InvoiceCountryCode: "SE",
      OurReference: "Kari Nordmann",
      YourReference: "Ole Olsen",
      ElectronicReference: "kontobro:psa-20001",
      InvoiceCurrencyCode: "SEK",
    });
    expect(d.IsCreditInvoice).toBeUndefined();
    expect(d.Rows).toEqual([
      { IsTextRow: true, Text: "April 2026", ReversedConstructionServicesVatFree: false },
      {
        ArticleId: "a100",
        IsTextRow: false,
        Text: "Konsulttimmar",
        Quantity: 37.5,
        UnitPrice: 1250,
        ReversedConstructionServicesVatFree: false,
        CostCenterItemId1: "item",
      },
      {
        ArticleId: "a200",
        IsTextRow: false,
        Text: "Resa",
        Quantity: 1,
        UnitPrice: 1984,
        UnitId: "u-st",
        ReversedConstructionServicesVatFree: false,
        CostCenterItemId1: "item",
      },
    ]);
    const credit = CreditNote.parse({
      ...invoice(),
      number: "20002",
      psaId: "psa-cn",
      creditedInvoiceNumber: "20001",
      kind: "credit_note",
    });
    const c = draftFields(credit, { ...ctx, cfg: { ...cfg, reference_field: "OurReference" } });
    expect(c).toMatchObject({
      IsCreditInvoice: true,
      OurReference: "kontobro:psa-cn",
      YourReference: "Ole Olsen",
      DueDate: "2026-04-30T00:00:00",
    });
    expect(c.Rows.filter((r: any) => !r.IsTextRow).map((r: any) => r.Quantity)).toEqual([-37.5, -1]);
    expect(c.Rows[1].Text).toBe("Kreditering av faktura 20001");
  });
});

describe("pre-flight rules", () => {
  test("names and address lines over 50 characters, each naming the record and the field", () => {
    const long = "x".repeat(51);
    const p = customerRules(
      customer({
        name: long,
        addresses: [{ kind: "invoice", street: `${long}\nok`, zip: "12345678901", city: "Stockholm", country: "SE" }],
      }),
    );
    expect(p.map((x) => [x.code, x.field])).toEqual([
      ["eaccounting.too_long", "name"],
      ["eaccounting.too_long", "addresses.0.street"],
      ["eaccounting.too_long", "addresses.0.zip"],
    ]);
    expect(p[0]!.message).toContain("Customer 10042");
    expect(p[0]!.hint).toContain("PSA");
    expect(productRules(Product.parse({ code: "KM", name: long })).map((x) => x.field)).toEqual(["name"]);
    expect(projectRules(Project.parse({ number: "P240170001", name: long })).map((x) => x.field)).toEqual(["number", "name"]);
  });

  test("lengths count UTF-16 code units as eAccounting (.NET) does: 49 characters and an emoji are 51, over a 50-character name", () => {
    const name = `${"x".repeat(49)}😀`;
    const p = customerRules(customer({ name }));
    expect(p.map((x) => [x.code, x.field])).toEqual([["eaccounting.too_long", "name"]]);
    expect(p[0]!.message).toContain("the name is 51 characters (an emoji counts as 2); eAccounting takes at most 50");
    expect(customerRules(customer({ name: `${"x".repeat(48)}😀` }))).toEqual([]);
    expect(projectRules(Project.parse({ number: "P2401701😀", name: "x" })).map((x) => x.field)).toEqual(["number"]);
  });

  test("a line text over 2,000 characters is refused, not cut; the references over 100 too, but not the one carrying kontobro's marker", () => {
    const text = "é".repeat(2001);
    const inv = invoice({ lines: [{ text, quantity: 1, unitPrice: 100, productCode: "100" }], ourReference: "x".repeat(101) });
    expect(invoiceRules(inv, undefined, cfg).map((x) => [x.code, x.field])).toEqual([
      ["eaccounting.too_long", "ourReference"],
      ["eaccounting.too_long", "lines.0.text"],
    ]);
    const markerInOurs = EaccountingConfig.parse({
      client_id: "c",
      client_secret: "s",
      default_article: "100",
      reference_field: "OurReference",
    });
    expect(invoiceRules(inv, undefined, markerInOurs).map((x) => x.field)).toEqual(["lines.0.text"]);
    // Were a text ever sent, it goes whole: eAccounting refuses it with the field's name rather than booking a cut one.
    const ctx = { cfg, customerId: "cust", customer: customer(), remoteCustomer: {}, articleIds: ["a100"], unitIds: [undefined] };
    const row = (draftFields(inv, ctx).Rows as any[]).find((r) => !r.IsTextRow);
    expect(row.Text).toBe(text);
  });

  test("kontobro's marker is checked against reference_field's own limit: BuyersOrderReference takes 35, the others 100", () => {
    const psaId = "psa-0123456789-abcdefghijklmnop"; // "kontobro:" + 31 = 40 characters
    const buyers = EaccountingConfig.parse({ ...cfg, reference_field: "BuyersOrderReference" });
    const refused = invoiceRules(invoice({ psaId }), undefined, buyers);
    expect(refused.map((x) => [x.code, x.field])).toEqual([["eaccounting.psa_id_too_long", "psaId"]]);
    expect(refused[0]!.message).toContain("is 40 characters; eAccounting's BuyersOrderReference (reference_field) takes at most 35");
    expect(refused[0]!.hint).toContain('reference_field = "ElectronicReference"');
    expect(invoiceRules(invoice({ psaId: "p".repeat(26) }), undefined, buyers)).toEqual([]); // 35 exactly
    expect(invoiceRules(invoice({ psaId }), undefined, cfg)).toEqual([]);
    const long = invoiceRules(invoice({ psaId: "p".repeat(92) }), undefined, cfg);
    expect(long.map((x) => x.code)).toEqual(["eaccounting.psa_id_too_long"]);
    expect(long[0]!.message).toContain("ElectronicReference (reference_field) takes at most 100");
  });

  test("an invoice whose customer's name is over eAccounting's 50 characters is refused before any draft, not sent whole or cut", () => {
    // The customer's own push refuses the name, but an invoice still goes for a customer eAccounting already has (made
    // before the name grew, by hand, or eAccounting master of customers): its InvoiceCustomerName goes as the PSA's.
    const long = customer({ name: "Nordisk Förvaltning och Fastighetsservice i Norrland AB" });
    const p = invoiceRules(invoice(), (e) => (e === "customer" ? long : null), cfg);
    expect(p.map((x) => [x.code, x.field])).toEqual([["eaccounting.too_long", "customerNumber"]]);
    expect(p[0]).toMatchObject({ record: { entity: "customer", key: "10042" } });
    expect(p[0]!.message).toContain("55 characters");
  });

  test("a customer or invoice without address, postcode, city or country is refused before sending, naming the field", () => {
    const p = customerRules(customer({ addresses: [{ kind: "invoice", street: "Gatan 1", city: "Stockholm" }] }));
    expect(p.map((x) => x.field)).toEqual(["addresses.0.zip", "addresses.0.country"]);
    expect(customerRules(customer({ addresses: [] })).map((x) => x.field)).toEqual([
      "addresses.0.street",
      "addresses.0.zip",
      "addresses.0.city",
      "addresses.0.country",
    ]);
    const bare = customer({ addresses: [{ kind: "postal", city: "Stockholm" }] });
    const inv = invoiceRules(invoice(), (e) => (e === "customer" ? bare : null), cfg);
    expect(inv).toHaveLength(1);
    expect(inv[0]).toMatchObject({ code: "eaccounting.invoice_address_missing", record: { entity: "customer", key: "10042" } });
    expect(inv[0]!.message).toContain("address, postcode, country");
  });

  test("lines need an article (the product or default_article); quantities take 2 decimals; credit notes need the opt-in", () => {
    const noDefault = EaccountingConfig.parse({ client_id: "c", client_secret: "s" });
    expect(invoiceRules(invoice(), undefined, noDefault).map((x) => x.field)).toEqual(["lines.1.productCode"]);
    expect(
      invoiceRules(invoice({ lines: [{ text: "x", quantity: 1.125, unitPrice: 100, productCode: "100" }] }), undefined, cfg).map(
        (x) => x.code,
      ),
    ).toEqual(["eaccounting.quantity_decimals"]);
    const credit = CreditNote.parse({ ...invoice(), number: "20002", psaId: "cn", creditedInvoiceNumber: "20001", kind: "credit_note" });
    const refused = invoiceRules(credit, undefined, cfg);
    expect(refused.map((x) => x.code)).toEqual(["eaccounting.credit_note_not_transferred"]);
    expect(refused[0]!.hint).toContain('credit_notes = "draft"');
    expect(invoiceRules(credit, undefined, { ...cfg, credit_notes: "draft" })).toEqual([]);
  });
});

describe("errors", () => {
  test("the envelope: code by name, the field, a hint per ErrorCode; 'Try again in N seconds'", () => {
    const p = describeEaccountingError(
      400,
      { ErrorCode: 2000, DeveloperErrorMessage: "Name: The field Name must be a string with a maximum length of 50.", ErrorId: "x" },
      "POST",
      "/v2/customers",
    );
    expect(p).toMatchObject({ code: "eaccounting.DataModelValidationError", field: "Name" });
    expect(p.message).toBe(
      "eAccounting refused POST /v2/customers (2000 DataModelValidationError): Name: The field Name must be a string with a maximum length of 50.",
    );
    expect(
      describeEaccountingError(
        400,
        { ErrorCode: 4000, DeveloperErrorMessage: "CostCenterItemAlreadyExists: A cost center item with the short name X already exists." },
        "POST",
        "/v2/costcenteritems",
      ).code,
    ).toBe("eaccounting.CostCenterItemAlreadyExists");
    for (const code of [4003, 4012, 4006, 4019])
      expect(describeEaccountingError(403, { ErrorCode: code, DeveloperErrorMessage: "x" }, "GET", "/v2/customers").hint).toBeTruthy();
    const e = new TargetError("retryable", { code: "eaccounting.TooManyRequests", message: "… Try again in 55 seconds.", status: 429 });
    expect(retryAfterOf(e)).toBe(55_000);
  });
});

describe("a draft's own total (its POST or PUT answer)", () => {
  // invoice(): 37.5 × 1250.00 + 1 × 1984.00 = 48859.00 SEK excluding VAT; 25 % VAT is 12214.75.
  const answer = (over: Record<string, unknown> = {}) => ({
    TotalAmount: 61073.75,
    TotalVatAmount: 12214.75,
    InvoiceCurrencyCode: "SEK",
    ...over,
  });
  const credit = () =>
    CreditNote.parse({ ...invoice(), number: "20002", psaId: "cn", creditedInvoiceNumber: "20001", kind: "credit_note" });

  test("the PSA's net is TotalAmount - TotalVatAmount; another net or currency is the needs-action error", () => {
    expect(draftTotalDiffers(invoice(), answer())).toBeNull();
    const other = draftTotalDiffers(invoice(), answer({ TotalAmount: 71073.75 }));
    expect(other).toMatchObject({ kind: "permanent", code: "eaccounting.total_differs" });
    expect(other!.message).toContain("as 58859.00 SEK, but the PSA invoiced 48859.00 SEK");
    // A gross total compared as if it were the net (VAT added on top of a VAT-inclusive price) is a difference too.
    expect(draftTotalDiffers(invoice(), answer({ TotalAmount: 48859, TotalVatAmount: 9771.8 }))?.code).toBe("eaccounting.total_differs");
    const eur = draftTotalDiffers(invoice({ currency: "EUR" }), answer());
    expect(eur!.message).toContain("as 48859.00 SEK, but the PSA invoiced 48859.00 EUR");
    expect(draftTotalDiffers(invoice({ currency: "EUR" }), answer({ InvoiceCurrencyCode: "EUR" }))).toBeNull();
  });

  test("öre rounding: the net with or without TotalRoundings (which one TotalAmount holds is unverified)", () => {
    expect(draftTotalDiffers(invoice(), answer({ TotalAmount: 61074, TotalRoundings: 0.25 }))).toBeNull();
    expect(draftTotalDiffers(invoice(), answer({ TotalRoundings: 0.25 }))).toBeNull();
    expect(draftTotalDiffers(invoice(), answer({ TotalAmount: 61074, TotalRoundings: 0.1 }))?.code).toBe("eaccounting.total_differs");
  });

  test("a credit invoice draft by size (the sign of its totals is unverified): negative or positive, the same amount", () => {
    expect(draftTotalDiffers(credit(), answer({ TotalAmount: -61073.75, TotalVatAmount: -12214.75 }))).toBeNull();
    expect(draftTotalDiffers(credit(), answer())).toBeNull();
    const other = draftTotalDiffers(credit(), answer({ TotalAmount: -71073.75, TotalVatAmount: -12214.75 }));
    expect(other!.message).toContain(
      "Credit note 20002: eAccounting computed its total excluding VAT as -58859.00 SEK, but the PSA invoiced -48859.00 SEK",
    );
  });

  test("an answer without its totals is not compared; totals that are not numbers are a difference", () => {
    expect(draftTotalDiffers(invoice(), { Id: "d" })).toBeNull();
    expect(draftTotalDiffers(invoice(), answer({ TotalVatAmount: null }))).toBeNull();
    expect(draftTotalDiffers(invoice(), answer({ TotalAmount: "n/a" }))?.message).toContain('"n/a - 12214.75" SEK');
  });
});

describe("expense window and config", () => {
  test("this week and the one before (ISO weeks), or months, or days", () => {
    expect(windowStart("2026-04-30", "week", 1)).toBe("2026-04-20"); // Thursday → Monday of last week
    expect(windowStart("2026-04-27", "week", 0)).toBe("2026-04-27");
    expect(windowStart("2026-05-03", "week", 0)).toBe("2026-04-27"); // Sunday
    expect(windowStart("2026-03-15", "month", 1)).toBe("2026-02-01");
    expect(windowStart("2026-03-15", "day", 2)).toBe("2026-03-13");
  });

  test("defaults and refusals", () => {
    expect(cfg).toMatchObject({
      api_url: "https://eaccountingapi.vismaonline.com/v2",
      identity_url: "https://identity.vismaonline.com/connect",
      cost_center: 1,
      reference_field: "ElectronicReference",
      credit_notes: "needs_action",
      requests_per_second: 8,
      filter: "server",
    });
    expect(EaccountingConfig.safeParse({ client_id: "c", client_secret: "s", cost_center: 4 }).success).toBe(false);
    expect(EaccountingConfig.safeParse({ client_id: "c", client_secret: "s", rate_per_second: 4 }).success).toBe(false);
  });
});
