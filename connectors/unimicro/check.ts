// `kontobro check` for Uni Micro: the server client can sign in, the company is reachable, and the accounts,
// VAT codes and products of each line kind exist.
import type { CheckItem } from "../contract.ts";
import { TargetError } from "../http.ts";
import { RENEW_CERTIFICATE, type TokenSource, utcMinute } from "./auth.ts";
import { requireId, requireSalesVatType, type IdLookups, type UniClient } from "./client.ts";
import type { UniMicroSettings } from "./config.ts";

export async function runChecks(s: UniMicroSettings, tokens: TokenSource, api: UniClient, ids: IdLookups): Promise<CheckItem[]> {
  const items: CheckItem[] = [];
  const fail = (name: string, e: unknown): CheckItem => ({
    ok: false,
    name,
    message: e instanceof Error ? e.message : String(e),
    hint: (e as TargetError)?.hint,
  });
  const certificate = certificateItem(tokens);
  if (certificate) items.push(certificate);
  if (certificate && !certificate.ok) return items;
  try {
    await tokens.get();
    items.push({ ok: true, name: "credentials", message: `Signed in to ${s.title} as server client ${s.clientId}.` });
  } catch (e) {
    return [fail("credentials", e)];
  }
  try {
    const companies = await api.companies();
    const company = companies.find((c) => c.Key === s.companyKey);
    if (!company) {
      const list = companies.map((c) => `${c.Name} (${c.Key})`).join(", ") || "none";
      items.push({
        ok: false,
        name: "company",
        message: `The company key ${s.companyKey} is not among the companies this client may reach: ${list}.`,
        hint: `Copy the key from ${s.title} ("?" → "Systeminformasjon") into company_key, and make sure the integration is activated for that company.`,
      });
      return items;
    }
    items.push({ ok: true, name: "company", message: `Company "${company.Name}" is reachable.` });
  } catch (e) {
    return [...items, fail("company", e)];
  }
  for (const [kind, setup] of Object.entries(s.lines)) {
    if (!setup || (!setup.accountNumber && !setup.vatCode && !setup.productId && !setup.productNumber)) continue;
    try {
      const parts: string[] = [];
      if (setup.accountNumber)
        parts.push(
          `account ${setup.accountNumber} → ID ${await requireId(s.title, "account", String(setup.accountNumber), ids.account(setup.accountNumber), `Create it in ${s.title} or fix accounts.${kind}.`)}`,
        );
      if (setup.vatCode)
        parts.push(
          `VAT code ${setup.vatCode} → ID ${await requireSalesVatType(s.title, ids, setup.vatCode, `vat_codes.${kind}`, `Fix vat_codes.${kind}.`)}`,
        );
      if (setup.productId) {
        if (!(await api.get(`/api/biz/products/${setup.productId}`, [404])))
          throw new TargetError("permanent", {
            code: "unimicro.product_missing",
            message: `${s.title} has no product with ID ${setup.productId}.`,
            hint: `Fix product_ids.${kind}.`,
          });
        parts.push(`product ID ${setup.productId}`);
      } else if (setup.productNumber) {
        parts.push(
          `product ${setup.productNumber} → ID ${await requireId(s.title, "product", setup.productNumber, ids.product(setup.productNumber), `Create it in ${s.title} or fix product_numbers.${kind}.`)}`,
        );
      }
      items.push({ ok: true, name: `${kind} lines`, message: parts.join(", ") });
    } catch (e) {
      items.push(fail(`${kind} lines`, e));
    }
  }
  return items;
}

/** Days before its end from which `kontobro check` says to renew the certificate (the alert's default too). */
const RENEW_WITHIN_DAYS = 30;
const DAY_MS = 86_400_000;

/** The certificate's end date (null without one; an unusable PEM is the credentials item's failure). */
function certificateItem(tokens: TokenSource, now = Date.now()): CheckItem | null {
  let cert: ReturnType<TokenSource["certificate"]>;
  try {
    cert = tokens.certificate();
  } catch {
    return null;
  }
  if (!cert) return null;
  const until = utcMinute(cert.notAfter);
  if (cert.notAfter <= now)
    return {
      ok: false,
      name: "certificate",
      message: `The client certificate (${cert.subject}) expired on ${until}.`,
      hint: RENEW_CERTIFICATE,
    };
  const days = Math.floor((cert.notAfter - now) / DAY_MS);
  if (days < RENEW_WITHIN_DAYS)
    return {
      ok: true,
      name: "certificate",
      message: `The client certificate (${cert.subject}) expires on ${until}, in ${days} day(s): renew it before then.`,
      hint: RENEW_CERTIFICATE,
    };
  return { ok: true, name: "certificate", message: `The client certificate (${cert.subject}) is valid until ${until}.` };
}
