// Pre-flight rules for the Uni Micro platform, checked before any network call. Pure.
// Sources: Moment's KB for Uni Economy / DnB Regnskap / SpareBank 1 Regnskap (numbers), the 2019 swagger (types).
import type { CurrencyPriceField } from "./config.ts";
import { customerTotal, type Customer, type InvoiceLike, type LineKind, type Product, type Project } from "../../agent/model.ts";
import { problem, type Problem } from "../../agent/problem.ts";
import { lineNeeds, paymentIdFor, type LineSetup } from "./map.ts";

export interface RuleOptions {
  /** "DnB Regnskap" etc., for messages. */
  title: string;
  /** Allowed customer numbers, inclusive; null: any positive integer. */
  customerNumberRange: [number, number] | null;
  /** Account / VAT code / product per line kind from kontobro.toml. */
  lines: Partial<Record<LineKind, LineSetup>>;
  companyCurrency: string;
  currencyPriceField: CurrencyPriceField;
}

const INT32_MAX = 2_147_483_647;
const digits = (s: string) => /^\d+$/.test(s);

/** CustomerNumber is an integer on this platform; the PSA is master for it, so it must fit as is. */
function customerNumberProblems(value: string, field: string, o: RuleOptions, checkRange: boolean): Problem[] {
  if (!digits(value) || Number(value) < 1 || Number(value) > INT32_MAX) {
    return [
      problem(
        "unimicro.customer_number_not_numeric",
        `${o.title} needs whole-number customer numbers; "${value}" is not one.`,
        "Give the customer a number of digits only in the PSA (the PSA is master for customer numbers), then press retry.",
        field,
      ),
    ];
  }
  const r = o.customerNumberRange;
  if (checkRange && r && (Number(value) < r[0] || Number(value) > r[1])) {
    return [
      problem(
        "unimicro.customer_number_out_of_range",
        `${o.title} needs customer numbers from ${r[0]} to ${r[1]}; ${value} is outside that range.`,
        `Renumber the customer in the PSA to a number between ${r[0]} and ${r[1]} (the number is not changed in ${o.title}), then press retry.`,
        field,
      ),
    ];
  }
  return [];
}

function projectNumberProblems(value: string, field: string, o: RuleOptions): Problem[] {
  if (digits(value) && value.length <= 9) return [];
  return [
    problem(
      "unimicro.project_number_not_numeric",
      digits(value)
        ? `${o.title} project numbers may have at most 9 digits; "${value}" has ${value.length}.`
        : `${o.title} accepts only digits in project numbers; "${value}" has other characters.`,
      "Give the project a number of digits only (at most 9) in the PSA, then press retry.",
      field,
    ),
  ];
}

export function customerRules(c: Customer, o: RuleOptions): Problem[] {
  const out = customerNumberProblems(c.number, "number", o, true);
  const org = c.orgNumber?.replace(/\s+/g, "");
  const norwegian = c.addresses.every((a) => !a.country || a.country === "NO");
  if (org && norwegian && !/^\d{9}$/.test(org)) {
    out.push(
      problem(
        "unimicro.org_number_invalid",
        `A Norwegian organisation number has 9 digits; "${c.orgNumber}" does not.`,
        "Correct the organisation number on the customer in the PSA (or set the address country if the customer is foreign), then press retry.",
        "orgNumber",
      ),
    );
  }
  return out;
}

export function projectRules(p: Project, o: RuleOptions): Problem[] {
  const out = projectNumberProblems(p.number, "number", o);
  if (p.customerNumber) out.push(...customerNumberProblems(p.customerNumber, "customerNumber", o, false));
  return out;
}

/** No product limits are documented beyond the canonical model's own (code ≤ 50). */
export function productRules(_p: Product, _o: RuleOptions): Problem[] {
  return [];
}

/** A KID is 2–25 digits (Norwegian standard). Without one, the invoice number is used as payment id. */
function paymentIdProblems(inv: InvoiceLike, o: RuleOptions): Problem[] {
  const pid = paymentIdFor(inv);
  if (/^\d{2,25}$/.test(pid)) return [];
  return inv.paymentId
    ? [
        problem(
          "unimicro.kid_invalid",
          `The payment id (KID) "${inv.paymentId}" is not 2–25 digits.`,
          "Correct the KID on the invoice in the PSA (check the KID set-up), then press retry.",
          "paymentId",
        ),
      ]
    : [
        problem(
          "unimicro.invoice_number_not_numeric",
          `Without a KID, ${o.title} uses the invoice number as payment id and voucher number, so it must be 2–25 digits; "${inv.number}" is not.`,
          "Use numeric invoice numbers in the PSA, or send a KID with the invoice, then press retry.",
          "number",
        ),
      ];
}

