// SIE 4I files for a set of invoices and credit notes: one file per financial year (a SIE file holds one
// #RAR year, and importers refuse vouchers outside it), each checked by our own reader before it is kept.
// Pure: the caller passes the time and the next serial number.
import type { Substitution } from "../../formats/encoding.ts";
import { invoicesToSieInput } from "../../formats/sie4/invoices.ts";
import { readSie } from "../../formats/sie4/reader.ts";
import { SieWriteError, writeSie4i } from "../../formats/sie4/writer.ts";
import type { Customer, InvoiceLike, Project } from "../model.ts";
import { problem, type Problem } from "../problem.ts";
import { VERSION } from "../version.ts";
import { fiscalYearOf, type ExportSettings } from "./config.ts";

export interface BuiltFile {
  fileName: string;
  format: "sie4i" | "csv";
  encoding: string;
  periodFrom: string | null;
  periodTo: string | null;
  bytes: Uint8Array;
  rowCount: number;
  /** Invoice numbers this file transfers. */
  invoices: string[];
}

export interface LeftOut {
  number: string;
  problems: Problem[];
}

export type SieBuild = { ok: true; files: BuiltFile[]; leftOut: LeftOut[]; warnings: Problem[] } | { ok: false; problems: Problem[] };

const FIELD_NAMES: [RegExp, string][] = [
  [/^companyName/, "company name"],
  [/^accounts\[\d+\]\.name/, "account name"],
  [/^dimensions\[\d+\]\.objects\[\d+\]\.name/, "project or customer name"],
  [/^dimensions\[\d+\]\.objects\[\d+\]\.id/, "project or customer number"],
  [/\.objects\[\d+\]\.id$/, "object id on a voucher row"],
  [/^vouchers\[\d+\]\.text/, "voucher text"],
  [/\.transactions\[\d+\]\.text$/, "voucher row text"],
];
const describeField = (field?: string) => FIELD_NAMES.find(([re]) => field && re.test(field))?.[1] ?? field ?? "a text";

/** One warning per distinct replacement, with a count and the first place: the user must see every change. */
export function substitutionWarnings(subs: Substitution[], fileName: string): Problem[] {
  const groups = new Map<string, Substitution[]>();
  for (const s of subs) {
    const key = `${s.char}\u0000${s.replacement}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return [...groups.values()].map((list) => {
    const s = list[0]!;
    const shown = s.reason === "control" ? "a tab or line break" : `"${s.char}" (${s.codePoint})`;
    return problem(
      "sie4.character_replaced",
      `${fileName}: ${shown} was written as "${s.replacement}" ${list.length} time(s), first in the ${describeField(s.field)} on line ${s.line}: SIE files use code page 437, which has no such character.`,
      "Nothing to do if the text is still clear; otherwise change the name or text in the PSA (or in exports.posting.account_names) and export again.",
      s.field,
    );
  });
}

/** The three passes over every invoice while its file is built; an export counts its progress in them. */
export const SIE_BUILD_STAGES = ["mapping invoices", "writing the file", "checking the file"] as const;
export type SieBuildStage = (typeof SIE_BUILD_STAGES)[number];

/** `progress` hears the stage and the passes done so far, over every file (at most three per invoice). */
export function buildSieFiles(
  invoices: InvoiceLike[],
  context: { customers: ReadonlyMap<string, Customer>; projects: ReadonlyMap<string, Project> },
  settings: ExportSettings,
  at: { now: Date; firstSerial: number },
  progress?: (stage: SieBuildStage, passes: number) => void,
): SieBuild {
  if (!settings.companyName) {
    return {
      ok: false,
      problems: [
        problem(
          "exports.company_name_missing",
          "SIE files must name the company (#FNAMN), and exports.company_name is not set.",
          'Add company_name = "Your Company AB" (and org_number) under [exports] in kontobro.toml, then restart kontobro.',
          "exports.company_name",
        ),
      ],
    };
  }
  const byYear = new Map<string, InvoiceLike[]>();
  for (const doc of invoices) {
    const year = fiscalYearOf(doc.date, settings.fiscalYearStart);
    const key = `${year.start}/${year.end}`;
    byYear.set(key, [...(byYear.get(key) ?? []), doc]);
  }
  const files: BuiltFile[] = [];
  const leftOut: LeftOut[] = [];
  const warnings: Problem[] = [];
  let serial = at.firstSerial;
  let passes = 0;
  const report = progress ? (stage: SieBuildStage) => (done: number) => progress(stage, passes + done) : () => undefined;
  for (const key of [...byYear.keys()].sort()) {
    const [start, end] = key.split("/") as [string, string];
    const docs = byYear.get(key)!;
    const { input, rejected } = invoicesToSieInput(
      docs,
      settings.posting,
      {
        program: "kontobro",
        programVersion: VERSION,
        generatedAt: at.now,
        companyName: settings.companyName,
        ...(settings.orgNumber ? { orgNumber: settings.orgNumber } : {}),
        fiscalYear: { start, end },
      },
      { customers: [...context.customers.values()], projects: [...context.projects.values()] },
      report("mapping invoices"),
    );
    passes += docs.length;
    leftOut.push(...rejected);
    if (input.vouchers.length === 0) continue;
    let written: ReturnType<typeof writeSie4i>;
    try {
      written = writeSie4i(input, {
        serial,
        lineEnding: settings.sie4.lineEnding,
        ksumma: settings.sie4.ksumma,
        progress: report("writing the file"),
      });
    } catch (e) {
      if (e instanceof SieWriteError) return { ok: false, problems: e.problems };
      throw e;
    }
    // Prove the file with the independent reader before anything is marked as transferred.
    passes += input.vouchers.length;
    const check = readSie(written.bytes, { progress: report("checking the file") });
    passes += input.vouchers.length;
    const errors = check.problems.filter((p) => p.severity === "error");
    if (errors.length > 0 || check.document.vouchers.length !== input.vouchers.length) {
      return {
        ok: false,
        problems: [
          problem(
            "exports.sie_self_check_failed",
            `kontobro's own SIE file did not pass validation: ${errors.map((p) => p.message).join("; ") || "voucher count differs"}.`,
            "Nothing was exported or marked. Please report this to support with the invoices concerned.",
          ),
        ],
      };
    }
    const exported = docs.filter((d) => !rejected.some((r) => r.number === d.number)).map((d) => d.number);
    const dates = docs
      .filter((d) => exported.includes(d.number))
      .map((d) => d.date)
      .sort();
    files.push({
      fileName: written.fileName,
      format: "sie4i",
      encoding: "cp437",
      periodFrom: dates[0]!,
      periodTo: dates[dates.length - 1]!,
      bytes: written.bytes,
      rowCount: input.vouchers.length,
      invoices: exported,
    });
    warnings.push(...substitutionWarnings(written.substitutions, written.fileName));
    serial++;
  }
  return { ok: true, files, leftOut, warnings };
}
