// A line's VAT code and account that the target cannot take: targets whose sales lines have neither field book each
// line with the VAT and sales account of its product (a product group, an article's coding). Sending such a line as if
// its code or account were kept would book it with another VAT or on another account than the PSA invoiced, without
// anyone knowing. Where a connector can tell what the target books, it compares (e-conomic: bookedDiffers); where it
// cannot, a line carrying the field is refused before anything is sent (unkeptLineProblems). Either way the field's
// setting (`line_vat_code`, `line_account`) = "ignore" says the operator accepts the product's VAT or account.
import { canonicalNumber, type InvoiceLike, type InvoiceLine } from "../agent/model.ts";
import { problem, type Problem } from "../agent/problem.ts";
import { z } from "zod";

/** A target setting: "refuse" (default) a line whose field the target would not book as sent, or "ignore" the field. */
export const lineFieldSetting = () => z.enum(["refuse", "ignore"]).default("refuse");
export type LineFieldSetting = z.infer<ReturnType<typeof lineFieldSetting>>;

/** The settings of a target whose lines have no VAT code and no account of their own. */
export interface LineFieldSettings {
  line_vat_code: LineFieldSetting;
  line_account: LineFieldSetting;
}

/** The line fields a product decides at such a target: the setting that governs each, and how it reads in a message. */
export const LINE_FIELDS = {
  vatCode: { setting: "line_vat_code", label: "VAT code", productBooks: (v: string) => `VAT code ${v}`, productHas: "VAT" },
  account: { setting: "line_account", label: "account", productBooks: (v: string) => `on sales account ${v}`, productHas: "sales account" },
} as const;
export type LineField = keyof typeof LINE_FIELDS;

/** The fields a line carries that must be checked (their setting is not "ignore"), with the values sent. */
export function checkedLineFields(line: Pick<InvoiceLine, LineField>, s: LineFieldSettings): { field: LineField; sent: string }[] {
  return (Object.keys(LINE_FIELDS) as LineField[]).flatMap((field) => {
    const sent = line[field];
    return sent === undefined || s[LINE_FIELDS[field].setting] === "ignore" ? [] : [{ field, sent }];
  });
}

/** Whether the value the target books is the one the line sent: VAT codes ignoring case, account numbers as numbers. */
export function sameLineValue(field: LineField, booked: string | number | undefined, sent: string): boolean {
  if (booked === undefined) return false;
  if (field === "account") return canonicalNumber(booked) === canonicalNumber(sent);
  return String(booked).trim().toLowerCase() === sent.trim().toLowerCase();
}

/** The hint of a line whose field the target would not book as sent. */
export function unkeptLineHint(field: LineField, sent: string, product: { owner: string; where: string }): string {
  const f = LINE_FIELDS[field];
  return `Put the line on a product whose ${product.owner} books ${f.productBooks(sent)} (${product.where}), or correct the ${f.label} in the PSA; then press retry. If the ${product.owner}'s ${f.productHas} is always right for this target, set ${f.setting} = "ignore" in its section of kontobro.toml and restart.`;
}

export interface UnkeptLineTarget {
  /** The problem code's prefix (the connector's name in codes). */
  codePrefix: string;
  /** The target's name as the user knows it. */
  title: string;
  /** Where the target takes a line's VAT and account from, for a line on this product ("article 100's account coding"). */
  source: (product: string | undefined) => string;
  /** What decides a product's VAT and account ("article's coding") and where a line's product is chosen. */
  product: { owner: string; where: string };
  settings: LineFieldSettings;
}

/** One problem per line and field it carries that the target cannot tell it books, unless that field's setting is "ignore". */
export function unkeptLineProblems(
  inv: InvoiceLike,
  productOf: (line: InvoiceLike["lines"][number]) => string | undefined,
  t: UnkeptLineTarget,
): Problem[] {
  const doc = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  return inv.lines.flatMap((l, i) =>
    checkedLineFields(l, t.settings).map(({ field, sent }) => {
      const label = LINE_FIELDS[field].label;
      return problem(
        `${t.codePrefix}.${LINE_FIELDS[field].setting}`,
        `${doc} ${inv.number}, line ${i + 1} ("${l.text.slice(0, 40)}") carries ${label} ${sent}, but ${t.title} has no ${label} on a line: it would book the line with the ${LINE_FIELDS[field].productHas} of ${t.source(productOf(l))}, whatever the line says. Nothing was sent.`,
        unkeptLineHint(field, sent, t.product),
        `lines.${i}.${field}`,
      );
    }),
  );
}
