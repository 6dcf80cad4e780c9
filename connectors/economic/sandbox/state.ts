// The sandbox's agreement: plain Maps, seeded with what Moment's e-conomic integration needs
// (customer group 1, an Internal project group, journal 1) plus the lookups every push reads.
import { createLedger, type LedgerState } from "./ledger.ts";

export type Json = Record<string, any>;

export interface Attachment {
  fileName: string;
  size: number;
  pages: number;
  bytes: Uint8Array;
}

export interface DraftRecord {
  invoice: Json;
  attachment?: Attachment;
}

export interface BookedRecord {
  invoice: Json;
  /** The PDF the draft carried when it was booked (whether e-conomic keeps it is unverified). */
  attachment?: Attachment;
  sendBy?: string;
}

export interface SandboxState {
  self: Json;
  customerGroups: Map<number, Json>;
  vatZones: Map<number, Json>;
  paymentTerms: Map<number, Json>;
  layouts: Map<number, Json>;
  units: Map<number, Json>;
  productGroups: Map<number, Json>;
  /** Each product group's sales account per VAT zone (GET /product-groups/{n}/sales-accounts). */
  salesAccounts: Map<number, Record<number, number>>;
  journals: Map<number, Json>;
  projectGroups: Map<number, Json>;
  customers: Map<number, Json>;
  products: Map<string, Json>;
  projects: Map<number, Json>;
  drafts: Map<number, DraftRecord>;
  booked: Map<number, BookedRecord>;
  counters: { nextDraftNumber: number; objectVersion: number };
  /** Accounting years, accounts, suppliers, VAT, booked entries and webhooks (ledger.ts). */
  ledger: LedgerState;
  /**
   * A fault, not e-conomic's documented behaviour: products booked at this unit price whatever a line's unitNetPrice
   * says (a price list the agreement applies), so the draft's totals are not the invoice's. Set by PUT /__sandbox/price-list.
   */
  priceList: Map<string, number>;
  /**
   * A fault: the agreement's discount in percent on these products, given to a line that sets no discountPercentage (a
   * customer's invoice-line template carries one, REST schemas), so the invoice is booked for less than its netAmount
   * says (which is before discounts). Set by PUT /__sandbox/line-discounts.
   */
  lineDiscounts: Map<string, number>;
}

/** Seed items a control call can remove so a check fails with a readable error. */
export const REMOVABLE_SEED = ["customerGroup1", "internalProjectGroup", "journal1", "dueDateTerms"] as const;
export type RemovableSeed = (typeof REMOVABLE_SEED)[number];

export const PROJECT_GROUP_INTERNAL = 1;

