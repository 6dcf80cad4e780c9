// Runs an export: SIE 4 or a template. Everything happens in one transaction of the tenant's runner (SQLite: the
// write transaction; PostgreSQL: holding the tenant's export turn, so exports on two workers take turns): the
// invoices to transfer are selected, the files built and stored, and exactly those invoices marked "transferred".
// A crash or error anywhere before the commit leaves no file and no marked invoice; after it, both.
import { createHash } from "node:crypto";
import type { Template } from "../../formats/templates/definition.ts";
import { DATA_TYPE_TITLES, PERIOD_SOURCE, SELECTION } from "../../formats/templates/fields.ts";
import { templateFileName } from "../../formats/templates/render.ts";
import type { ExportData } from "../../formats/templates/rows.ts";
import { isValidIsoDate } from "../../formats/sie4/writer.ts";
import type { Db } from "../db/index.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { problem, type Problem } from "../problem.ts";
import { startWork, type WorkBoard, type WorkEntry, type WorkTracker } from "../running-work.ts";
import { buildSieFiles, SIE_BUILD_STAGES, type BuiltFile, type LeftOut } from "./build-sie.ts";
import { buildTemplateFile, leftOutWarnings } from "./build-template.ts";
import { changedSinceExport } from "./changed.ts";
import { exportedCreditsNowWrong, invoicesToExport } from "./credits.ts";
import type { ExportSettings } from "./config.ts";
import { deliverPending } from "./deliver.ts";
import { alreadyInFolder, unknownFiles } from "./found-files.ts";
import type { ChangedBy } from "./status.ts";
import * as store from "./store.ts";
import { allTemplates, findTemplate } from "./templates-store.ts";

export type ExportRequest =
  | { format: "sie4"; from?: string; to?: string }
  | { format: "template"; template: string; from?: string; to?: string };

export interface ExportOptions {
  by: Extract<ChangedBy, "api" | "cli" | "ui">;
  now?: Date;
  /**
   * The clock of the output folder's delivery claim (its lease, compared with other workers' claims) and of
   * delivered_at: a hosted worker's Worker.now, the database's clock. Date.now when absent (SQLite: one machine).
   */
  clock?: () => number;
  /** Hears the export's progress (the CLI's progress line); every process sees it too (agent/running-work.ts). */
  onProgress?: (work: Readonly<WorkEntry>) => void;
  /**
   * Where the export's progress shows to other processes: SQLite, the data directory's database (its progress files); a
   * hosted tenant, its running_work board (agent/running-work-sql.ts). Null: only `onProgress` hears it.
   */
  progressIn?: Db | WorkBoard | null;
  /** Fault injection for tests: throwing here rolls the whole export back, as a crash would. */
  faults?: { afterFilesStored?: () => void; afterInvoicesMarked?: () => void; beforeDelivery?: () => void };
}

export interface ExportedFile {
  id: number;
  fileName: string;
  format: string;
  size: number;
  sha256: string;
  rowCount: number;
  periodFrom: string | null;
  periodTo: string | null;
  invoices: string[];
}

export type ExportResult =
  | {
      ok: true;
      runId: number | null;
      files: ExportedFile[];
      rowCount: number;
      invoices: { exported: string[]; leftOut: LeftOut[] };
      warnings: Problem[];
      message: string;
    }
  | { ok: false; httpStatus: 404 | 422; problems: Problem[] };

type Period = { from: string; to: string };

/** Checks from/to against what the data type needs. Pure. */
export function checkPeriod(
  selection: "all" | "to_transfer" | "period",
  from: string | undefined,
  to: string | undefined,
  what: string,
): { period?: Partial<Period>; problems: Problem[]; warnings: Problem[] } {
  const problems: Problem[] = [];
  for (const [k, v] of [
    ["from", from],
    ["to", to],
  ] as const) {
    if (v !== undefined && !isValidIsoDate(v))
      problems.push(problem("exports.bad_date", `${k}: "${String(v).slice(0, 30)}" is not a date.`, "Write dates as 2026-03-31.", k));
  }
  if (problems.length === 0 && from && to && from > to)
    problems.push(problem("exports.bad_period", `The period ${from} to ${to} is empty: from is after to.`, "Swap the dates.", "from"));
  if (selection === "period" && (!from || !to)) {
    problems.push(
      problem(
        "exports.period_required",
        `${what} are exported by period: give both from and to.`,
        "E.g. from 2026-03-01 to 2026-03-31.",
        !from ? "from" : "to",
      ),
    );
  }
  const warnings =
    selection === "all" && (from || to)
      ? [
          problem(
            "exports.period_ignored",
            `${what} are exported whole; from and to were ignored.`,
            "Leave the period out for this data type.",
          ),
        ]
      : [];
  return { period: selection === "all" ? undefined : { from, to }, problems, warnings };
}

