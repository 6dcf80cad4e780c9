// A line's VAT code that the target cannot take: targets whose sales lines have no VAT field book each line with the
// VAT of its product (a product group, an article's coding). Sending such a line as if its code were kept would book
// it with another VAT than the PSA invoiced without anyone knowing. Where a connector can tell which VAT the target
// books, it compares (e-conomic); where it cannot, a line carrying a code is refused before anything is sent
// (lineVatCodeProblems). Either way `line_vat_code = "ignore"` says the operator accepts the product's VAT.
import type { InvoiceLike } from "../agent/model.ts";
import { problem, type Problem } from "../agent/problem.ts";
import { z } from "zod";

/** The target setting: "refuse" (default) a line whose VAT code the target would not book, or "ignore" the code and book the product's VAT. */
export const lineVatCodeSetting = () => z.enum(["refuse", "ignore"]).default("refuse");

export interface LineVatTarget {
  /** The problem code's prefix (the connector's name in codes). */
  codePrefix: string;
  /** The target's name as the user knows it. */
  title: string;
  /** Where the target takes a line's VAT from, for a line on this product ("its product group (product TIME)"). */
  vatSource: (product: string | undefined) => string;
  /** Where the product of a line is chosen ("the line's product, or line_products in kontobro.toml"). */
  productHint: string;
  setting: "refuse" | "ignore";
}

/** One problem per line carrying a VAT code, unless the setting says to ignore them. */
export function lineVatCodeProblems(
  inv: InvoiceLike,
  productOf: (line: InvoiceLike["lines"][number]) => string | undefined,
  t: LineVatTarget,
): Problem[] {
  if (t.setting === "ignore") return [];
  const doc = inv.kind === "credit_note" ? "Credit note" : "Invoice";
  return inv.lines.flatMap((l, i) =>
    l.vatCode === undefined
      ? []
      : [
          problem(
            `${t.codePrefix}.line_vat_code`,
            `${doc} ${inv.number}, line ${i + 1} ("${l.text.slice(0, 40)}") carries VAT code ${l.vatCode}, but ${t.title} has no VAT on a line: it would book the line with the VAT of ${t.vatSource(productOf(l))}, whatever the code says. Nothing was sent.`,
            `Put the line on a product whose VAT is the one VAT code ${l.vatCode} stands for (${t.productHint}), or correct the VAT code in the PSA. If the product's VAT is always right for this target, set line_vat_code = "ignore" in its section of kontobro.toml and restart. Then press retry.`,
            `lines.${i}.vatCode`,
          ),
        ],
  );
}