export function createState(): SandboxState {
  const state: SandboxState = {
    self: seedSelf(),
    customerGroups: byNumber("customerGroupNumber", [
      { customerGroupNumber: 1, name: "Domestic customers", account: { accountNumber: 5600 } },
      { customerGroupNumber: 2, name: "Foreign customers", account: { accountNumber: 5610 } },
    ]),
    vatZones: byNumber("vatZoneNumber", [
      { vatZoneNumber: 1, name: "Domestic", enabledForCustomer: true, enabledForSupplier: true },
      { vatZoneNumber: 2, name: "EU", enabledForCustomer: true, enabledForSupplier: true },
      { vatZoneNumber: 3, name: "Abroad", enabledForCustomer: true, enabledForSupplier: true },
      { vatZoneNumber: 4, name: "Domestic exempt", enabledForCustomer: true, enabledForSupplier: false },
    ]),
    paymentTerms: byNumber("paymentTermsNumber", [
      { paymentTermsNumber: 1, name: "Net 14 days", daysOfCredit: 14, paymentTermsType: "net" },
      { paymentTermsNumber: 2, name: "Net 30 days", daysOfCredit: 30, paymentTermsType: "net" },
      // The invoice carries its own due date (mandatory with these terms, ignored with the others).
      { paymentTermsNumber: 3, name: "Due date", daysOfCredit: 0, paymentTermsType: "dueDate" },
    ]),
    layouts: byNumber("layoutNumber", [{ layoutNumber: 19, name: "Standard invoice" }]),
    units: byNumber("unitNumber", [
      { unitNumber: 1, name: "pcs" },
      { unitNumber: 2, name: "hours" },
    ]),
    productGroups: byNumber("productGroupNumber", [{ productGroupNumber: 1, name: "Services and goods" }]),
    // Domestic sales on 1010 (VAT code U25); EU, abroad and exempt on 1020 (no VAT account: no VAT).
    salesAccounts: new Map([[1, { 1: 1010, 2: 1020, 3: 1020, 4: 1020 }]]),
    journals: byNumber("journalNumber", [
      {
        journalNumber: 1,
        name: "Daily journal",
        settings: { voucherNumbers: { minimumVoucherNumber: 1, maximumVoucherNumber: 999999999 } },
      },
    ]),
    projectGroups: new Map(),
    customers: new Map(),
    products: new Map(),
    projects: new Map(),
    drafts: new Map(),
    booked: new Map(),
    counters: { nextDraftNumber: 1, objectVersion: 0 },
    ledger: createLedger(),
    priceList: new Map(),
    lineDiscounts: new Map(),
  };
  for (const g of [
    { number: PROJECT_GROUP_INTERNAL, name: "Internal", type: 1 },
    { number: 2, name: "External invoiceable", type: 2 },
  ]) {
    state.projectGroups.set(g.number, {
      ...g,
      includeCostPriceInFinance: false,
      includeSalesPriceInFinance: false,
      objectVersion: nextObjectVersion(state),
    });
  }
  const now = new Date().toISOString();
  for (const p of [
    { productNumber: "TIME", name: "Hours", unit: { unitNumber: 2 }, salesPrice: 1000 },
    { productNumber: "EXPENSE", name: "Expenses", unit: { unitNumber: 1 }, salesPrice: 0 },
    { productNumber: "PRODUCT", name: "Products", unit: { unitNumber: 1 }, salesPrice: 100 },
  ]) {
    state.products.set(p.productNumber, { ...p, productGroup: { productGroupNumber: 1 }, lastUpdated: now });
  }
  return state;
}

/** Removes seed items; returns the names that were unknown. */
export function removeSeed(state: SandboxState, items: string[]): string[] {
  const unknown: string[] = [];
  for (const item of items) {
    if (item === "customerGroup1") state.customerGroups.delete(1);
    else if (item === "journal1") state.journals.delete(1);
    else if (item === "dueDateTerms") {
      for (const [n, t] of state.paymentTerms) if (t.paymentTermsType === "dueDate") state.paymentTerms.delete(n);
    } else if (item === "internalProjectGroup") {
      for (const [n, g] of state.projectGroups) if (g.type === 1) state.projectGroups.delete(n);
    } else unknown.push(item);
  }
  return unknown;
}

/** Opaque and changing on every write, like e-conomic's (base64 of a row version). */
export function nextObjectVersion(state: SandboxState): string {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(++state.counters.objectVersion));
  return Buffer.from(bytes).toString("base64");
}

function byNumber(key: string, items: Json[]): Map<number, Json> {
  return new Map(items.map((i) => [i[key] as number, i]));
}

function seedSelf(): Json {
  return {
    agreementNumber: 1234567,
    // self.get: "It can either be denmark, sweden or norway"; the domestic VAT country follows it.
    agreementType: { agreementTypeNumber: 1, name: "Denmark" },
    userName: "kontobro sandbox",
    signupDate: "2026-01-01",
    user: { loginId: "sandbox", email: "sandbox@example.invalid", name: "Sandbox user", agreementNumber: 1234567 },
    company: {
      name: "Kontobro Sandbox ApS",
      addressLine1: "Sandkassevej 1",
      zip: "2100",
      city: "København Ø",
      country: "Danmark",
      companyIdentificationNumber: "12345678",
      email: "sandbox@example.invalid",
    },
    application: {
      appNumber: 1,
      name: "kontobro (sandbox)",
      appPublicToken: "demo-app-public",
      created: "2026-01-01",
      requiredRoles: [{ roleNumber: 1, name: "SuperUser" }],
    },
    settings: { baseCurrency: "DKK" },
    canSendElectronicInvoice: true,
    modules: [{ moduleNumber: 1, name: "Project" }],
  };
}
