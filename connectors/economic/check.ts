// `kontobro check` for e-conomic: the tokens work, and the set-up the integration relies on exists.
import type { CheckItem } from "../contract.ts";
import { isTargetError } from "../http.ts";
import type { EconomicConfig } from "./config.ts";

type Get = (url: string) => Promise<any | null>;

export async function runChecks(cfg: EconomicConfig, get: Get, rest: string, projects: string): Promise<CheckItem[]> {
  const items: CheckItem[] = [];
  try {
    const self = await get(`${rest}/self`);
    items.push({ ok: true, name: "tokens", message: `Connected to agreement ${self?.agreementNumber ?? "?"} (${self?.company?.name ?? "unknown company"}).` });
  } catch (e) {
    items.push(failed("tokens", e, "Check app_secret_token and agreement_grant_token in kontobro.toml (or their environment variables). Both come from e-conomic: the app's secret token, and the grant token shown when the customer added the app."));
    return items; // nothing else can be checked without working tokens
  }
  items.push(await exists(get, `${rest}/customer-groups/${cfg.customer_group}`, `customer group ${cfg.customer_group}`,
    `Customer group ${cfg.customer_group} does not exist in e-conomic; new customers are put in it.`,
    `Create customer group ${cfg.customer_group} in e-conomic (Settings → Customers → Customer groups), or set customer_group in kontobro.toml to an existing group.`));
  items.push(await projectGroup(get, projects, cfg.project_group));
  items.push(await exists(get, `${rest}/journals/${cfg.journal}`, `journal ${cfg.journal}`,
    `Journal ${cfg.journal} does not exist in e-conomic; the integration uses it for postings.`,
    `Create journal ${cfg.journal} in e-conomic (Accounting → Journals), or set journal in kontobro.toml.`));
  items.push(await exists(get, `${rest}/vat-zones/${cfg.vat_zone}`, `VAT zone ${cfg.vat_zone}`, `VAT zone ${cfg.vat_zone} does not exist.`, "Set vat_zone in kontobro.toml to one listed under e-conomic's VAT zones (1 is usually Domestic)."));
  items.push(await exists(get, `${rest}/payment-terms/${cfg.payment_terms}`, `payment terms ${cfg.payment_terms}`, `Payment terms ${cfg.payment_terms} do not exist.`, "Set payment_terms in kontobro.toml to existing payment terms (Settings → Payment terms)."));
  items.push(await exists(get, `${rest}/layouts/${cfg.layout}`, `layout ${cfg.layout}`, `Invoice layout ${cfg.layout} does not exist.`, "Set layout in kontobro.toml to one of the agreement's layouts."));
  // Expenses are pulled from these accounts: a wrong number would silently import nothing.
  for (const account of cfg.expenses.accounts) {
    items.push(await exists(get, `${rest}/accounts/${account}`, `expense account ${account}`,
      `Account ${account}, listed in [targets.expenses] accounts, does not exist in e-conomic.`,
      "Fix the list of expense accounts in kontobro.toml (a comma list of e-conomic account numbers; blank = all)."));
  }
  for (const [kind, code] of Object.entries(cfg.line_products)) {
    items.push(await exists(get, `${rest}/products/${encodeURIComponent(code)}`, `product ${code} (${kind} lines)`,
      `Product ${code}, used for invoice lines of kind "${kind}", does not exist in e-conomic.`,
      `Create product ${code} in e-conomic in a product group with the right sales account and VAT, or set line_products.${kind} in kontobro.toml.`));
  }
  return items;
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
  const hint = "Turn on the Projects module in e-conomic and create a project group of type Internal (type 1), then set project_group in kontobro.toml to its number.";
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
