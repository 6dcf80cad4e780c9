// Pure mapping and pre-flight rules for e-conomic.
import { describe, expect, test } from "bun:test";
import { Customer, CreditNote, Invoice, Project } from "../agent/model.ts";
import { EconomicConfig } from "../connectors/economic/config.ts";
import { customerBody, draftInvoiceBody, projectBody } from "../connectors/economic/map.ts";
import { economicRules } from "../connectors/economic/rules.ts";
import { customerEvent, invoiceEvent, projectEvent } from "./helpers.ts";

const cfg = EconomicConfig.parse({ app_secret_token: "a", agreement_grant_token: "g" });

describe("e-conomic mapping", () => {
  test("a customer keeps the PSA number, group 1, VAT zone, terms and address", () => {
    const c = Customer.parse({ ...customerEvent(10042).data, orgNumber: "912345678", email: "a@b.no" });
    expect(customerBody(c, cfg)).toEqual({
      customerNumber: 10042,
      name: "Customer 10042",
      currency: "NOK",
      customerGroup: { customerGroupNumber: 1 },
      vatZone: { vatZoneNumber: 1 },
      paymentTerms: { paymentTermsNumber: 1 },
      corporateIdentificationNumber: "912345678",
      email: "a@b.no",
      address: "Strandgaten 1",
      zip: "5013",
      city: "Bergen",
      country: "Norway",
    });
  });

  test("an inactive customer is barred; false booleans are omitted", () => {
    expect(customerBody(Customer.parse({ ...customerEvent(1).data, active: false }), cfg).barred).toBe(true);
    expect("barred" in customerBody(Customer.parse(customerEvent(1).data), cfg)).toBe(false);
  });

  test("a project is numeric and in the internal project group", () => {
    expect(projectBody(Project.parse(projectEvent(4711, 10042).data), cfg)).toEqual({
      number: 4711,
      name: "Project 4711",
      projectGroupNumber: 1,
      customerNumber: 10042,
    });
  });

  test("an invoice: PSA id in references.other, products per line kind, prices in decimals", () => {
    const inv = Invoice.parse(invoiceEvent(20001, 10042, 4711).data);
    const customer = Customer.parse(customerEvent(10042).data);
    const body: any = draftInvoiceBody(inv, customer, cfg);
    expect(body.references).toEqual({ other: "PSA-INV-20001" });
    expect(body.project).toEqual({ projectNumber: 4711 });
    expect(body.recipient).toEqual({
      name: "Customer 10042",
      address: "Strandgaten 1",
      zip: "5013",
      city: "Bergen",
      country: "Norway",
      vatZone: { vatZoneNumber: 1 },
    });
    expect(body.lines).toEqual([
      { lineNumber: 1, sortKey: 1, product: { productNumber: "TIME" }, description: "Consulting", quantity: 7.5, unitNetPrice: 1450 },
      { lineNumber: 2, sortKey: 2, product: { productNumber: "EXPENSE" }, description: "Travel", quantity: 1, unitNetPrice: 500 },
    ]);
    expect(body.dueDate).toBeUndefined();
  });

  test("a credit note negates quantities", () => {
    const cn = CreditNote.parse({ ...invoiceEvent(20002, 1).data, creditedInvoiceNumber: "20001" });
    const body: any = draftInvoiceBody(cn, null, cfg);
    expect(body.lines.map((l: any) => l.quantity)).toEqual([-7.5, -1]);
    expect(body.notes.heading).toContain("20001");
  });
});

describe("e-conomic pre-flight rules", () => {
  test("non-numeric project numbers fail with a hint", () => {
    const [p] = economicRules("project", Project.parse({ number: "P-100", name: "x" }));
    expect(p!.code).toBe("economic.number_not_numeric");
    expect(p!.field).toBe("number");
    expect(p!.hint).toContain("digits only");
  });

  test("lengths and numbers of invoices are checked", () => {
    const inv = Invoice.parse({ ...invoiceEvent(1, 1).data, number: "F-2026-1", customerNumber: "1000000000" });
    const codes = economicRules("invoice", inv).map((p) => p.field);
    expect(codes).toEqual(["number", "customerNumber"]);
    expect(economicRules("invoice", Invoice.parse(invoiceEvent(5, 1).data))).toEqual([]);
    expect(economicRules("customer", Customer.parse({ number: 1, name: "x".repeat(255), addresses: [{ city: "y".repeat(50) }] }))).toEqual(
      [],
    );
  });
});