/**
 * An invoice in another currency than the company's while currency_price_field is unset: which item field carries a
 * price in the invoice's currency is unverified, and the wrong one books the amounts as the company's currency.
 */
function currencyProblems(inv: InvoiceLike, o: RuleOptions): Problem[] {
  if (inv.currency === o.companyCurrency || o.currencyPriceField !== "unset") return [];
  const doc = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  return [
    problem(
      "unimicro.currency_price_field_unset",
      `${doc} ${inv.number} is in ${inv.currency}, not the company's currency ${o.companyCurrency}. Whether ${o.title} reads an item's price in the invoice's currency from PriceExVat or from PriceExVatCurrency is not verified, and the wrong one would book ${inv.currency} amounts as ${o.companyCurrency}, so kontobro sends no invoice in another currency until told. Nothing was sent.`,
      `Make a ${inv.currency} invoice by hand in ${o.title} and see which of its items' PriceExVat and PriceExVatCurrency holds the ${inv.currency} price; set currency_price_field = "PriceExVatCurrency" (or "PriceExVat") in this target's section of kontobro.toml, restart, and run \`kontobro retry\`. If company_currency is wrong, correct it instead.`,
      "currency",
    ),
  ];
}

export function invoiceRules(inv: InvoiceLike, o: RuleOptions): Problem[] {
  const out: Problem[] = [
    ...customerNumberProblems(inv.customerNumber, "customerNumber", o, false),
    ...(inv.projectNumber ? projectNumberProblems(inv.projectNumber, "projectNumber", o) : []),
    ...paymentIdProblems(inv, o),
    ...currencyProblems(inv, o),
  ];
  if (inv.kind === "credit_note" && inv.creditedInvoiceNumber === inv.number) {
    out.push(
      problem(
        "unimicro.credit_note_self",
        "A credit note cannot credit itself.",
        "Set creditedInvoiceNumber to the invoice being credited.",
        "creditedInvoiceNumber",
      ),
    );
  }
  // The model's one sign convention (intake already refuses a negative invoice and turns a credit note
  // with minus signs round); kept as a guard so nothing ever books a credit note as a charge.
  const total = customerTotal(inv);
  if (inv.kind === "invoice" && total < 0) {
    out.push(
      problem(
        "unimicro.invoice_negative",
        `Invoice ${inv.number} has a negative total.`,
        "Send it as a credit note (invoice.credited) so it is linked to the invoice it credits.",
        "lines",
      ),
    );
  }
  if (inv.kind === "credit_note" && total >= 0) {
    out.push(
      problem(
        "unimicro.credit_note_not_negative",
        `Credit note ${inv.number} would not reduce what the customer owes (its lines credit ${(-total / 100).toFixed(2)}).`,
        "List what is credited on the credit note's lines (a credit note's total must be above zero), then press retry.",
        "lines",
      ),
    );
  }
  inv.lines.forEach((l, i) => {
    const n = lineNeeds(l, o.lines);
    const where = `lines.${i}`;
    if (n.accountNumber === undefined || !Number.isInteger(n.accountNumber)) {
      out.push(
        problem(
          "unimicro.line_account_missing",
          l.account !== undefined
            ? `Line ${i + 1} has account "${l.account}", which is not an account number.`
            : `Line ${i + 1} (${l.kind}) has no sales account.`,
          `Set accounts.${l.kind} in kontobro.toml to the sales account number used in ${o.title} (account numbers must match in both systems).`,
          `${where}.account`,
        ),
      );
    }
    if (!n.vatCode) {
      out.push(
        problem(
          "unimicro.line_vat_missing",
          `Line ${i + 1} (${l.kind}) has no VAT code.`,
          `Set vat_codes.${l.kind} in kontobro.toml to the ${o.title} VAT code, e.g. "3" for 25 % output VAT.`,
          `${where}.vatCode`,
        ),
      );
    }
    if (!n.productId && !n.productNumber) {
      out.push(
        problem(
          "unimicro.line_product_missing",
          `Line ${i + 1} (${l.kind}) is not tied to a product; ${o.title} invoice lines need one.`,
          `Set product_ids.${l.kind} or product_numbers.${l.kind} in kontobro.toml to a product that exists in ${o.title}.`,
          `${where}.kind`,
        ),
      );
    }
  });
  return out;
}
