// `kontobro check` for e-conomic: the tokens work, and the set-up the integration relies on exists.
import type { CheckItem } from "../contract.ts";
import { isTargetError } from "../http.ts";
import type { AgreementSettings } from "./agreement.ts";
import type { EconomicConfig } from "./config.ts";
import { CATEGORY_TEXT, describeZone, VAT_CATEGORIES, type VatZonePlan } from "./vat.ts";

type Get = (url: string) => Promise<any | null>;

export async function runChecks(
  cfg: EconomicConfig,
  get: Get,
  rest: string,
  projects: string,
  settings: AgreementSettings,
): Promise<CheckItem[]> {
  const items: CheckItem[] = [];
  try {
    const self = await get(`${rest}/self`);
    items.push({
      ok: true,
      name: "tokens",
      message: `Connected to agreement ${self?.agreementNumber ?? "?"} (${self?.company?.name ?? "unknown company"}).`,
    });
  } catch (e) {
    items.push(
      failed(
        "tokens",
        e,
        "Check app_secret_token and agreement_grant_token in kontobro.toml (or their environment variables). Both come from e-conomic: the app's secret token, and the grant token shown when the customer added the app.",
      ),
    );
    return items; // nothing else can be checked without working tokens
  }
  items.push(
    await exists(
      get,
      `${rest}/customer-groups/${cfg.customer_group}`,
      `customer group ${cfg.customer_group}`,
      `Customer group ${cfg.customer_group} does not exist in e-conomic; new customers are put in it.`,
      `Create customer group ${cfg.customer_group} in e-conomic (Settings → Customers → Customer groups), or set customer_group in kontobro.toml to an existing group.`,
    ),
  );
  items.push(await projectGroup(get, projects, cfg.project_group));
  items.push(
    await exists(
      get,
      `${rest}/journals/${cfg.journal}`,
      `journal ${cfg.journal}`,
      `Journal ${cfg.journal} does not exist in e-conomic; the integration uses it for postings.`,
      `Create journal ${cfg.journal} in e-conomic (Accounting → Journals), or set journal in kontobro.toml.`,
    ),
  );
  items.push(...(await vatZoneChecks(settings)));
  items.push(
    await exists(
      get,
      `${rest}/payment-terms/${cfg.payment_terms}`,
      `payment terms ${cfg.payment_terms}`,
      `Payment terms ${cfg.payment_terms} do not exist.`,
      "Set payment_terms in kontobro.toml to existing payment terms (Settings → Payment terms).",
    ),
  );
  items.push(await dueDateCheck(cfg, settings));
  items.push(
    await exists(
      get,
      `${rest}/layouts/${cfg.layout}`,
      `layout ${cfg.layout}`,
      `Invoice layout ${cfg.layout} does not exist.`,
      "Set layout in kontobro.toml to one of the agreement's layouts.",
    ),
  );
  // Expenses are pulled from these accounts: a wrong number would silently import nothing.
  for (const account of cfg.expenses.accounts) {
    items.push(
      await exists(
        get,
        `${rest}/accounts/${account}`,
        `expense account ${account}`,
        `Account ${account}, listed in [targets.expenses] accounts, does not exist in e-conomic.`,
        "Fix the list of expense accounts in kontobro.toml (a comma list of e-conomic account numbers; blank = all).",
      ),
    );
  }
  for (const [kind, code] of Object.entries(cfg.line_products)) {
    items.push(
      await exists(
        get,
        `${rest}/products/${encodeURIComponent(code)}`,
        `product ${code} (${kind} lines)`,
        `Product ${code}, used for invoice lines of kind "${kind}", does not exist in e-conomic.`,
        `Create product ${code} in e-conomic in a product group with the right sales account and VAT, or set line_products.${kind} in kontobro.toml.`,
      ),
    );
  }
  return items;
}

const ZONE_HINT =
  "Set the zone numbers in kontobro.toml, e.g. vat_zones = { domestic = 1, eu = 2, abroad = 3 } (a 2-letter country code as key overrides one country), using the numbers e-conomic lists under Settings → VAT zones.";

