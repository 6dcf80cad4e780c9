// "Test template": the first rows a template would export now, formatted exactly as in the file, with
// the warnings the export would give. Reads only: nothing is stored and no invoice changes status.
import type { Template } from "../../formats/templates/definition.ts";
import { decodeText } from "../../formats/encoding.ts";
import { DATA_TYPE_TITLES, SELECTION } from "../../formats/templates/fields.ts";
import { buildRows } from "../../formats/templates/rows.ts";
import { applyFilters, recordFilter, renderTemplate } from "../../formats/templates/render.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { Problem } from "../problem.ts";
import { leftOutWarnings } from "./build-template.ts";
import type { ExportSettings } from "./config.ts";
import { invoicesToExport } from "./credits.ts";
import { checkPeriod } from "./service.ts";
import * as store from "./store.ts";

export type Preview =
  | {
      ok: true;
      template: string;
      dataType: string;
      header: string[] | null;
      rows: string[][];
      totalRows: number;
      /** The first lines of the file as the receiving system will read them (decoded from the file's encoding). */
      text: string;
      columns: { header: string; source: string; guess: boolean; note?: string }[];
      warnings: Problem[];
      message: string;
    }
  | { ok: false; httpStatus: 422; problems: Problem[] };

export async function previewTemplate(
  db: SqlRunner,
  settings: ExportSettings,
  t: Template,
  request: { from?: string; to?: string; rows?: number },
): Promise<Preview> {
  const what = DATA_TYPE_TITLES[t.dataType];
  const selection = SELECTION[t.dataType];
  const checked = checkPeriod(selection, request.from, request.to, what);
  if (checked.problems.length > 0) return { ok: false, httpStatus: 422, problems: checked.problems };
  const limit = Math.max(1, Math.min(request.rows ?? 10, 200));
  // One transaction, as an export reads (on SQLite its reads see one moment).
  return db.transaction(async (tx): Promise<Preview> => {
    const period = checked.period;
    const { invoices, leftOut: refused } =
      selection === "to_transfer" ? await invoicesToExport(tx, period) : { invoices: undefined, leftOut: [] };
    const data = {
      customers: await store.loadCustomers(tx),
      projects: await store.loadProjects(tx),
      users: await store.loadUsers(tx),
      ...(invoices ? { invoices } : {}),
      ...(t.dataType.startsWith("time_records") ? { timeRecords: await store.loadTimeRecords(tx, period!.from!, period!.to!) } : {}),
      ...(t.dataType === "expense_claims" ? { claims: await store.loadClaims(tx, period!.from!, period!.to!) } : {}),
    };
    const built = buildRows(t.dataType, data, {
      posting: settings.posting,
      period: period as { from: string; to: string } | undefined,
      groupBy: t.groupBy,
      recordFilter: recordFilter(t),
    });
    const totalRows = applyFilters(t, built.rows).length;
    const rendered = renderTemplate(t, built.rows, { limit });
    const scope =
      selection === "to_transfer"
        ? "invoices to transfer"
        : selection === "period"
          ? `${what.toLowerCase()} from ${period!.from} to ${period!.to}`
          : `all ${what.toLowerCase()}`;
    return {
      ok: true,
      template: t.name,
      dataType: t.dataType,
      header: rendered.header,
      rows: rendered.cells,
      totalRows,
      text: decodeText(rendered.bytes, t.encoding).replace(/^\ufeff/, ""),
      columns: t.columns.map((c) => ({
        header: c.header,
        source: c.field ?? `"${c.value}"`,
        guess: !!c.guess,
        ...(c.note ? { note: c.note } : {}),
      })),
      warnings: [...rendered.errors, ...checked.warnings, ...leftOutWarnings([...refused, ...built.rejected]), ...rendered.warnings],
      message:
        totalRows === 0
          ? `No rows: there are no ${scope} that pass the filters, so an export now would write no file.`
          : `The first ${Math.min(limit, totalRows)} of ${totalRows} row(s) an export would write now (${scope}). Nothing was stored or marked.`,
    };
  });
}
