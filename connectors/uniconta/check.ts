// `kontobro check` for Uniconta: the login and the company list (retried: it "occasionally returns null",
// uniconta.md §11), the chosen company, and the set-up the integration relies on, each in plain words.
import type { CheckItem } from "../contract.ts";
import { isTargetError } from "../http.ts";
import type { CallBudget } from "./budget.ts";
import type { Row, UnicontaClient } from "./client.ts";
import type { UnicontaConfig } from "./config.ts";
import { LISTS, type ListKind, type SetupLists } from "./setup.ts";

const KINDS = ["hours", "expenses", "products"] as const;

export async function runChecks(
  cfg: UnicontaConfig,
  client: UnicontaClient,
  setup: SetupLists,
  budget: CallBudget,
  pause: (ms: number) => Promise<void> = Bun.sleep,
): Promise<CheckItem[]> {
  const items: CheckItem[] = [];
  setup.forget();
  // 1. Log in and fetch the companies; an empty list is retried before it is reported.
  let companies: Row[] = [];
  try {
    for (let attempt = 1; attempt <= cfg.login_attempts && companies.length === 0; attempt++) {
      companies = await client.companies();
      if (companies.length === 0 && attempt < cfg.login_attempts) await pause(200 * attempt);
    }
  } catch (e) {
    return [
      failed(
        "login",
        e,
        "Check username and password in kontobro.toml (the Uniconta server user; the password from an environment variable), and that the user is active in Uniconta.",
      ),
    ];
  }
  if (companies.length === 0) {
    return [
      {
        ok: false,
        name: "login",
        message: `Signed in as ${cfg.username}, but Uniconta returned no companies ${cfg.login_attempts} times in a row.`,
        hint: "Uniconta's company list is known to come back empty now and then: run `kontobro check` again. If it stays empty, give the server user access to the company in Uniconta.",
      },
    ];
  }
  items.push({
    ok: true,
    name: "login",
    message: `Signed in to Uniconta as ${cfg.username}; companies the user can reach: ${companies.map((c) => `${c.CompanyId} ${c.Name}`).join(", ")}.`,
  });
  const company = companies.find((c) => Number(c.CompanyId) === cfg.company_id);
  if (!company) {
    items.push({
      ok: false,
      name: "company",
      message: `Company ${cfg.company_id} is not among the companies ${cfg.username} can reach.`,
      hint: `Set company_id in kontobro.toml to one of ${companies.map((c) => c.CompanyId).join(", ")}, or give the user rights in company ${cfg.company_id}.`,
    });
    return items;
  }
  items.push({ ok: true, name: "company", message: `Company ${cfg.company_id} "${company.Name}" (${company.Currency ?? "?"}).` });

  // 2. The set-up: everything kontobro.toml names must exist.
  const exists = async (name: string, kind: ListKind, code: string | undefined, setting: string) => {
    if (!code) return;
    items.push(
      await one(name, async () => {
        const row = await setup.find(kind, code);
        if (row) return { ok: true, message: `${code} exists${row.Name ? ` (${row.Name})` : ""}.` };
        const known = [...(await setup.list(kind)).keys()];
        return {
          ok: false,
          message: `${code} (${setting}) does not exist. The ${LISTS[kind].title} in Uniconta are: ${known.join(", ") || "none"}.`,
          hint: `Create it in Uniconta (${LISTS[kind].where}) or fix ${setting} in kontobro.toml.`,
        };
      }),
    );
  };
  items.push(
    await one("customer groups", async () => {
      const groups = [...(await setup.list("customerGroup")).keys()];
      if (groups.length === 0)
        return {
          ok: false,
          message: "Uniconta has no customer groups; every customer needs one.",
          hint: "Create customer groups in Uniconta (Customer › Maintenance › Customer groups).",
        };
      return { ok: true, message: `The PSA's customer-group tags must use these codes: ${groups.join(", ")}.` };
    }),
  );
  await exists("default customer group", "customerGroup", cfg.default_customer_group, "default_customer_group");
  for (const kind of KINDS) {
    await exists(`${kind} account`, "account", cfg.accounts[kind], `accounts.${kind}`);
    await exists(`${kind} VAT code`, "vat", cfg.vat_codes[kind], `vat_codes.${kind}`);
    await exists(`${kind} project category`, "category", cfg.categories[kind], `categories.${kind}`);
    await exists(`${kind} item`, "item", cfg.items[kind], `items.${kind}`);
  }
  if (cfg.project_category_tag_group) {
    items.push(
      await one("project categories", async () => ({
        ok: true,
        message: `Project lines take the project's tag in "${cfg.project_category_tag_group}"; its codes must be one of: ${[...(await setup.list("category")).keys()].join(", ")}.`,
      })),
    );
  }
  await exists("project group", "projectGroup", cfg.project_group, "project_group");
  await exists("payment terms", "paymentTerms", cfg.payment_terms, "payment_terms");
  items.push(
    await one("credit note payment terms", async () => {
      if (!cfg.credit_note_payment_terms)
        return {
          ok: false,
          message: "credit_note_payment_terms is not set, so credit notes cannot be sent (they use payment terms of 0 days).",
          hint: "Create payment terms of 0 days in Uniconta (Customer › Maintenance › Payment terms) and set credit_note_payment_terms to their code.",
        };
      const t = await setup.find("paymentTerms", cfg.credit_note_payment_terms);
      if (!t)
        return {
          ok: false,
          message: `Payment terms ${cfg.credit_note_payment_terms} (credit_note_payment_terms) do not exist.`,
          hint: "Create payment terms of 0 days in Uniconta (Customer › Maintenance › Payment terms), or fix credit_note_payment_terms.",
        };
      const days = Number(t.Days ?? NaN);
      if (days !== 0)
        return {
          ok: false,
          message: `Payment terms ${cfg.credit_note_payment_terms} are ${Number.isNaN(days) ? "of unknown length" : `${days} days`}; credit notes need 0 days.`,
          hint: "Use payment terms of 0 days for credit_note_payment_terms (Customer › Maintenance › Payment terms).",
        };
      return { ok: true, message: `Credit notes use payment terms ${cfg.credit_note_payment_terms} (0 days).` };
    }),
  );
  if (cfg.project_department !== "none" || cfg.invoice_department !== "none") {
    const n = Number(company.NumberOfDimensions ?? 0);
    items.push(
      n >= cfg.department_dimension
        ? {
            ok: true,
            name: "department dimension",
            message: `Departments go to dimension ${cfg.department_dimension} (the company uses ${n}).`,
          }
        : {
            ok: false,
            name: "department dimension",
            message: `Departments go to dimension ${cfg.department_dimension}, but the company uses ${n} dimension(s).`,
            hint: "Turn the dimension on in Uniconta (Company › Dimensions), or set department_dimension in kontobro.toml.",
          },
    );
  }
  for (const s of cfg.expenses.number_series)
    await exists(`expense number series ${s}`, "numberSeries", s, "[targets.expenses] number_series");
  for (const a of cfg.expenses.accounts) await exists(`expense account ${a}`, "account", a, "[targets.expenses] accounts");
  items.push(
    await one("invoice numbers", async () => {
      const series = [...(await setup.list("numberSeries")).values()].filter((s) => s.Use === "Invoice");
      const next = series.map((s) => `${s.Number}: next number ${s.NextNumber}`).join(", ");
      return {
        ok: true,
        message: `Uniconta numbers invoices itself${next ? ` (${next})` : ""}; keep "next number" in step with the PSA's next invoice number (General Ledger › Maintenance › Voucher number series).`,
      };
    }),
  );
  if (cfg.posting === "gateway") {
    items.push(
      await one(
        "gateway",
        async () => {
          await client.gatewayIndex();
          return { ok: true, message: `The posting gateway answers at ${cfg.gateway_url}.` };
        },
        "Check gateway_url and that the gateway (a .NET service with a Uniconta affiliate key) runs and is reachable from this machine.",
      ),
    );
  } else {
    items.push({
      ok: true,
      name: "posting",
      message:
        "Order only: kontobro creates the orders; invoice them in Uniconta (Debtor › Orders). kontobro reports the invoice number and status to the PSA.",
    });
  }
  const b = budget.report("calls");
  items.push(
    budget.durable
      ? {
          ok: b.used < b.limit,
          name: "call budget",
          message: `${b.used} of ${b.limit} Uniconta calls used today (${b.period}); pulls stop while fewer than ${cfg.reserve_for_pushes} are left.`,
        }
      : {
          ok: true,
          name: "call budget",
          message: `This check made ${b.used} of the server user's ${b.limit} calls a day; the running agent's count for today is on its status page and in /metrics (kontobro_target_budget_used).`,
        },
  );
  return items;
}

async function one(name: string, work: () => Promise<{ ok: boolean; message: string; hint?: string }>, hint?: string): Promise<CheckItem> {
  try {
    return { name, ...(await work()) };
  } catch (e) {
    return failed(name, e, hint ?? "Run `kontobro check` again; if it fails again, see the message.");
  }
}

function failed(name: string, e: unknown, hint: string): CheckItem {
  const message = e instanceof Error ? e.message : String(e);
  return { ok: false, name, message, hint: isTargetError(e) && e.hint ? `${e.hint} ${hint}` : hint };
}
