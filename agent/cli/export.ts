// `kontobro export …`: run exports, list and download files, change invoices' export status, manage and
// test templates. Works on the data directory directly, also while the agent runs (SQLite serialises
// the writes; an export is one transaction).
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Template, templateFileName, templateFromFile, templateToFile } from "../../formats/templates/definition.ts";
import { DATA_TYPES, DATA_TYPE_TITLES, FIELDS, SELECTION, type DataType } from "../../formats/templates/fields.ts";
import { databasePath } from "../agent.ts";
import { openDatabase, type Db } from "../db/index.ts";
import { sqliteRunner, type SqlRunner } from "../db/pg/runner.ts";
import { exportSettings, type ExportSettings } from "../exports/config.ts";
import { previewTemplate } from "../exports/preview.ts";
import { runExport } from "../exports/service.ts";
import { syncWritten } from "../fsync.ts";
import {
  changeExportStatus,
  EXPORT_STATUSES,
  listInvoiceStatuses,
  STATUS_LABELS,
  statusCounts,
  type ExportStatus,
  type InvoiceSelector,
} from "../exports/status.ts";
import { getFileBytes, listFiles, prunedFileProblem } from "../exports/store.ts";
import { deleteTemplate, findTemplate, listTemplates, saveTemplate } from "../exports/templates-store.ts";
import type { Problem } from "../problem.ts";
import { describeWork } from "../running-work.ts";
import { CONFIG_OPTION, defineCommand, defineGroup } from "./command.ts";
import { listed } from "./listing.ts";
import { ProgressLine } from "./progress-line.ts";
import { loadConfig } from "./runtime.ts";

const JSON_OPTION = { json: { type: "boolean", help: "machine-readable output" } } as const;
const PERIOD_OPTIONS = {
  from: { type: "string", value: "DATE", help: "first day of the period (YYYY-MM-DD), for data exported by period" },
  to: { type: "string", value: "DATE", help: "last day of the period (YYYY-MM-DD)" },
} as const;

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

/**
 * Runs `fn` on the database of the configured data directory (its runner, and the file itself, whose data directory
 * shows an export's progress to the agent's status page), with the [exports] settings.
 */
async function withStore(
  configFile: string | undefined,
  fn: (db: SqlRunner, settings: ExportSettings, file: Db) => number | Promise<number>,
): Promise<number> {
  const { config } = loadConfig(configFile);
  const settings = exportSettings(config.exports);
  const file = openDatabase(databasePath(config.agent.data_dir));
  try {
    return await fn(sqliteRunner(file.$client), settings, file);
  } finally {
    file.$client.close();
  }
}

const run = defineCommand({
  name: "run",
  args: "sie4|TEMPLATE",
  summary: "export now; invoices to transfer are marked transferred",
  description:
    "Writes a SIE 4 file, or a file with a template (built-in or saved), from the stored records; the invoices\n" +
    "it contains are marked transferred in the same transaction. Data exported by period needs --from and --to.\n" +
    "Shows its progress (on a terminal one line that rewrites itself; otherwise a line every few seconds).",
  options: { ...PERIOD_OPTIONS, ...JSON_OPTION, ...CONFIG_OPTION },
  positionals: [1, 1],
  examples: ["kontobro export run sie4", ["kontobro export run hours-per-employee --from 2026-03-01 --to 2026-03-31", "a period"]],
  run: ({ values, positionals: [what] }) =>
    withStore(values.config, async (db, settings, file) => {
      const period = { ...(values.from ? { from: values.from } : {}), ...(values.to ? { to: values.to } : {}) };
      const line = values.json ? null : new ProgressLine();
      const r = await runExport(
        db,
        settings,
        what === "sie4" ? { format: "sie4", ...period } : { format: "template", template: what!, ...period },
        { by: "cli", progressIn: file, ...(line ? { onProgress: (w) => line.update(describeWork(w)) } : {}) },
      );
      line?.finish();
      if (values.json) {
        console.log(JSON.stringify(r, null, 2));
        return r.ok ? 0 : 1;
      }
      if (!r.ok) {
        printProblems(r.problems);
        console.error("Nothing was exported or marked.");
        return 1;
      }
      console.log(r.message);
      for (const f of r.files) console.log(`  file ${f.id}: ${f.fileName}  ${f.rowCount} rows, ${f.size} bytes, sha256 ${f.sha256}`);
      printWarnings(r.warnings);
      if (r.files.length > 0) console.log(`Download again any time: kontobro export download ${r.files[0]!.id}`);
      return 0;
    }),
});

