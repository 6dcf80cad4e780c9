// Pre-flight rules for Uniconta, checked before any network call. Pure. What needs Uniconta's own lists
// (does this VAT code, account, customer group or category exist?) is checked in setup.ts before sending.
import { customerTotal, type Customer, type Entity, type InvoiceLike, type Project } from "../../agent/model.ts";
import { problem, type Problem } from "../../agent/problem.ts";
import type { RelatedRecords } from "../contract.ts";
import type { UnicontaConfig } from "./config.ts";
import { lineNeeds, referenceValue } from "./map.ts";

/** Uniconta's keys are strings; these lengths are kept conservative (the real limits are unverified). */
const MAX_KEY = 20;

function keyProblems(value: string, what: string, field: string): Problem[] {
  if (value.length <= MAX_KEY) return [];
  return [
    problem(
      "uniconta.number_too_long",
      `Uniconta keeps ${what} numbers of at most ${MAX_KEY} characters; "${value}" has ${value.length}.`,
      `Give the ${what} a shorter number in the PSA (the PSA is master for numbers), then press retry.`,
      field,
    ),
  ];
}

export function customerRules(c: Customer, cfg: UnicontaConfig): Problem[] {
  const out = keyProblems(c.number, "customer", "number");
  if (!c.group && !cfg.default_customer_group) {
    out.push(
      problem(
        "uniconta.customer_group_missing",
        `Customer ${c.number} (${c.name}) has no customer group; Uniconta needs one (it decides the customer's posting accounts).`,
        "Give the customer exactly one tag in the PSA's customer-group tag group (its code must be a customer group in Uniconta: Customer › Maintenance › Customer groups), or set default_customer_group in kontobro.toml; then press retry.",
        "group",
      ),
    );
  }
  return out;
}

export function projectRules(p: Project): Problem[] {
  const out = keyProblems(p.number, "project", "number");
  if (!p.customerNumber) {
    out.push(
      problem(
        "uniconta.project_customer_missing",
        `Project ${p.number} has no customer; a Uniconta project belongs to a customer (debtor).`,
        "Set the project's customer in the PSA, then press retry.",
        "customerNumber",
      ),
    );
  }
  return out;
}

export function invoiceRules(inv: InvoiceLike, related: RelatedRecords | undefined, cfg: UnicontaConfig): Problem[] {
  const out: Problem[] = [];
  const project = inv.projectNumber ? ((related?.("project", inv.projectNumber) as Project | null) ?? null) : null;
  if (referenceValue(inv.psaId).length > 60) {
    out.push(
      problem(
        "uniconta.psa_id_too_long",
        `The PSA id "${inv.psaId}" is too long for Uniconta's reference field (${cfg.reference_field}, kept to 60 characters).`,
        "This is a PSA set-up problem; report it to kontobro support.",
        "psaId",
      ),
    );
  }
  if (!/^\d{1,18}$/.test(inv.number)) {
    out.push(
      problem(
        "uniconta.invoice_number_not_numeric",
        `Uniconta numbers invoices with whole numbers from its number series, so PSA invoice number "${inv.number}" can never be kept.`,
        "Use numeric invoice numbers in the PSA, in step with Uniconta's invoice number series (General Ledger › Maintenance › Voucher number series); then press retry.",
        "number",
      ),
    );
  }
  if (inv.kind === "credit_note" && !cfg.credit_note_payment_terms) {
    out.push(
      problem(
        "uniconta.credit_note_terms_missing",
        `Credit note ${inv.number} needs payment terms of 0 days in Uniconta, and none are set.`,
        "Create payment terms of 0 days in Uniconta (Customer › Maintenance › Payment terms) and set credit_note_payment_terms in kontobro.toml to their code; then press retry.",
        "kind",
      ),
    );
  }
  // The model's sign convention (intake already refuses a negative invoice and turns a credit note round);
  // kept as a guard so a credit note is never posted as a charge.
  const total = customerTotal(inv);
  if (inv.kind === "invoice" && total < 0) {
    out.push(
      problem(
        "uniconta.invoice_negative",
        `Invoice ${inv.number} has a negative total.`,
        "Send it as a credit note (invoice.credited).",
        "lines",
      ),
    );
  }
  if (inv.kind === "credit_note" && total >= 0) {
    out.push(
      problem(
        "uniconta.credit_note_not_negative",
        `Credit note ${inv.number} would not reduce what the customer owes.`,
        "List what is credited on the credit note's lines, then press retry.",
        "lines",
      ),
    );
  }
  inv.lines.forEach((l, i) => {
    const n = lineNeeds(l, project, cfg);
    const at = `Line ${i + 1} (${l.kind}, "${l.text.slice(0, 40)}")`;
    if (!n.account) {
      out.push(
        problem(
          "uniconta.line_account_missing",
          `${at} has no posting account.`,
          `Set accounts.${l.kind} in kontobro.toml to the Uniconta account for ${l.kind} (account numbers must be the same in both systems), or send the line's account from the PSA; then press retry.`,
          `lines.${i}.account`,
        ),
      );
    }
    if (!n.vat) {
      out.push(
        problem(
          "uniconta.line_vat_missing",
          `${at} has no VAT code.`,
          `Set vat_codes.${l.kind} in kontobro.toml to the Uniconta VAT code (e.g. "U25"; VAT codes must be the same in both systems), or send the line's VAT code; then press retry.`,
          `lines.${i}.vatCode`,
        ),
      );
    }
    if (inv.projectNumber && !n.category) {
      const p = problem(
        "uniconta.line_category_missing",
        `${at} is on project ${inv.projectNumber} but has no project category; Uniconta needs one on project lines.`,
        `Give the project one tag in the PSA's project-category tag group${cfg.project_category_tag_group ? ` ("${cfg.project_category_tag_group}")` : " (set project_category_tag_group in kontobro.toml)"}, send a category on the line, or set categories.${l.kind}; then press retry.`,
        `lines.${i}.category`,
      );
      // Fixed on the project (its tag): a new version of the project retries the invoice by itself.
      out.push(cfg.project_category_tag_group && project ? { ...p, record: { entity: "project", key: inv.projectNumber } } : p);
    }
  });
  return out;
}

export function unicontaRules(entity: Entity, payload: any, related: RelatedRecords | undefined, cfg: UnicontaConfig): Problem[] {
  switch (entity) {
    case "customer":
      return customerRules(payload, cfg);
    case "project":
      return projectRules(payload);
    case "invoice":
      return invoiceRules(payload, related, cfg);
    default:
      return [];
  }
}
