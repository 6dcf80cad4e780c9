// What the connector reads from the agreement itself and keeps for a while: its country (GET /self), its
// VAT zones (GET /vat-zones), its payment terms (GET /payment-terms) and the VAT a product's lines are booked with
// (its group's sales accounts). Used by pushes and by check.
import { TargetError } from "../http.ts";
import type { EconomicConfig } from "./config.ts";
import { CATEGORY_TEXT, chooseVatZone, describeZone, planVatZones, type VatZone, type VatZonePlan } from "./vat.ts";

type Get = (url: string) => Promise<any | null>;

/** Lookups are re-read after this long, so a zone or payment terms created in e-conomic is seen without a restart. */
const CACHE_MS = 10 * 60 * 1000;

export interface PaymentTerms {
  paymentTermsNumber: number;
  name?: string;
  paymentTermsType?: string;
  daysOfCredit?: number;
}

/** One row of GET /product-groups/{n}/sales-accounts. */
interface SalesAccount {
  salesAccount?: { accountNumber?: number; name?: string; vatAccount?: { vatCode?: string } };
  vatZone?: { vatZoneNumber?: number };
}

/** The payment terms invoices use, and whether they carry the PSA's due date. */
export interface InvoiceTerms {
  paymentTerms: number;
  keepsDueDate: boolean;
  /** Why the PSA's due date is not kept (no due-date terms), for notes and check. */
  reason?: string;
}

export class AgreementSettings {
  private cache = new Map<string, { at: number; value: Promise<any> }>();
  /** The last plan made, with the zones and /self it was made of (and the readings, cache entries, they came from). */
  private plan: { zones: VatZone[]; self: unknown; plan: VatZonePlan; read: [Promise<VatZone[]>, Promise<unknown>] } | null = null;