async function overlapWarnings(db: SqlRunner, dataType: keyof typeof PERIOD_SOURCE, period: Period): Promise<Problem[]> {
  const source = PERIOD_SOURCE[dataType]!;
  const what = source === "time_records" ? "Time records" : "Expense claims";
  const types = Object.entries(PERIOD_SOURCE)
    .filter(([, s]) => s === source)
    .map(([t]) => t);
  const notes = [
    problem(
      "exports.no_exported_flag",
      `${what} carry no exported flag: this file holds every one dated ${period.from} to ${period.to} as it is now, and exporting an overlapping period again repeats those rows.`,
      "Export each period once, one after the other (e.g. month by month).",
    ),
  ];
  for (const run of await store.overlappingRuns(db, types, period.from, period.to)) {
    const from = run.periodFrom! > period.from ? run.periodFrom! : period.from; // ISO dates: string order
    const to = run.periodTo! < period.to ? run.periodTo! : period.to;
    const files = (await store.listFiles(db, { runId: run.id })).map((f) => `${f.fileName} (file ${f.id})`).join(", ");
    notes.push(
      problem(
        "exports.period_overlap",
        `${what} from ${from} to ${to} were already exported on ${new Date(run.createdAt).toISOString().slice(0, 10)} (export ${run.id}${run.template ? `, template ${run.template}` : ""}: ${files}): their rows are in this file again.`,
        "If the receiving system already imported that export, import only the rows outside that period, or export a period that does not overlap.",
        "from",
      ),
    );
  }
  return notes;
}

async function storeFiles(db: SqlRunner, runId: number, files: BuiltFile[], createdAt: number, deliver: boolean): Promise<ExportedFile[]> {
  const stored: ExportedFile[] = [];
  for (const f of files) {
    const sha256 = createHash("sha256").update(f.bytes).digest("hex");
    const id = await store.insertFile(db, { runId, ...f, sha256, createdAt, toDeliver: deliver });
    stored.push({
      id,
      fileName: f.fileName,
      format: f.format,
      size: f.bytes.length,
      sha256,
      rowCount: f.rowCount,
      periodFrom: f.periodFrom,
      periodTo: f.periodTo,
      invoices: f.invoices,
    });
  }
  return stored;
}

const MARK_TRANSFERRED = `UPDATE invoice_export_status SET status = 'transferred', changed_at = ?2, changed_by = 'export', export_file_id = ?3
    WHERE invoice_key = ?1 AND status = 'to_transfer'`;

/** Marks exactly the exported invoices; an invoice no longer "to transfer" aborts the whole export. */
async function markTransferred(db: SqlRunner, files: ExportedFile[], now: number, progress: (marked: number) => void): Promise<void> {
  let marked = 0;
  for (const f of files)
    for (const number of f.invoices) {
      if ((await db.run(MARK_TRANSFERRED, number, now, f.id)).changes !== 1)
        throw new Error(`invoice ${number} is no longer "to transfer"; export aborted, nothing was stored`);
      progress(++marked);
    }
}

const MARKING = "marking invoices transferred";

/**
 * An export's progress in invoices: a SIE 4 export passes every invoice through its three build stages and then
 * marks it, so `done` counts whole invoices' worth of those four passes.
 */
function sieProgress(work: WorkTracker, invoices: number) {
  const passes = SIE_BUILD_STAGES.length + 1;
  return {
    build: (stage: string, done: number) => work.update(Math.floor(done / passes), invoices, stage),
    mark: (marked: number) => work.update(Math.floor((SIE_BUILD_STAGES.length * invoices + marked) / passes), invoices, MARKING),
  };
}

/** The template's data; `refused`: credit notes to transfer it must leave out (./credits.ts). */
async function loadData(
  db: SqlRunner,
  t: Template,
  period: Partial<Period> | undefined,
): Promise<{ data: ExportData; refused: LeftOut[] }> {
  const data: ExportData = {
    customers: await store.loadCustomers(db),
    projects: await store.loadProjects(db),
    users: await store.loadUsers(db),
  };
  let refused: LeftOut[] = [];
  if (SELECTION[t.dataType] === "to_transfer") ({ invoices: data.invoices, leftOut: refused } = await invoicesToExport(db, period));
  if (t.dataType === "time_records" || t.dataType === "time_records_grouped")
    data.timeRecords = await store.loadTimeRecords(db, period!.from!, period!.to!);
  if (t.dataType === "expense_claims") data.claims = await store.loadClaims(db, period!.from!, period!.to!);
  return { data, refused };
}

