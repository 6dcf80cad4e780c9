// `kontobro export …`: run exports, list and download files, change invoices' export status, manage and
// test templates. Works on the data directory directly, also while the agent runs (SQLite serialises
// the writes; an export is one transaction).
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { templateFileName, templateFromFile, templateToFile } from "../../formats/templates/definition.ts";
import { DATA_TYPES, DATA_TYPE_TITLES, FIELDS, SELECTION, type DataType } from "../../formats/templates/fields.ts";
import { databasePath } from "../agent.ts";
import type { Args } from "./command.ts";
import type { LoadedConfig } from "../config.ts";
import { openDatabase, type Db } from "../db/index.ts";
import type { Problem } from "../problem.ts";
import { exportSettings, type ExportSettings } from "../exports/config.ts";
import { previewTemplate } from "../exports/preview.ts";
import { runExport } from "../exports/service.ts";
import { changeExportStatus, EXPORT_STATUSES, listInvoiceStatuses, STATUS_LABELS, statusCounts, type ExportStatus, type InvoiceSelector } from "../exports/status.ts";
import { getFileBytes, listFiles } from "../exports/store.ts";
import { deleteTemplate, findTemplate, listTemplates, saveTemplate } from "../exports/templates-store.ts";

export const EXPORT_USAGE = `Usage: kontobro export <subcommand>

  run sie4|TEMPLATE [--from DATE] [--to DATE]   export now; invoices to transfer are marked transferred
  files                                         every file exported, newest first
  download ID [--out PATH|-]                    write a file again (to PATH, a folder, or standard output)
  invoices [--status STATUS]                    invoices and credit notes with their export status
  set-status NUMBER|FROM..TO STATUS [--skip-invalid]
                                                STATUS: ${EXPORT_STATUSES.join(", ")}
  templates                                     built-in and saved templates
  template show NAME [--out FILE]               a template as a file (to edit, or import elsewhere)
  template import FILE [--replace]              save a template from a file
  template test NAME|FILE [--from] [--to] [--rows N]   preview the first rows; stores nothing
  template delete NAME
  fields [DATA_TYPE]                            the fields a template can use

Add --json for machine-readable output.`;

const str = (args: Args, name: string) => (typeof args.flags[name] === "string" ? (args.flags[name] as string) : undefined);

function printProblems(problems: Problem[], label = "error"): void {
  for (const p of problems) console.error(`${label}: ${p.message}${p.hint ? `\n  fix: ${p.hint}` : ""}`);
}

function printWarnings(problems: Problem[]): void {
  for (const p of problems) console.log(`warning: ${p.message}${p.hint ? `\n  fix: ${p.hint}` : ""}`);
}

/** NUMBER, or FROM..TO / FROM-TO for a range of digit-only numbers. */
export function parseSelector(text: string): InvoiceSelector {
  const m = /^(\d+)\s*(?:\.\.|-)\s*(\d+)$/.exec(text);
  return m ? { from: m[1]!, to: m[2]! } : { number: text };
}

export async function exportCommand(args: Args, loadConfig: () => LoadedConfig): Promise<number> {
  const [sub, ...rest] = args.positional;
  if (!sub || args.flags.help) { console.log(EXPORT_USAGE); return sub ? 0 : 2; }
  if (sub === "fields") return fields(rest[0], !!args.flags.json);
  const { config } = loadConfig();
  const settings = exportSettings(config.exports);
  const db = openDatabase(databasePath(config.agent.data_dir));
  try {
    switch (sub) {
      case "run": return run(db, settings, args, rest);
      case "files": return files(db, !!args.flags.json);
      case "download": return download(db, args, rest[0]);
      case "invoices": return invoices(db, args);
      case "set-status": return setStatus(db, args, rest);
      case "templates": return templates(db, !!args.flags.json);
      case "template": return await template(db, settings, args, rest);
      default: console.error(`unknown export subcommand "${sub}"\n\n${EXPORT_USAGE}`); return 2;
    }
  } finally {
    db.$client.close();
  }
}