  constructor(
    private readonly cfg: EconomicConfig,
    private readonly get: Get,
    private readonly rest: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The zones, the agreement's country and the configured overrides, as one plan: made again only when what it is
   * made of was read again (every customer's push asks for it; matching the zones' names cost more than the push's
   * mapping).
   */
  async vatZonePlan(): Promise<VatZonePlan> {
    const read: [Promise<VatZone[]>, Promise<unknown>] = [
      this.list<VatZone>("/vat-zones"),
      this.cached("/self", () => this.get(`${this.rest}/self`)),
    ];
    const last = this.plan;
    // The same readings as the plan's (the cache's entries, not read again): its plan, without waiting for them again.
    if (last && last.read[0] === read[0] && last.read[1] === read[1]) return last.plan;
    const [zones, self] = await Promise.all(read);
    if (last && last.zones === zones && last.self === self) {
      this.plan = { ...last, read };
      return last.plan;
    }
    const plan = planVatZones(this.cfg, zones, self);
    this.plan = { zones, self, plan, read };
    return plan;
  }

  /** The zone number for a customer whose address is in `country`; a TargetError (needs action) when it cannot be told. */
  async vatZoneFor(country: string | undefined, hasVatNumber = true): Promise<number> {
    const plan = await this.vatZonePlan();
    const choice = chooseVatZone(plan, country, hasVatNumber);
    if (choice.zone !== undefined) return choice.zone;
    throw new TargetError("permanent", {
      code: "economic.vat_zone_unknown",
      message: `kontobro cannot tell which e-conomic VAT zone is for ${CATEGORY_TEXT[choice.category]} customers${country ? ` (country ${country})` : ""}: ${choice.reason}. The agreement's zones: ${plan.zones.map(describeZone).join(", ") || "none"}.`,
      hint: `Set the zone in kontobro.toml, e.g. vat_zones = { ${choice.category} = N } with N from the list, restart kontobro, run \`kontobro check\` and press retry.`,
    });
  }

  /**
   * Payment terms of type dueDate keep the PSA's due date on the invoice: the configured
   * due_date_payment_terms, else the agreement's first terms of that type; without any, payment_terms.
   */
  async invoiceTerms(): Promise<InvoiceTerms> {
    if (this.cfg.due_date_payment_terms !== undefined) return { paymentTerms: this.cfg.due_date_payment_terms, keepsDueDate: true };
    const terms = await this.paymentTerms();
    const dueDate = terms
      .filter((t) => String(t.paymentTermsType ?? "").toLowerCase() === "duedate")
      .sort((a, b) => a.paymentTermsNumber - b.paymentTermsNumber)[0];
    if (dueDate) return { paymentTerms: dueDate.paymentTermsNumber, keepsDueDate: true };
    const fallback = terms.find((t) => t.paymentTermsNumber === this.cfg.payment_terms);
    return {
      paymentTerms: this.cfg.payment_terms,
      keepsDueDate: false,
      reason: `the agreement has no payment terms of type "due date", so e-conomic sets each invoice's due date from payment terms ${this.cfg.payment_terms}${fallback?.name ? ` (${fallback.name})` : ""}, not the PSA's due date`,
    };
  }

  paymentTerms(): Promise<PaymentTerms[]> {
    return this.list<PaymentTerms>("/payment-terms");
  }

  /**
   * The sales account e-conomic books a line on this product on, for customers in this VAT zone, and that account's
   * VAT code (none: no VAT): the product's group (GET /products/{n}) and the group's sales account for the zone
   * (GET /product-groups/{n}/sales-accounts), each read once in a while; the product again when it is not in
   * `expectedGroup` (the group kontobro puts the PSA's product into). `product` false: e-conomic has no such product;
   * `account` undefined: the group has no sales account for the zone. Either way the VAT it would book cannot be told.
   */
  async lineBooking(
    productNumber: string,
    zone: number,
    expectedGroup?: number,
  ): Promise<{ product: boolean; group?: number; account?: number; vatCode?: string }> {
    const key = `/products/${productNumber}`;
    const read = () => this.cached(key, () => this.get(`${this.rest}/products/${encodeURIComponent(productNumber)}`));
    let product = await read();
    if (product && expectedGroup !== undefined && Number(product.productGroup?.productGroupNumber) !== expectedGroup) {
      // Read before kontobro put it into `expectedGroup` (its push forgets it only in the process that made it): again.
      this.cache.delete(key);
      product = await read();
    }
    if (!product) this.cache.delete(key); // asked again next time: it may be created any moment
    const group = Number(product?.productGroup?.productGroupNumber);
    if (!product || !Number.isInteger(group)) return { product: !!product };
    return { product: true, group, ...(await this.groupBooking(group, zone)) };
  }

  /** A product group's sales account for customers in this VAT zone and that account's VAT code (none: no VAT). */
  async groupBooking(group: number, zone: number): Promise<{ account?: number; vatCode?: string }> {
    const accounts = await this.list<SalesAccount>(`/product-groups/${group}/sales-accounts`);
    const forZone = accounts.find((a) => a.vatZone?.vatZoneNumber === zone)?.salesAccount;
    return { account: forZone?.accountNumber, vatCode: forZone?.vatAccount?.vatCode };
  }

  /** A VAT code's rate in percent (GET /vat-accounts), or undefined when the agreement has no such code. */
  async vatRate(vatCode: string): Promise<number | undefined> {
    const found = (await this.list<{ vatCode?: string; ratePercentage?: number }>("/vat-accounts")).find((v) => v.vatCode === vatCode);
    return found ? Number(found.ratePercentage ?? 0) : undefined;
  }

  /** Forget a product read for lineBooking (it was just pushed: its group may be another now). */
  forgetProduct(productNumber: string): void {
    this.cache.delete(`/products/${productNumber}`);
  }

  /** Forget everything read (after e-conomic refused a zone or terms that were looked up). */
  forget(): void {
    this.cache.clear();
    this.plan = null;
  }

  private list<T>(path: string): Promise<T[]> {
    return this.cached(path, async () => ((await this.get(`${this.rest}${path}?pagesize=1000`))?.collection ?? []) as T[]);
  }

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < CACHE_MS) return hit.value;
    const value = load();
    this.cache.set(key, { at: this.now(), value });
    value.catch(() => {
      if (this.cache.get(key)?.value === value) this.cache.delete(key);
    });
    return value;
  }
}
