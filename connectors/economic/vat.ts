// VAT zones: which of the agreement's own zones (GET /vat-zones) a customer belongs in, from the country
// of its address. Pure functions; agreement.ts fetches what they need.
import type { EconomicConfig } from "./config.ts";

export type VatCategory = "domestic" | "eu" | "abroad";
export const VAT_CATEGORIES: readonly VatCategory[] = ["domestic", "eu", "abroad"];

/** The 27 EU member states (ISO 3166-1 alpha-2; Greece is GR, its VAT prefix EL is accepted too). */
export const EU_COUNTRIES: ReadonlySet<string> = new Set([
  "AT",
  "BE",
  "BG",
  "HR",
  "CY",
  "CZ",
  "DK",
  "EE",
  "FI",
  "FR",
  "DE",
  "GR",
  "EL",
  "HU",
  "IE",
  "IT",
  "LV",
  "LT",
  "LU",
  "MT",
  "NL",
  "PL",
  "PT",
  "RO",
  "SK",
  "SI",
  "ES",
  "SE",
]);

/** A zone as GET /vat-zones lists it. */
export interface VatZone {
  vatZoneNumber: number;
  name?: string;
  enabledForCustomer?: boolean;
}

/**
 * Domestic, EU or abroad, seen from the agreement's country. No country means domestic (the PSA left it
 * out, and most customers are). EU applies only when the agreement itself is in the EU (seen from Norway,
 * a German customer is abroad) and the customer has a VAT number: the EU zone invoices without VAT
 * (reverse charge), which is only right for a VAT-registered business; an EU customer without one pays
 * domestic VAT.
 */
export function vatCategory(country: string | undefined, home: string, hasVatNumber = true): VatCategory {
  if (!country || country === home) return "domestic";
  if (EU_COUNTRIES.has(home) && EU_COUNTRIES.has(country)) return hasVatNumber ? "eu" : "domestic";
  return "abroad";
}

// e-conomic names its standard zones "Domestic", "EU" and "Abroad" in English agreements (zone 1 =
// "Domestic" is documented; the others and the local names are our reading, see README "unverified").
const NAME_PATTERNS: Record<VatCategory, RegExp> = {
  domestic: /\b(domestic|indland|indenlandsk?|innland|innenlands|inrikes|inland)\b/i,
  eu: /\beu\b/i,
  abroad: /\b(abroad|udland(et)?|utland(et)?|export|eksport|outside|non-eu|third countr(y|ies)|tredjeland)\b/i,
};
/** "Domestic exempt" and the like are special zones, never the default for a category. */
const SPECIAL = /exempt|momsfri|fritag|undtaget|reverse|omvendt/i;

/** The one zone whose name says it is for this category, or why there is none. */
export function zoneByName(zones: VatZone[], category: VatCategory): { zone?: VatZone; reason?: string } {
  // e-conomic omits false booleans: a zone without enabledForCustomer is not for customers.
  const usable = zones.filter((z) => z.enabledForCustomer === true && !SPECIAL.test(z.name ?? ""));
  let matches = usable.filter((z) => NAME_PATTERNS[category].test(z.name ?? ""));
  // "Non-EU" matches both patterns; it is abroad.
  if (category !== "abroad") matches = matches.filter((z) => !NAME_PATTERNS.abroad.test(z.name ?? ""));
  if (matches.length === 1) return { zone: matches[0] };
  return {
    reason:
      matches.length === 0
        ? "no VAT zone has a name that says so"
        : `several VAT zones could be it (${matches.map(describeZone).join(", ")})`,
  };
}

export function describeZone(z: VatZone): string {
  return `${z.vatZoneNumber} ${z.name ?? "(no name)"}`.trim();
}

/** The agreement's country from GET /self: agreementType (denmark, sweden, norway), else company.country. */
export function agreementCountry(self: any): string | undefined {
  const names = [self?.agreementType?.name, self?.company?.country].filter((v): v is string => typeof v === "string");
  for (const n of names) {
    if (/^(denmark|danmark|dk)$/i.test(n.trim())) return "DK";
    if (/^(sweden|sverige|se)$/i.test(n.trim())) return "SE";
    if (/^(norway|norge|no)$/i.test(n.trim())) return "NO";
  }
  return undefined;
}

/** How each category (and each country named in the config) maps to a zone number, or why it cannot. */
export interface VatZonePlan {
  home: string;
  homeSource: "config" | "agreement" | "default";
  categories: Record<VatCategory, { zone?: number; name?: string; source: "config" | "agreement"; reason?: string }>;
  countries: Record<string, number>;
  zones: VatZone[];
}

/** Config first (vat_zones.domestic|eu|abroad, the old vat_zone for domestic), else the zone's name. */
export function planVatZones(
  cfg: Pick<EconomicConfig, "vat_zones" | "vat_zone" | "home_country">,
  zones: VatZone[],
  self: any,
): VatZonePlan {
  const fromAgreement = agreementCountry(self);
  const home = cfg.home_country ?? fromAgreement ?? "DK";
  const homeSource = cfg.home_country ? "config" : fromAgreement ? "agreement" : "default";
  const configured: Record<VatCategory, number | undefined> = {
    domestic: cfg.vat_zones.domestic ?? cfg.vat_zone,
    eu: cfg.vat_zones.eu,
    abroad: cfg.vat_zones.abroad,
  };
  const categories = {} as VatZonePlan["categories"];
  for (const c of VAT_CATEGORIES) {
    const n = configured[c];
    if (n !== undefined) {
      categories[c] = { zone: n, name: zones.find((z) => z.vatZoneNumber === n)?.name, source: "config" };
      continue;
    }
    const found = zoneByName(zones, c);
    categories[c] = found.zone
      ? { zone: found.zone.vatZoneNumber, name: found.zone.name, source: "agreement" }
      : { source: "agreement", reason: found.reason };
  }
  return { home, homeSource, categories, countries: { ...cfg.vat_zones.countries }, zones };
}

export type ZoneChoice = { zone: number; category: VatCategory | "country" } | { zone?: undefined; category: VatCategory; reason: string };

/** The zone for a customer in `country`: a per-country override, else its category's zone. */
export function chooseVatZone(plan: VatZonePlan, country: string | undefined, hasVatNumber = true): ZoneChoice {
  if (country && plan.countries[country] !== undefined) return { zone: plan.countries[country]!, category: "country" };
  const category = vatCategory(country, plan.home, hasVatNumber);
  const c = plan.categories[category];
  return c.zone !== undefined ? { zone: c.zone, category } : { category, reason: c.reason ?? "unknown" };
}

export const CATEGORY_TEXT: Record<VatCategory, string> = { domestic: "domestic", eu: "EU", abroad: "abroad (outside the EU)" };