function run(db: Db, settings: ExportSettings, args: Args, rest: string[]): number {
  const what = rest[0];
  if (!what) { console.error("usage: kontobro export run sie4|TEMPLATE [--from DATE] [--to DATE]"); return 2; }
  const period = { ...(str(args, "from") ? { from: str(args, "from") } : {}), ...(str(args, "to") ? { to: str(args, "to") } : {}) };
  const r = runExport(db, settings, what === "sie4" ? { format: "sie4", ...period } : { format: "template", template: what, ...period }, { by: "cli" });
  if (args.flags.json) { console.log(JSON.stringify(r, null, 2)); return r.ok ? 0 : 1; }
  if (!r.ok) { printProblems(r.problems); console.error("Nothing was exported or marked."); return 1; }
  console.log(r.message);
  for (const f of r.files) console.log(`  file ${f.id}: ${f.fileName}  ${f.rowCount} rows, ${f.size} bytes, sha256 ${f.sha256}`);
  printWarnings(r.warnings);
  if (r.files.length > 0) console.log(`Download again any time: kontobro export download ${r.files[0]!.id}`);
  return 0;
}

function files(db: Db, json: boolean): number {
  const list = listFiles(db, { limit: 1000 });
  if (json) { console.log(JSON.stringify(list, null, 2)); return 0; }
  if (list.length === 0) console.log("No files exported yet.");
  for (const f of list) {
    const period = f.periodFrom || f.periodTo ? ` ${f.periodFrom ?? ""}..${f.periodTo ?? ""}` : "";
    console.log(`${String(f.id).padStart(5)}  ${new Date(f.createdAt).toISOString().slice(0, 16).replace("T", " ")}  ${f.fileName}  (${f.kind === "sie4" ? "SIE 4" : f.template}${period}, ${f.rowCount} rows, ${f.size} bytes, sha256 ${f.sha256.slice(0, 12)}…)`);
  }
  return 0;
}

function download(db: Db, args: Args, id: string | undefined): number {
  if (!id || !/^\d+$/.test(id)) { console.error("usage: kontobro export download ID [--out PATH|-]"); return 2; }
  const f = getFileBytes(db, Number(id));
  if (!f) { console.error(`No export file ${id}; \`kontobro export files\` lists them.`); return 1; }
  const out = str(args, "out");
  if (out === "-") { process.stdout.write(f.bytes); return 0; }
  const path = !out ? f.fileName : existsSync(out) && statSync(out).isDirectory() ? join(out, f.fileName) : out;
  writeFileSync(path, f.bytes);
  console.log(`wrote ${path} (${f.bytes.length} bytes)`);
  return 0;
}

function invoices(db: Db, args: Args): number {
  const status = str(args, "status") as ExportStatus | undefined;
  if (status && !EXPORT_STATUSES.includes(status)) { console.error(`--status must be one of ${EXPORT_STATUSES.join(", ")}`); return 2; }
  const rows = listInvoiceStatuses(db, { status, limit: 1000 });
  if (args.flags.json) { console.log(JSON.stringify({ counts: statusCounts(db), invoices: rows }, null, 2)); return 0; }
  const counts = statusCounts(db);
  console.log(EXPORT_STATUSES.map((s) => `${STATUS_LABELS[s]}: ${counts[s]}`).join(", "));
  for (const r of rows) console.log(`  ${r.number.padEnd(10)} ${r.kind === "credit_note" ? "credit note" : "invoice    "} ${r.date}  customer ${r.customerNumber}  ${r.status ? STATUS_LABELS[r.status] : "(no status)"}${r.exportFileId ? ` (file ${r.exportFileId})` : ""}`);
  return 0;
}

function setStatus(db: Db, args: Args, rest: string[]): number {
  const [which, status] = rest;
  if (!which || !status) { console.error(`usage: kontobro export set-status NUMBER|FROM..TO STATUS [--skip-invalid]\n  STATUS: ${EXPORT_STATUSES.join(", ")}`); return 2; }
  const r = changeExportStatus(db, parseSelector(which), status as ExportStatus, "cli", { skipInvalid: !!args.flags["skip-invalid"] });
  if (args.flags.json) { console.log(JSON.stringify(r, null, 2)); return r.ok ? 0 : 1; }
  if (!r.ok) { printProblems(r.problems); return 1; }
  console.log(`${r.changed.length} invoice(s) set to "${STATUS_LABELS[r.status]}"${r.changed.length ? `: ${r.changed.join(", ")}` : ""}` +
    (r.unchanged.length ? `; ${r.unchanged.length} already had that status` : "") + ".");
  printWarnings(r.skipped.map((s) => ({ ...s.problem, message: `skipped: ${s.problem.message}` })));
  return 0;
}

