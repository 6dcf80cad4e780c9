// Pre-flight rules for eAccounting, checked before any network call. Pure. eAccounting's most common refusals
// (issue 13, item 8) are caught here with the record, the field and where to fix it: names and address lines
// over 50 characters, a customer or invoice without address, postcode, city or country, numbers too long for
// eAccounting's fields, quantities with more than 2 decimals, credit notes (not transferred unless opted in).
import type { Customer, Entity, InvoiceLike, Product, Project } from "../../agent/model.ts";
import { problem, type Problem } from "../../agent/problem.ts";
import type { RelatedRecords } from "../contract.ts";
import { unkeptLineProblems } from "../line-booking.ts";
import type { EaccountingConfig } from "./config.ts";
import { addressLines, customerAddress, referenceValue } from "./map.ts";

/** eAccounting is a .NET service: its limits count UTF-16 code units (an emoji is 2), as JavaScript's length does. */
const len = (s: string | undefined) => (s ?? "").length;
/** Whether the text holds a character eAccounting counts as 2 (an emoji, or another one beyond U+FFFF). */
const countsTwice = (s: string) => s.length !== [...s].length;

function tooLong(value: string | undefined, max: number, what: string, field: string, hint: string): Problem[] {
  if (len(value) <= max) return [];
  return [
    problem(
      "eaccounting.too_long",
      `${what} is ${len(value)} characters${countsTwice(value!) ? " (an emoji counts as 2)" : ""}; eAccounting takes at most ${max} ("${value!.slice(0, 60)}${len(value) > 60 ? "…" : ""}").`,
      hint,
      field,
    ),
  ];
}

export function customerRules(c: Customer): Problem[] {
  const who = `Customer ${c.number} (${c.name.slice(0, 60)})`;
  const fix = "Shorten it in the PSA (customer card); kontobro sends it again by itself.";
  const out: Problem[] = [
    ...tooLong(
      c.number,
      16,
      `${who}: the customer number`,
      "number",
      "eAccounting's customer numbers have at most 16 characters; give the customer a shorter number in the PSA.",
    ),
    ...tooLong(c.name, 50, `${who}: the name`, "name", fix),
    ...tooLong(c.orgNumber, 20, `${who}: the organisation number`, "orgNumber", fix),
    ...tooLong(
      c.vatNumber?.replace(/\s+/g, ""),
      20,
      `${who}: the VAT number`,
      "vatNumber",
      "Correct the VAT number in the PSA (2-letter country code and 8-12 digits, as VIES checks it).",
    ),
    ...tooLong(c.phone, 50, `${who}: the phone number`, "phone", fix),
    ...tooLong(c.contacts[0]?.name, 100, `${who}: the contact's name`, "contacts.0.name", fix),
  ];
  const a = customerAddress(c);
  const need = (value: string | undefined, what: string, field: string) => {
    if (!value?.trim())
      out.push(
        problem(
          "eaccounting.address_missing",
          `${who} has no ${what}; eAccounting needs address, postcode, city and country on every customer.`,
          `Fill in the customer's ${what} in the PSA (invoice address, or the head-office address); kontobro sends it again by itself.`,
          field,
        ),
      );
  };
  const [line1, line2] = addressLines(a?.street);
  need(line1, "address", "addresses.0.street");
  need(a?.zip, "postcode", "addresses.0.zip");
  need(a?.city, "city", "addresses.0.city");
  need(a?.country, "country", "addresses.0.country");
  out.push(
    ...tooLong(
      line1,
      50,
      `${who}: address line 1`,
      "addresses.0.street",
      "Shorten the address line in the PSA, or split it over two lines; eAccounting takes two lines of 50 characters.",
    ),
  );
  out.push(
    ...tooLong(
      line2,
      50,
      `${who}: address line 2`,
      "addresses.0.street",
      "Shorten the address in the PSA; eAccounting takes two lines of 50 characters.",
    ),
  );
  out.push(...tooLong(a?.zip, 10, `${who}: the postcode`, "addresses.0.zip", fix));
  out.push(...tooLong(a?.city, 50, `${who}: the city`, "addresses.0.city", fix));
  return out;
}

export function productRules(p: Product): Problem[] {
  const who = `Product ${p.code} (${p.name.slice(0, 60)})`;
  return [
    ...tooLong(
      p.code,
      40,
      `${who}: the product code`,
      "code",
      "eAccounting's article numbers have at most 40 characters; shorten the code in the PSA.",
    ),
    ...tooLong(
      p.name,
      50,
      `${who}: the name`,
      "name",
      "Shorten the name of the work type, travel expense or product in the PSA; eAccounting's article names have at most 50 characters.",
    ),
  ];
}

export function projectRules(p: Project): Problem[] {
  const who = `Project ${p.number} (${p.name.slice(0, 60)})`;
  return [
    ...tooLong(
      p.number,
      9,
      `${who}: the project number`,
      "number",
      "The project is a cost-centre item in eAccounting, whose abbreviation takes at most 9 characters; give the project a shorter number in the PSA.",
    ),
    ...tooLong(
      p.name,
      50,
      `${who}: the name`,
      "name",
      "Shorten the project name in the PSA; eAccounting's cost-centre items take at most 50 characters.",
    ),
  ];
}

/** The most each reference_field takes on a draft (CustomerInvoiceDraftApi, api-notes eaccounting.md §8.1). */
export const REFERENCE_FIELD_MAX: Record<EaccountingConfig["reference_field"], number> = {
  ElectronicReference: 100,
  OurReference: 100,
  YourReference: 100,
  BuyersOrderReference: 35,
};