const files = defineCommand({
  name: "files",
  summary: "every file exported, newest first",
  options: { ...JSON_OPTION, ...CONFIG_OPTION },
  examples: ["kontobro export files"],
  run: ({ values }) =>
    withStore(values.config, async (db) => {
      const list = await listFiles(db, { limit: 1000 });
      if (values.json) {
        console.log(JSON.stringify(list, null, 2));
        return 0;
      }
      if (list.length === 0) console.log("No files exported yet.");
      for (const f of list) {
        const period = f.periodFrom || f.periodTo ? ` ${f.periodFrom ?? ""}..${f.periodTo ?? ""}` : "";
        console.log(
          `${String(f.id).padStart(5)}  ${new Date(f.createdAt).toISOString().slice(0, 16).replace("T", " ")}  ${f.fileName}  (${f.kind === "sie4" ? "SIE 4" : f.template}${period}, ${f.rowCount} rows, ${f.size} bytes, sha256 ${f.sha256.slice(0, 12)}…)`,
        );
      }
      return 0;
    }),
});

const download = defineCommand({
  name: "download",
  args: "ID",
  summary: "write a file again (to PATH, a folder, or standard output)",
  options: {
    out: { type: "string", value: "PATH|-", help: "a file, a folder, or - for standard output (default: its name, here)" },
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: [
    "kontobro export download 12",
    "kontobro export download 12 --out /srv/transfer/",
    ["kontobro export download 12 --out - | iconv -f cp437", "to standard output"],
  ],
  run: ({ values, positionals: [id], usage }) => {
    if (!/^\d+$/.test(id!)) {
      console.error(`file ids are whole numbers, not "${id}"\n\n${usage()}`);
      return 2;
    }
    return withStore(values.config, async (db) => {
      const f = await getFileBytes(db, Number(id));
      if (!f) {
        console.error(`No export file ${id}; \`kontobro export files\` lists them.`);
        return 1;
      }
      if (f.pruned) {
        const p = prunedFileProblem(f, Number(id));
        console.error(`${p.message}\n${p.hint}`);
        return 1;
      }
      const out = values.out;
      if (out === "-") {
        process.stdout.write(f.bytes);
        return 0;
      }
      const path = !out ? f.fileName : existsSync(out) && statSync(out).isDirectory() ? join(out, f.fileName) : out;
      writeFileSync(path, f.bytes);
      syncWritten(path);
      console.log(`wrote ${path} (${f.bytes.length} bytes)`);
      return 0;
    });
  },
});

const invoices = defineCommand({
  name: "invoices",
  summary: "invoices and credit notes with their export status",
  options: {
    status: { type: "string", value: "STATUS", help: `only those with this status: ${EXPORT_STATUSES.join(", ")}` },
    ...JSON_OPTION,
    ...CONFIG_OPTION,
  },
  examples: ["kontobro export invoices", "kontobro export invoices --status to_transfer"],
  run: ({ values, path }) => {
    const status = values.status as ExportStatus | undefined;
    if (status && !EXPORT_STATUSES.includes(status)) {
      console.error(`${path}: --status must be one of ${EXPORT_STATUSES.join(", ")} (see ${path} --help)`);
      return 2;
    }
    return withStore(values.config, async (db) => {
      const rows = await listInvoiceStatuses(db, { status, limit: 1000 });
      if (values.json) {
        console.log(JSON.stringify({ counts: await statusCounts(db), invoices: rows }, null, 2));
        return 0;
      }
      const counts = await statusCounts(db);
      console.log(EXPORT_STATUSES.map((s) => `${STATUS_LABELS[s]}: ${counts[s]}`).join(", "));
      for (const r of rows)
        console.log(
          `  ${r.number.padEnd(10)} ${r.kind === "credit_note" ? "credit note" : "invoice    "} ${r.date}  customer ${r.customerNumber}  ${r.status ? STATUS_LABELS[r.status] : "(no status)"}${r.exportFileId ? ` (file ${r.exportFileId})` : ""}`,
        );
      return 0;
    });
  },
});

const setStatus = defineCommand({
  name: "set-status",
  args: "NUMBER|FROM..TO STATUS",
  summary: "set the export status of an invoice, or of a range of invoice numbers",
  description:
    `STATUS is one of ${EXPORT_STATUSES.join(", ")}; credit notes count as invoices. A change that is\n` +
    'not allowed (e.g. from "do not transfer" to "transferred") is refused with the reason, and then nothing\n' +
    "changes, unless --skip-invalid changes the others.",
  options: {
    "skip-invalid": { type: "boolean", help: "change what may be changed, and list what was skipped" },
    ...JSON_OPTION,
    ...CONFIG_OPTION,
  },
  positionals: [2, 2],
  examples: [
    "kontobro export set-status 10001 do_not_transfer",
    ["kontobro export set-status 10001..10050 to_transfer --skip-invalid", "a range"],
  ],
  run: ({ values, positionals: [which, status] }) =>
    withStore(values.config, async (db) => {
      const r = await changeExportStatus(db, parseSelector(which!), status as ExportStatus, "cli", {
        skipInvalid: !!values["skip-invalid"],
      });
      if (values.json) {
        console.log(JSON.stringify(r, null, 2));
        return r.ok ? 0 : 1;
      }
      if (!r.ok) {
        printProblems(r.problems);
        return 1;
      }
      console.log(
        `${r.changed.length} invoice(s) set to "${STATUS_LABELS[r.status]}"${r.changed.length ? `: ${r.changed.join(", ")}` : ""}` +
          (r.unchanged.length ? `; ${r.unchanged.length} already had that status` : "") +
          ".",
      );
      printWarnings(r.skipped.map((s) => ({ ...s.problem, message: `skipped: ${s.problem.message}` })));
      return 0;
    }),
});

const templates = defineCommand({
  name: "templates",
  summary: "built-in and saved templates",
  options: { ...JSON_OPTION, ...CONFIG_OPTION },
  examples: ["kontobro export templates"],
  run: ({ values }) =>
    withStore(values.config, async (db) => {
      const list = await listTemplates(db);
      if (values.json) {
        console.log(JSON.stringify(list, null, 2));
        return 0;
      }
      for (const t of list) {
        console.log(
          `${t.name.padEnd(32)} ${DATA_TYPE_TITLES[t.dataType as DataType] ?? t.dataType}${t.builtin ? ", built in" : ""}${t.guessedColumns ? `, ${t.guessedColumns} guessed column(s)` : ""}${t.problems ? ", NEEDS FIXING (cannot be exported)" : ""}${t.title ? `\n  ${t.title}` : ""}`,
        );
        for (const p of t.problems?.slice(1) ?? []) console.log(`  ${p.message}${p.hint ? `\n    fix: ${p.hint}` : ""}`);
        if (t.problems) console.log(`  fix: ${t.problems[0]!.hint}`);
      }
      return 0;
    }),
});

const templateShow = defineCommand({
  name: "show",
  args: "NAME",
  summary: "a template as a file (to edit, or import elsewhere)",
  options: {
    out: { type: "string", value: "FILE", help: "write it to FILE (or into a folder) instead of standard output" },
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: ["kontobro export template show customer-list", "kontobro export template show customer-list --out kunder.json"],
  run: ({ values, positionals: [name] }) =>
    withStore(values.config, async (db) => {
      const found = await findTemplate(db, name!);
      if (!found.ok && !found.stored) {
        printProblems(found.problems);
        return 1;
      }
      // A saved template that needs fixing is shown as stored, to be fixed and imported again; what is wrong goes to stderr.
      if (!found.ok) printProblems(found.problems, "needs fixing");
      const t = found.ok ? found.template : (found.stored as Template);
      if (!values.out) {
        process.stdout.write(templateToFile(t));
        return 0;
      }
      const path = existsSync(values.out) && statSync(values.out).isDirectory() ? join(values.out, templateFileName(name!)) : values.out;
      writeFileSync(path, templateToFile(t));
      syncWritten(path);
      console.log(`wrote ${path}`);
      return 0;
    }),
});

const templateImport = defineCommand({
  name: "import",
  args: "FILE",
  summary: "save a template from a file",
  options: {
    replace: { type: "boolean", help: "replace a saved template of the same name" },
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: ["kontobro export template import kunder.json", "kontobro export template import kunder.json --replace"],
  run: ({ values, positionals: [file] }) =>
    withStore(values.config, async (db) => {
      const parsed = templateFromFile(readFileSync(file!, "utf8"));
      if (!parsed.ok) {
        printProblems(parsed.problems);
        console.error(`${file} was not imported.`);
        return 1;
      }
      const saved = await saveTemplate(db, parsed.template, { replace: !!values.replace });
      if (!saved.ok) {
        printProblems(saved.problems);
        return 1;
      }
      console.log(`${saved.created ? "saved" : "replaced"} template ${saved.template.name}`);
      return 0;
    }),
});

const templateTest = defineCommand({
  name: "test",
  args: "NAME|FILE",
  summary: "preview the first rows of a template (saved, or a file); stores nothing",
  options: {
    ...PERIOD_OPTIONS,
    rows: { type: "string", value: "N", help: "how many rows to show" },
    ...JSON_OPTION,
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: [
    "kontobro export template test kunder",
    ["kontobro export template test ./kunder.json --rows 5", "a file, before importing it"],
  ],
  run: ({ values, positionals: [target] }) =>
    withStore(values.config, async (db, settings) => {
      const fromFile = existsSync(target!) && statSync(target!).isFile();
      const found = fromFile ? templateFromFile(readFileSync(target!, "utf8")) : await findTemplate(db, target!);
      if (!found.ok) {
        printProblems(found.problems);
        return 1;
      }
      const rows = values.rows ? Number(values.rows) : undefined;
      const p = await previewTemplate(db, settings, found.template, { from: values.from, to: values.to, rows });
      if (values.json) {
        console.log(JSON.stringify(p, null, 2));
        return p.ok ? 0 : 1;
      }
      if (!p.ok) {
        printProblems(p.problems);
        return 1;
      }
      console.log(p.message);
      if (p.text) console.log(`\n${p.text.replace(/\r\n/g, "\n")}`);
      const guesses = p.columns.filter((c) => c.guess);
      if (guesses.length > 0) console.log(`Guessed columns: ${guesses.map((c) => c.header).join(", ")} (see the template's notes).`);
      printWarnings(p.warnings);
      return 0;
    }),
});

const templateDelete = defineCommand({
  name: "delete",
  args: "NAME",
  summary: "delete a saved template",
  options: { ...CONFIG_OPTION },
  positionals: [1, 1],
  examples: ["kontobro export template delete kunder"],
  run: ({ values, positionals: [name] }) =>
    withStore(values.config, async (db) => {
      const r = await deleteTemplate(db, name!);
      if (!r.ok) {
        printProblems(r.problems);
        return 1;
      }
      console.log(`deleted template ${name}`);
      return 0;
    }),
});

const template = defineGroup({
  name: "template",
  args: "show|import|test|delete ...",
  summary: "one template: show it as a file, import one, test one, delete one",
  subcommands: [templateShow, templateImport, templateTest, templateDelete],
});

const fields = defineCommand({
  name: "fields",
  args: "[DATA_TYPE]",
  summary: "the fields a template can use",
  options: { ...JSON_OPTION },
  positionals: [0, 1],
  examples: ["kontobro export fields", `kontobro export fields ${DATA_TYPES[0]}`],
  run({ values, positionals: [dataType], path }) {
    const types = dataType ? DATA_TYPES.filter((d) => d === dataType) : [...DATA_TYPES];
    if (types.length === 0) {
      console.error(`${path}: unknown data type "${dataType}"; use one of ${DATA_TYPES.join(", ")}`);
      return 2;
    }
    if (values.json) {
      console.log(JSON.stringify(Object.fromEntries(types.map((d) => [d, FIELDS[d]])), null, 2));
      return 0;
    }
    for (const d of types) {
      console.log(
        `${d} (${DATA_TYPE_TITLES[d]}; ${SELECTION[d] === "period" ? "by period: --from and --to" : SELECTION[d] === "to_transfer" ? "invoices to transfer" : "all records"})`,
      );
      for (const [name, spec] of Object.entries(FIELDS[d])) console.log(`  ${name.padEnd(26)} ${spec.type.padEnd(8)} ${spec.description}`);
    }
    return 0;
  },
});

export const exportCommand = defineGroup({
  ...listed("export"),
  description: "Works on the data directory directly, also while the agent runs. Every sub-command answers --help.",
  subcommands: [run, files, download, invoices, setStatus, templates, template, fields],
  examples: [
    "kontobro export run sie4",
    "kontobro export set-status 10001..10050 transferred",
    "kontobro export template test kunder --rows 5",
  ],
});