function templates(db: Db, json: boolean): number {
  const list = listTemplates(db);
  if (json) { console.log(JSON.stringify(list, null, 2)); return 0; }
  for (const t of list) {
    console.log(`${t.name.padEnd(32)} ${DATA_TYPE_TITLES[t.dataType as DataType] ?? t.dataType}${t.builtin ? ", built in" : ""}${t.guessedColumns ? `, ${t.guessedColumns} guessed column(s)` : ""}${t.title ? `\n  ${t.title}` : ""}`);
  }
  return 0;
}

async function template(db: Db, settings: ExportSettings, args: Args, rest: string[]): Promise<number> {
  const [action, target] = rest;
  if (!action || !target) { console.error(EXPORT_USAGE); return 2; }
  if (action === "import") {
    const parsed = templateFromFile(readFileSync(target, "utf8"));
    if (!parsed.ok) { printProblems(parsed.problems); console.error(`${target} was not imported.`); return 1; }
    const saved = saveTemplate(db, parsed.template, { replace: !!args.flags.replace });
    if (!saved.ok) { printProblems(saved.problems); return 1; }
    console.log(`${saved.created ? "saved" : "replaced"} template ${saved.template.name}`);
    return 0;
  }
  if (action === "delete") {
    const r = deleteTemplate(db, target);
    if (!r.ok) { printProblems(r.problems); return 1; }
    console.log(`deleted template ${target}`);
    return 0;
  }
  // show and test take a saved/built-in name, or (test) a template file.
  const fromFile = action === "test" && existsSync(target) && statSync(target).isFile();
  const found = fromFile ? templateFromFile(readFileSync(target, "utf8")) : findTemplate(db, target);
  if (!found.ok) { printProblems(found.problems); return 1; }
  const t = found.template;
  if (action === "show") {
    const out = str(args, "out");
    if (!out) { process.stdout.write(templateToFile(t)); return 0; }
    const path = existsSync(out) && statSync(out).isDirectory() ? join(out, templateFileName(t.name)) : out;
    writeFileSync(path, templateToFile(t));
    console.log(`wrote ${path}`);
    return 0;
  }
  if (action !== "test") { console.error(`unknown template action "${action}"\n\n${EXPORT_USAGE}`); return 2; }
  const rows = str(args, "rows") ? Number(str(args, "rows")) : undefined;
  const p = previewTemplate(db, settings, t, { from: str(args, "from"), to: str(args, "to"), rows });
  if (args.flags.json) { console.log(JSON.stringify(p, null, 2)); return p.ok ? 0 : 1; }
  if (!p.ok) { printProblems(p.problems); return 1; }
  console.log(p.message);
  if (p.text) console.log(`\n${p.text.replace(/\r\n/g, "\n")}`);
  const guesses = p.columns.filter((c) => c.guess);
  if (guesses.length > 0) console.log(`Guessed columns: ${guesses.map((c) => c.header).join(", ")} (see the template's notes).`);
  printWarnings(p.warnings);
  return 0;
}

function fields(dataType: string | undefined, json: boolean): number {
  const types = dataType ? DATA_TYPES.filter((d) => d === dataType) : [...DATA_TYPES];
  if (types.length === 0) { console.error(`unknown data type "${dataType}"; use one of ${DATA_TYPES.join(", ")}`); return 2; }
  if (json) { console.log(JSON.stringify(Object.fromEntries(types.map((d) => [d, FIELDS[d]])), null, 2)); return 0; }
  for (const d of types) {
    console.log(`${d} (${DATA_TYPE_TITLES[d]}; ${SELECTION[d] === "period" ? "by period: --from and --to" : SELECTION[d] === "to_transfer" ? "invoices to transfer" : "all records"})`);
    for (const [name, spec] of Object.entries(FIELDS[d])) console.log(`  ${name.padEnd(26)} ${spec.type.padEnd(8)} ${spec.description}`);
  }
  return 0;
}
