// One template export file from already-loaded data. Pure: the caller passes the data, time and run id.
import type { Template } from "../../formats/templates/definition.ts";
import { recordFilter, renderTemplate, templateFileName, type Rendered } from "../../formats/templates/render.ts";
import { buildRows, type ExportData } from "../../formats/templates/rows.ts";
import { problem, type Problem } from "../problem.ts";
import type { BuiltFile, LeftOut } from "./build-sie.ts";
import type { ExportSettings } from "./config.ts";

export interface TemplateBuild {
  file: BuiltFile | null;
  rendered: Rendered;
  leftOut: LeftOut[];
  warnings: Problem[];
}

/** Renders the rows of `data` with `t`; `limit` makes a preview (first rows only, no file). */
export function buildTemplateFile(
  t: Template,
  data: ExportData,
  settings: ExportSettings,
  at: { today: string; run: number; period?: { from: string; to: string }; limit?: number },
): TemplateBuild {
  const built = buildRows(t.dataType, data, {
    posting: settings.posting,
    period: at.period,
    groupBy: t.groupBy,
    recordFilter: recordFilter(t),
  });
  const rendered = renderTemplate(t, built.rows, { limit: at.limit });
  const leftOut = built.rejected;
  const warnings = [...leftOutWarnings(leftOut), ...rendered.warnings];
  const isInvoices = t.dataType === "invoices" || t.dataType === "invoices_by_account";
  const invoices = isInvoices ? [...new Set(rendered.rows.map((r) => String(r.number)))] : [];
  const file: BuiltFile | null =
    rendered.rows.length === 0 || at.limit !== undefined
      ? null
      : {
          fileName: templateFileName(t, { today: at.today, from: at.period?.from, to: at.period?.to, run: at.run }),
          format: "csv",
          encoding: t.encoding,
          periodFrom: at.period?.from ?? null,
          periodTo: at.period?.to ?? null,
          bytes: rendered.bytes,
          rowCount: rendered.rows.length,
          invoices,
        };
  return { file, rendered, leftOut, warnings };
}

/** An invoice the posting rules refused stays "to transfer"; say which and why. */
export function leftOutWarnings(leftOut: LeftOut[]): Problem[] {
  return leftOut.map((l) =>
    problem(
      l.problems[0]?.code ?? "exports.left_out",
      `Invoice ${l.number} was left out and stays "to transfer": ${l.problems.map((p) => p.message).join(" ")}`,
      l.problems.find((p) => p.hint)?.hint ?? "Fix it in the PSA or in [exports.posting], then export again.",
      l.problems[0]?.field,
    ),
  );
}
