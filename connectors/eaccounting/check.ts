// `kontobro check` for eAccounting: the authorisation (connected, or the "reconnect" state with the command to
// run), the scopes granted, the company's onboarding state (start-up guide, licence, access), and the set-up
// kontobro.toml names (default article, cost centre, units, article coding, terms of payment).
import type { CheckItem } from "../contract.ts";
import { isTargetError } from "../http.ts";
import { reconnectHint, type OAuthTokens } from "./auth.ts";
import type { EaccountingClient } from "./client.ts";
import { REQUIRED_SCOPES, type EaccountingConfig } from "./config.ts";
import type { SetupLists } from "./setup.ts";

export async function runChecks(
  name: string,
  cfg: EaccountingConfig,
  client: EaccountingClient,
  setup: SetupLists,
  tokens: OAuthTokens,
): Promise<CheckItem[]> {
  const items: CheckItem[] = [];
  setup.forget();
  const status = await tokens.status();
  if (status.state === "not_connected") {
    return [
      {
        ok: false,
        name: "authorisation",
        message: `kontobro is not connected to eAccounting for ${name} yet.`,
        hint: `Run \`${tokens.signIn}\` and sign in to eAccounting as a user of the company.`,
      },
    ];
  }
  if (status.state === "reconnect") {
    return [
      {
        ok: false,
        name: "authorisation",
        message: `reconnect: eAccounting no longer accepts kontobro's authorisation (${status.problem ?? "the refresh token was refused"}).`,
        hint: reconnectHint(tokens.signIn),
      },
    ];
  }
  try {
    await tokens.get();
  } catch (e) {
    return [failed("authorisation", e, `Run \`${tokens.signIn}\`.`)];
  }
  const granted = (await tokens.status()).scope?.split(/\s+/).filter(Boolean) ?? null;
  items.push({
    ok: true,
    name: "authorisation",
    message: `Connected to eAccounting${granted ? ` with the scopes ${granted.join(" ")}` : ""}; refresh tokens rotate and are stored in the data directory.`,
  });
  if (granted) {
    const wanted = [...new Set([...REQUIRED_SCOPES, ...cfg.scopes.split(/\s+/).filter(Boolean)])];
    const missing = wanted.filter((s) => !granted.includes(s));
    if (missing.length > 0)
      items.push({
        ok: false,
        name: "scopes",
        message: `eAccounting did not grant ${missing.join(", ")}.`,
        hint: `Run \`${tokens.signIn}\` again and accept every permission; the user needs access to sales, accounting and purchasing in eAccounting.`,
      });
  }
  // The company: its onboarding state answers on any call (4003 start-up guide, 4012 licence, 4011 no access, …).
  const company = await one("company", async () => {
    await client.page("termsofpayments", {}, 1, 1);
    return { ok: true, message: "The company answers: start-up guide completed, licence accepted, the user has access." };
  });
  items.push(company);
  if (!company.ok) return items;

  items.push(
    await one("default article", async () => {
      if (!cfg.default_article)
        return { ok: true, message: "No default_article: every invoice line must name a product (work type) known to eAccounting." };
      const a = await setup.articleByNumber(cfg.default_article);
      if (!a)
        return {
          ok: false,
          message: `eAccounting has no article ${cfg.default_article} (default_article).`,
          hint: "Create it in eAccounting (Sales › Articles) or fix default_article in kontobro.toml.",
        };
      if (a.IsActive === false)
        return {
          ok: false,
          message: `Article ${cfg.default_article} (${a.Name}) is inactivated in eAccounting; invoices with it are refused (409).`,
          hint: "Reactivate it in eAccounting (Sales › Articles) or choose another default_article.",
        };
      return { ok: true, message: `Lines without a product use article ${cfg.default_article} (${a.Name}).` };
    }),
  );
  items.push(
    await one("cost centre", async () => {
      const c = await setup.costCenter();
      return {
        ok: true,
        message: `Projects are items of cost centre ${cfg.cost_center} (${c.Name}, ${((c.Items as unknown[]) ?? []).length} items).`,
      };
    }),
  );
  for (const kind of ["hours", "kilometres", "pieces"] as const) {
    items.push(
      await one(`unit for ${kind}`, async () => {
        const u = await setup.unitFor(kind === "hours" ? "hours" : kind === "kilometres" ? "km" : undefined);
        return { ok: true, message: `${kind}: ${u.Name} (${u.Code ?? u.Abbreviation}).` };
      }),
    );
  }
  items.push(
    await one("article coding", async () => {
      const c = await setup.codingFor({ vatRate: cfg.vat_rate, code: "(new)", name: "(new articles)" });
      return { ok: true, message: `New articles get the coding "${c.Name}"; check it in eAccounting after the first sync.` };
    }),
  );
  items.push(
    await one("terms of payment", async () => {
      const t = await setup.terms(cfg.payment_terms_days);
      return { ok: true, message: `Customers without payment terms get "${t.Name}" (${t.NumberOfDays} days).` };
    }),
  );
  items.push({
    ok: true,
    name: "invoices",
    message: `Invoices go to eAccounting as drafts; eAccounting numbers them when they are sent there. Credit notes: ${cfg.credit_notes === "draft" ? "credit invoice drafts" : "not transferred (credit in eAccounting)"}.`,
  });
  return items;
}

async function one(name: string, work: () => Promise<{ ok: boolean; message: string; hint?: string }>): Promise<CheckItem> {
  try {
    return { name, ...(await work()) };
  } catch (e) {
    return failed(name, e, "Run `kontobro check` again; if it fails again, see the message.");
  }
}

function failed(name: string, e: unknown, hint: string): CheckItem {
  const message = e instanceof Error ? e.message : String(e);
  return { ok: false, name, message, hint: isTargetError(e) && e.hint ? e.hint : hint };
}