/** Customers get a zone by country: domestic (the agreement's country), EU, abroad; each must exist and be usable for customers. */
async function vatZoneChecks(settings: AgreementSettings): Promise<CheckItem[]> {
  let plan: VatZonePlan;
  try {
    plan = await settings.vatZonePlan();
  } catch (e) {
    return [failed("VAT zones", e, ZONE_HINT)];
  }
  const from = { config: "home_country in kontobro.toml", agreement: "the agreement", default: "the default; the agreement does not say" }[
    plan.homeSource
  ];
  const items: CheckItem[] = [
    { ok: true, name: "domestic country", message: `${plan.home} (from ${from}); customers without a country are domestic.` },
  ];
  const zoneItem = (name: string, zone: number | undefined, reason: string | undefined, source: string): CheckItem => {
    if (zone === undefined)
      return {
        ok: false,
        name,
        message: `kontobro cannot tell which VAT zone to use: ${reason}. The agreement's zones: ${plan.zones.map(describeZone).join(", ") || "none"}.`,
        hint: ZONE_HINT,
      };
    const z = plan.zones.find((x) => x.vatZoneNumber === zone);
    if (!z) return { ok: false, name, message: `VAT zone ${zone} (${source}) does not exist in e-conomic.`, hint: ZONE_HINT };
    if (z.enabledForCustomer !== true)
      return { ok: false, name, message: `VAT zone ${describeZone(z)} (${source}) cannot be used for customers.`, hint: ZONE_HINT };
    return { ok: true, name, message: `VAT zone ${describeZone(z)} (${source}).` };
  };
  for (const c of VAT_CATEGORIES) {
    const cat = plan.categories[c];
    const source = cat.source === "config" ? "set in kontobro.toml" : "found by its name";
    items.push(zoneItem(`VAT zone for ${CATEGORY_TEXT[c]} customers`, cat.zone, cat.reason, source));
  }
  for (const [country, zone] of Object.entries(plan.countries))
    items.push(zoneItem(`VAT zone for customers in ${country}`, zone, undefined, "set in kontobro.toml"));
  return items;
}

/** Whether booked invoices keep the PSA's due date (payment terms of type dueDate), said plainly. */
async function dueDateCheck(cfg: EconomicConfig, settings: AgreementSettings): Promise<CheckItem> {
  const name = "due date";
  const hint =
    'Create payment terms of type "Due date" in e-conomic (Settings → Payment terms); kontobro finds them by itself, or set due_date_payment_terms in kontobro.toml to their number.';
  try {
    const [terms, all] = await Promise.all([settings.invoiceTerms(), settings.paymentTerms()]);
    if (!terms.keepsDueDate) return { ok: false, name, message: `Invoices cannot keep the PSA's due date: ${terms.reason}.`, hint };
    const t = all.find((x) => x.paymentTermsNumber === terms.paymentTerms);
    if (!t)
      return {
        ok: false,
        name,
        message: `Payment terms ${terms.paymentTerms} (due_date_payment_terms) do not exist, so invoices cannot be booked.`,
        hint,
      };
    if (String(t.paymentTermsType ?? "").toLowerCase() !== "duedate") {
      return {
        ok: false,
        name,
        message: `Payment terms ${terms.paymentTerms}${t.name ? ` (${t.name})` : ""} are of type ${t.paymentTermsType ?? "unknown"}, not "due date", so e-conomic sets the due date itself and not the PSA's.`,
        hint,
      };
    }
    const how = cfg.due_date_payment_terms !== undefined ? "due_date_payment_terms" : "found in the agreement";
    return {
      ok: true,
      name,
      message: `Invoices keep the PSA's due date (payment terms ${terms.paymentTerms}${t.name ? ` ${t.name}` : ""}, ${how}).`,
    };
  } catch (e) {
    return failed(name, e, hint);
  }
}

async function exists(get: Get, url: string, name: string, missing: string, hint: string): Promise<CheckItem> {
  try {
    return (await get(url)) ? { ok: true, name, message: `${name} exists.` } : { ok: false, name, message: missing, hint };
  } catch (e) {
    return failed(name, e, hint);
  }
}

async function projectGroup(get: Get, projects: string, number: number): Promise<CheckItem> {
  const name = `project group ${number} (Internal)`;
  const hint =
    "Turn on the Projects module in e-conomic and create a project group of type Internal (type 1), then set project_group in kontobro.toml to its number.";
  try {
    const res = await get(`${projects}/ProjectGroups`);
    const groups: any[] = res?.items ?? res?.collection ?? [];
    const group = groups.find((g) => Number(g.number ?? g.projectGroupNumber) === number);
    if (!group) return { ok: false, name, message: `Project group ${number} does not exist in e-conomic.`, hint };
    const type = Number(group.type?.number ?? group.type ?? group.projectGroupType);
    if (type !== 1) return { ok: false, name, message: `Project group ${number} is of type ${type}, not Internal (1).`, hint };
    return { ok: true, name, message: `Project group ${number} exists and is Internal.` };
  } catch (e) {
    return failed(name, e, hint);
  }
}

function failed(name: string, e: unknown, hint: string): CheckItem {
  const message = isTargetError(e) ? e.message : e instanceof Error ? e.message : String(e);
  return { ok: false, name, message, hint: isTargetError(e) && e.hint ? e.hint : hint };
}