/** Runs one export. Never leaves a file without its invoices marked, or marked invoices without their file. */
export async function runExport(
  db: SqlRunner,
  settings: ExportSettings,
  request: ExportRequest,
  options: ExportOptions,
): Promise<ExportResult> {
  const now = options.now ?? new Date();
  const nowMs = now.getTime();
  let template: Template | undefined;
  if (request.format === "template") {
    const found = await findTemplate(db, request.template);
    if (!found.ok) return { ok: false, httpStatus: found.httpStatus, problems: found.problems };
    template = found.template;
  }
  const what = template ? DATA_TYPE_TITLES[template.dataType] : "Invoices";
  const checked = checkPeriod(template ? SELECTION[template.dataType] : "to_transfer", request.from, request.to, what);
  if (checked.problems.length > 0) return { ok: false, httpStatus: 422, problems: checked.problems };

  const work = startWork(
    options.progressIn ?? null,
    {
      kind: "export",
      title: template ? `Export "${template.title ?? template.name}"` : "SIE 4 export",
      // Invoices are counted until they are marked; other data by the rows of its file.
      unit: !template || SELECTION[template.dataType] === "to_transfer" ? "invoices" : "rows",
    },
    { listener: options.onProgress },
  );
  // Another export (or a long write) holds the database: say so rather than look stuck.
  work.update(0, null, "waiting for the database");
  let markProgress: (marked: number) => void = () => undefined;
  // Read before the transaction: a slow folder must not hold the database.
  const ofInvoices = !template || SELECTION[template.dataType] === "to_transfer";
  const found = ofInvoices && settings.outputDir ? await unknownFiles(db, settings.outputDir, await allTemplates(db)) : [];
  const exporting = async (tx: SqlRunner): Promise<ExportResult> => {
    // Another export of the tenant on another worker waits here until this one has committed (PostgreSQL).
    // It may idle while it reads and builds (PostgreSQL: store.ts, EXPORT_BUILD_IDLE_MS), until it writes.
    const turn = await store.takeExportTurn(tx, { building: true });
    let files: BuiltFile[];
    let leftOut: LeftOut[] = [];
    const warnings = [...checked.warnings];
    if (!template) {
      work.update(0, null, "selecting invoices");
      const { invoices, leftOut: refused } = await invoicesToExport(tx, checked.period);
      warnings.push(...(await changedSinceExport(tx, settings)), ...(await exportedCreditsNowWrong(tx)));
      if (invoices.length === 0 && refused.length === 0) return { ...nothing(`No invoices to transfer${periodText(request)}.`), warnings };
      const doubles = alreadyInFolder(
        found,
        invoices.map((i) => i.doc),
        settings.outputDir!,
      );
      if (doubles.length > 0) return { ok: false, httpStatus: 422, problems: doubles };
      const progress = sieProgress(work, invoices.length);
      markProgress = progress.mark;
      const built = buildSieFiles(
        invoices.map((i) => i.doc),
        { customers: await store.loadCustomers(tx), projects: await store.loadProjects(tx) },
        settings,
        // After the folder's files too: a serial the importer has seen is never given to another file.
        { now, firstSerial: Math.max(await store.sieFileCount(tx), ...found.map((f) => f.serial)) + 1 },
        progress.build,
      );
      if (!built.ok) return { ok: false, httpStatus: 422, problems: built.problems };
      files = built.files;
      leftOut = [...refused, ...built.leftOut];
      warnings.push(...leftOutWarnings(leftOut), ...built.warnings);
      if (files.length === 0)
        return { ...nothing(`No invoice could be exported${periodText(request)}.`), invoices: { exported: [], leftOut }, warnings };
    } else {
      work.update(0, null, "building the file");
      const { data, refused } = await loadData(tx, template, checked.period);
      if (data.invoices) warnings.push(...(await exportedCreditsNowWrong(tx)));
      if (data.invoices?.length === 0 && refused.length === 0)
        return { ...nothing(`No invoices to transfer${periodText(request)}.`), warnings };
      const period = SELECTION[template.dataType] === "period" ? (checked.period as Period) : undefined;
      const today = now.toISOString().slice(0, 10);
      const built = buildTemplateFile(template, data, settings, { today, run: 0, period });
      if (built.rendered.errors.length > 0) return { ok: false, httpStatus: 422, problems: built.rendered.errors };
      const written = new Set(built.file?.invoices);
      const doubles = alreadyInFolder(
        found,
        (data.invoices ?? []).map((i) => i.doc).filter((d) => written.has(d.number)),
        settings.outputDir!,
      );
      if (doubles.length > 0) return { ok: false, httpStatus: 422, problems: doubles };
      const invoices = built.file?.invoices.length ?? 0;
      if (SELECTION[template.dataType] === "to_transfer") {
        work.update(0, invoices, MARKING);
        markProgress = (n) => work.update(n, invoices, MARKING);
      } else work.update(0, built.file?.rowCount ?? null, "storing the file");
      leftOut = [...refused, ...built.leftOut];
      warnings.push(...leftOutWarnings(refused), ...built.warnings);
      if (!built.file) {
        const none =
          leftOut.length > 0 && leftOut.length === (data.invoices?.length ?? 0) + refused.length
            ? `No invoice could be exported${periodText(request)}.`
            : `Nothing to export: no ${what.toLowerCase()}${periodText(request)}${template.filters.length ? " pass the template's filters" : ""}.`;
        return { ...nothing(none), invoices: { exported: [], leftOut }, warnings };
      }
      await turn.built();
      if (period) warnings.push(...(await overlapWarnings(tx, template.dataType as keyof typeof PERIOD_SOURCE, period)));
      const runId = await store.insertRun(tx, runRow(template, request, options, nowMs));
      built.file.fileName = templateFileName(template, { today, from: period?.from, to: period?.to, run: runId });
      return finish(runId, [built.file]);
    }
    await turn.built();
    const runId = await store.insertRun(tx, runRow(undefined, request, options, nowMs));
    return finish(runId, files);

    async function finish(runId: number, built: BuiltFile[]): Promise<ExportResult> {
      const stored = await storeFiles(tx, runId, built, nowMs, !!settings.outputDir);
      options.faults?.afterFilesStored?.();
      await markTransferred(tx, stored, nowMs, markProgress);
      options.faults?.afterInvoicesMarked?.();
      const rowCount = stored.reduce((s, f) => s + f.rowCount, 0);
      const exported = stored.flatMap((f) => f.invoices);
      await store.finishRun(tx, runId, { rowCount, invoiceCount: exported.length, warnings });
      const message =
        `Exported ${rowCount} ${template ? "row(s)" : "voucher(s)"} to ${stored.map((f) => f.fileName).join(", ")}` +
        (exported.length > 0 ? `; ${exported.length} invoice(s) marked as transferred` : "") +
        (leftOut.length > 0 ? `; ${leftOut.length} left out (see warnings)` : "") +
        ".";
      return { ok: true, runId, files: stored, rowCount, invoices: { exported, leftOut }, warnings, message };
    }
  };

  let outcome: ExportResult;
  try {
    outcome = await db.transaction(exporting);
  } catch (e) {
    work.finish("failed", "nothing was exported or marked");
    throw e;
  }
  if (outcome.ok && outcome.files.length > 0 && settings.outputDir) {
    try {
      options.faults?.beforeDelivery?.();
      const delivered = await deliverPending(db, settings.outputDir, options.clock ? { now: options.clock } : {});
      outcome.warnings.push(...delivered.problems);
    } catch (e) {
      work.finish("failed", "stored, not yet written to the output folder");
      throw e;
    }
  }
  if (!outcome.ok) work.finish("failed", outcome.problems[0]?.message);
  else if (outcome.files.length === 0) work.finish("ok", "nothing to export");
  else {
    const total = work.entry.total ?? outcome.rowCount;
    work.update(total, total, "done");
    work.finish("ok", `${outcome.files.length} file(s)`);
  }
  return outcome;
}

function nothing(message: string): Extract<ExportResult, { ok: true }> {
  return { ok: true, runId: null, files: [], rowCount: 0, invoices: { exported: [], leftOut: [] }, warnings: [], message };
}

const periodText = (r: { from?: string; to?: string }) => (r.from || r.to ? ` (${r.from ?? "…"} to ${r.to ?? "…"})` : "");

function runRow(t: Template | undefined, r: ExportRequest, o: ExportOptions, now: number): Omit<store.RunRow, "id"> {
  return {
    kind: t ? "template" : "sie4",
    template: t?.name ?? null,
    dataType: t?.dataType ?? "invoices",
    periodFrom: r.from ?? null,
    periodTo: r.to ?? null,
    rowCount: 0,
    invoiceCount: 0,
    warnings: [],
    requestedBy: o.by,
    createdAt: now,
  };
}