/** kontobro's marker must fit reference_field whole: a cut one would not find the draft again, so eAccounting's refusal is met here. */
function markerProblems(inv: InvoiceLike, field: EaccountingConfig["reference_field"]): Problem[] {
  const marker = referenceValue(inv.psaId);
  const max = REFERENCE_FIELD_MAX[field];
  if (len(marker) <= max) return [];
  return [
    problem(
      "eaccounting.psa_id_too_long",
      `${inv.kind === "credit_note" ? "Credit note" : "Invoice"} ${inv.number}: kontobro's marker "${marker.slice(0, 60)}${len(marker) > 60 ? "…" : ""}" is ${len(marker)} characters; eAccounting's ${field} (reference_field) takes at most ${max}.`,
      max < 100
        ? `Set reference_field = "ElectronicReference" in kontobro.toml (it takes 100 characters) while no invoice is on its way to eAccounting (kontobro finds its drafts again by that field), then press retry.`
        : "The PSA's ids are longer than eAccounting's reference fields allow; report it to kontobro support.",
      "psaId",
    ),
  ];
}

export function invoiceRules(inv: InvoiceLike, related: RelatedRecords | undefined, cfg: EaccountingConfig): Problem[] {
  const what = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  const out: Problem[] = [];
  if (inv.kind === "credit_note" && cfg.credit_notes !== "draft") {
    out.push(
      problem(
        "eaccounting.credit_note_not_transferred",
        `${what} ${inv.number} was not sent: kontobro does not transfer credit notes to eAccounting.`,
        'Credit the invoice in eAccounting (Sales › Invoices › Credit), or set credit_notes = "draft" in kontobro.toml to have kontobro create a credit invoice draft; then press retry.',
        "kind",
      ),
    );
    return out;
  }
  out.push(...markerProblems(inv, cfg.reference_field));
  const customer = related?.("customer", inv.customerNumber) as Customer | null | undefined;
  if (customer) {
    // The draft's InvoiceCustomerName is the PSA's name, whole: the customer's own push refuses a longer one, but an
    // invoice still goes for a customer eAccounting already has (made before, by hand, or eAccounting its master).
    for (const p of tooLong(
      customer.name,
      50,
      `${what} ${inv.number}: the name of customer ${customer.number}`,
      "customerNumber",
      "Shorten the customer's name in the PSA (at most 50 characters); the invoice follows by itself.",
    ))
      out.push({ ...p, record: { entity: "customer", key: inv.customerNumber } });
    const a = customerAddress(customer);
    const missing = [
      ["address", addressLines(a?.street)[0]],
      ["postcode", a?.zip],
      ["city", a?.city],
      ["country", a?.country],
    ]
      .filter(([, v]) => !v?.trim())
      .map(([n]) => n);
    if (missing.length > 0) {
      out.push({
        ...problem(
          "eaccounting.invoice_address_missing",
          `${what} ${inv.number}: customer ${customer.number} (${customer.name.slice(0, 60)}) has no ${missing.join(", ")}; eAccounting needs them on every invoice.`,
          "Fill in the customer's invoice address in the PSA; the invoice follows by itself.",
          "customerNumber",
        ),
        record: { entity: "customer", key: inv.customerNumber },
      });
    }
  }
  // Texts the customer reads on the invoice: one over eAccounting's limit is refused here, never cut (a cut line text
  // is another invoice than the PSA's). A reference in the field that carries kontobro's marker is not sent.
  for (const [field, targetField, label] of [
    ["ourReference", "OurReference", "our reference"],
    ["yourReference", "YourReference", "your reference"],
  ] as const) {
    if (cfg.reference_field === targetField) continue;
    out.push(
      ...tooLong(
        inv[field],
        100,
        `${what} ${inv.number}: ${label}`,
        field,
        "Shorten it in the PSA (at most 100 characters), then send the invoice again.",
      ),
    );
  }
  inv.lines.forEach((l, i) => {
    const at = `${what} ${inv.number}, line ${i + 1} ("${l.text.slice(0, 40)}")`;
    out.push(
      ...tooLong(
        l.text,
        2000,
        `${what} ${inv.number}: the text of line ${i + 1}`,
        `lines.${i}.text`,
        "Shorten the line text in the PSA (or split the line), then send the invoice again; kontobro does not cut a text the customer reads.",
      ),
    );
    if (!l.productCode && !cfg.default_article) {
      out.push(
        problem(
          "eaccounting.line_article_missing",
          `${at} has no product, and no default article is set; eAccounting needs an article on every invoice line.`,
          "Send the line's product (work type) from the PSA, or set default_article in kontobro.toml to an article number in eAccounting (`kontobro check` verifies it); then press retry.",
          `lines.${i}.productCode`,
        ),
      );
    }
    if (Math.abs(Math.round(l.quantity * 100) - l.quantity * 100) > 1e-6) {
      out.push(
        problem(
          "eaccounting.quantity_decimals",
          `${at}: quantity ${l.quantity} has more than 2 decimals; eAccounting takes 2.`,
          "Round the quantity in the PSA, then press retry.",
          `lines.${i}.quantity`,
        ),
      );
    }
  });
  out.push(
    ...unkeptLineProblems(inv, (l) => l.productCode ?? cfg.default_article, {
      codePrefix: "eaccounting",
      title: "eAccounting",
      source: (article) => `article ${article ?? "(default_article)"}'s account coding`,
      product: { owner: "article's account coding", where: "the line's product in the PSA, or default_article in kontobro.toml" },
      settings: cfg,
    }),
  );
  return out;
}

export function eaccountingRules(entity: Entity, payload: any, related: RelatedRecords | undefined, cfg: EaccountingConfig): Problem[] {
  switch (entity) {
    case "customer":
      return customerRules(payload);
    case "product":
      return productRules(payload);
    case "project":
      return projectRules(payload);
    case "invoice":
      return invoiceRules(payload, related, cfg);
    default:
      return [];
  }
}
