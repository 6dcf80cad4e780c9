// SIE 4 exports after the database went back in time (a backup restored, a reinstall on an old copy): the invoices
// exported since are "to transfer" again, while their file is still in the output folder, where the accounting
// system imports it. The next export must not hand the importer the same vouchers a second time, nor reuse a serial.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { runExport } from "../agent/exports/service.ts";
import { changeExportStatus } from "../agent/exports/status.ts";
import { saveTemplate } from "../agent/exports/templates-store.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { checkTemplate, Template } from "../formats/templates/definition.ts";
import { BASE, invoice, seed, settings, statusOf, testDb } from "./exports-fixtures.ts";

/** Invoice numbers per file in the folder, from the vouchers' texts ("Faktura 1001, kund 100"). */
function invoicesInFolder(out: string): Record<string, string[]> {
  const files: Record<string, string[]> = {};
  for (const name of readdirSync(out).sort())
    files[name] = readSie(new Uint8Array(readFileSync(join(out, name)))).document.vouchers.map((v) => /^\w+ (\S+),/.exec(v.text!)![1]!);
  return files;
}

describe("SIE 4 export after a restore of an older database", () => {
  test("invoices whose file is in the output folder but not in the database are not exported again; the serial goes on after the folder's", async () => {
    const { db, runner, dir } = testDb();
    const out = join(dir, "out");
    const s = settings({ output_dir: out });
    await seed(runner, [...BASE(), invoice(1001)]);
    const backup = join(dir, "backup.db");
    db.$client.run(`VACUUM INTO '${backup}'`);
    const first = await runExport(runner, s, { format: "sie4" }, { by: "cli", now: new Date("2026-03-20T10:00:00Z") });
    expect(first.ok && first.invoices.exported).toEqual(["1001"]);
    db.$client.close();

    // The backup (taken before that export) is put back; the PSA sends a new invoice.
    const restored = sqliteRunner(openDatabase(backup).$client);
    expect(await statusOf(restored, 1001)).toBe("to_transfer");
    await seed(restored, [invoice(1002)]);
    const again = await runExport(restored, s, { format: "sie4" }, { by: "cli", now: new Date("2026-03-21T10:00:00Z") });
    // Before: the second file held 1001 again (the importer booked it twice) and reused serial 1.
    expect(Object.values(invoicesInFolder(out)).flat().sort()).toEqual(["1001"]);
    expect(again.ok).toBe(false);
    const problem = !again.ok ? again.problems[0]! : undefined;
    expect(problem?.code).toBe("exports.output_dir_has_unknown_file");
    expect(problem?.message).toContain("SIE4I_5566778899_20260320100000_1.SI");
    expect(problem?.message).toContain("1001");
    expect(problem?.hint).toContain("set-status 1001 transferred");
    expect(problem?.hint).toContain("If the accounting system has imported");

    // The importer sets #FLAGGA 1 once it has read a file: then the refusal says so.
    const path = join(out, "SIE4I_5566778899_20260320100000_1.SI");
    writeFileSync(path, readFileSync(path).toString("latin1").replace("#FLAGGA 0", "#FLAGGA 1"), "latin1");
    const read = await runExport(restored, s, { format: "sie4" }, { by: "cli", now: new Date("2026-03-21T11:00:00Z") });
    expect(!read.ok && read.problems[0]!.hint).toStartWith(
      "The accounting system has read SIE4I_5566778899_20260320100000_1.SI (its #FLAGGA is 1)",
    );
    expect(await statusOf(restored, 1002)).toBe("to_transfer");

    // Told so, the user marks 1001 transferred (the accounting system has it): the next export takes 1002 only, serial 2.
    expect((await changeExportStatus(restored, { number: "1001" }, "transferred", "cli")).ok).toBe(true);
    const third = await runExport(restored, s, { format: "sie4" }, { by: "cli", now: new Date("2026-03-22T10:00:00Z") });
    expect(third.ok && third.invoices.exported).toEqual(["1002"]);
    expect(invoicesInFolder(out)).toEqual({
      "SIE4I_5566778899_20260320100000_1.SI": ["1001"],
      "SIE4I_5566778899_20260322100000_2.SI": ["1002"],
    });
  });
});

/** The cells of column `col` (0-based) of each line of a template file in the folder, header row skipped when `header`. */
function columnInFolder(out: string, col: number, header: boolean, encoding: BufferEncoding): Record<string, string[]> {
  const files: Record<string, string[]> = {};
  for (const name of readdirSync(out).sort()) {
    const lines = readFileSync(join(out, name))
      .toString(encoding)
      .replace(/^\uFEFF/, "")
      .split(/\r?\n/)
      .filter(Boolean);
    files[name] = [...new Set(lines.slice(header ? 1 : 0).map((l) => l.split(";")[col]!))];
  }
  return files;
}

describe("template export after a restore of an older database", () => {
  test("xledger-ar10: invoices whose file is in the output folder but not in the database are not exported again", async () => {
    const { db, runner, dir } = testDb();
    const out = join(dir, "out");
    const s = settings({ output_dir: out });
    await seed(runner, [...BASE(), invoice(1001)]);
    const backup = join(dir, "backup.db");
    db.$client.run(`VACUUM INTO '${backup}'`);
    const ar10 = { format: "template", template: "xledger-ar10" } as const;
    const first = await runExport(runner, s, ar10, { by: "cli", now: new Date("2026-03-20T10:00:00Z") });
    expect(first.ok && first.invoices.exported).toEqual(["1001"]);
    db.$client.close();

    const restored = sqliteRunner(openDatabase(backup).$client);
    expect(await statusOf(restored, 1001)).toBe("to_transfer");
    await seed(restored, [invoice(1002)]);
    const again = await runExport(restored, s, ar10, { by: "cli", now: new Date("2026-03-21T10:00:00Z") });
    // Before: AR10_20260321_1.csv held 1001 again beside 1002 (the importer booked 1001 twice).
    expect(columnInFolder(out, 1, false, "latin1")).toEqual({ "AR10_20260320_1.csv": ["1001"] });
    expect(again.ok).toBe(false);
    const problem = !again.ok ? again.problems[0]! : undefined;
    expect(problem?.code).toBe("exports.output_dir_has_unknown_file");
    expect(problem?.message).toContain("AR10_20260320_1.csv");
    expect(problem?.message).toContain(": 1001.");
    expect(problem?.hint).toContain("set-status 1001 transferred");
    expect(await statusOf(restored, 1002)).toBe("to_transfer");

    expect((await changeExportStatus(restored, { number: "1001" }, "transferred", "cli")).ok).toBe(true);
    const third = await runExport(restored, s, ar10, { by: "cli", now: new Date("2026-03-22T10:00:00Z") });
    expect(third.ok && third.invoices.exported).toEqual(["1002"]);
    expect(columnInFolder(out, 1, false, "latin1")).toEqual({ "AR10_20260320_1.csv": ["1001"], "AR10_20260322_1.csv": ["1002"] });
  });

  test("an invoice-journal file found stops an SIE export of the invoices it holds", async () => {
    const { db, runner, dir } = testDb();
    const out = join(dir, "out");
    const s = settings({ output_dir: out });
    await seed(runner, [...BASE(), invoice(1001), invoice(1002)]);
    const backup = join(dir, "backup.db");
    db.$client.run(`VACUUM INTO '${backup}'`);
    const journal = { format: "template", template: "invoice-journal" } as const;
    const first = await runExport(runner, s, journal, { by: "cli", now: new Date("2026-03-20T10:00:00Z") });
    expect(first.ok && first.invoices.exported).toEqual(["1001", "1002"]);
    db.$client.close();

    const restored = sqliteRunner(openDatabase(backup).$client);
    const sie = await runExport(restored, s, { format: "sie4" }, { by: "cli", now: new Date("2026-03-21T10:00:00Z") });
    // Before: an SIE file with 1001 and 1002 was written beside the journal that holds them.
    expect(readdirSync(out)).toEqual(["invoice-journal_20260320_1.csv"]);
    const problems = !sie.ok ? sie.problems : [];
    expect(problems.map((p) => p.code)).toEqual(["exports.output_dir_has_unknown_file"]);
    expect(problems[0]?.message).toStartWith("invoice-journal_20260320_1.csv in ");
    expect(problems[0]?.message).toContain('"to transfer" again: 1001, 1002.');
  });

  test("a saved template (quoted cells, header, number not first) is read back; an SIE file found stops a template export", async () => {
    const { db, runner, dir } = testDb();
    const out = join(dir, "out");
    const s = settings({ output_dir: out });
    await seed(runner, [...BASE(), invoice(1001), invoice(1002)]);
    const mine = {
      name: "bilag",
      dataType: "invoices",
      delimiter: ",",
      encoding: "windows-1252",
      quote: "all",
      fileName: "bilag-{run}.txt",
      columns: [
        { header: "Kunde", field: "customerName" },
        { header: "Beløp", field: "grossAmount", decimalSeparator: "," },
        { header: "Faktura", field: "number" },
      ],
    };
    expect((await saveTemplate(runner, mine)).ok).toBe(true);
    const backup = join(dir, "backup.db");
    db.$client.run(`VACUUM INTO '${backup}'`);
    const first = await runExport(
      runner,
      s,
      { format: "template", template: "bilag" },
      { by: "cli", now: new Date("2026-03-20T10:00:00Z") },
    );
    expect(first.ok && first.invoices.exported).toEqual(["1001", "1002"]);
    db.$client.close();

    const restored = sqliteRunner(openDatabase(backup).$client);
    expect((await changeExportStatus(restored, { number: "1002" }, "transferred", "cli")).ok).toBe(true);
    const journal = await runExport(
      restored,
      s,
      { format: "template", template: "invoice-journal" },
      { by: "cli", now: new Date("2026-03-21T10:00:00Z") },
    );
    expect(readdirSync(out)).toEqual(["bilag-1.txt"]);
    expect(!journal.ok && journal.problems.map((p) => p.message.replace(/ in .* is not/, " is not").split(". Exporting")[0])).toEqual([
      'bilag-1.txt is not in kontobro\'s database (the database is older than the folder: a backup restored?), and it holds 1 invoice(s) that are "to transfer" again: 1001',
    ]);

    // The file is moved away (never imported): an SIE export takes 1001; after another restore its file stops the template.
    renameSync(join(out, "bilag-1.txt"), join(dir, "bilag-1.txt"));
    const sieBackup = join(dir, "backup-2.db");
    restored.run(`VACUUM INTO '${sieBackup}'`);
    const sie = await runExport(restored, s, { format: "sie4" }, { by: "cli", now: new Date("2026-03-22T10:00:00Z") });
    expect(sie.ok && sie.invoices.exported).toEqual(["1001"]);
    const again = sqliteRunner(openDatabase(sieBackup).$client);
    const bilag = await runExport(
      again,
      s,
      { format: "template", template: "bilag" },
      { by: "cli", now: new Date("2026-03-23T10:00:00Z") },
    );
    expect(readdirSync(out)).toEqual(["SIE4I_5566778899_20260322100000_1.SI"]);
    expect(!bilag.ok && bilag.problems[0]!.message).toStartWith("SIE4I_5566778899_20260322100000_1.SI in ");
  });

  test("a file of a saved template this version's checks refuse (saved and run by an earlier version) still stops an SIE export", async () => {
    const { runner, dir } = testDb();
    const out = join(dir, "out");
    mkdirSync(out);
    await seed(runner, [...BASE(), invoice(1001), invoice(1002)]);
    // As the earlier version stored it (017b49e refuses the column's decimal separator "," with delimiter "," never quoted)…
    const old = Template.parse({
      name: "old-comma",
      dataType: "invoices",
      delimiter: ",",
      quote: "never",
      fileName: "old-comma_{run}.csv",
      columns: [
        { header: "Number", field: "number" },
        { header: "Gross", field: "grossAmount", decimalSeparator: "," },
      ],
    });
    expect(checkTemplate(old).map((p) => p.code)).toEqual(["template.delimiter_clash"]);
    await runner.run(
      `INSERT INTO export_templates (name, data_type, definition, created_at, updated_at) VALUES (?1, ?2, ?3, 1, 1)`,
      old.name,
      old.dataType,
      JSON.stringify(old),
    );
    // … and the file it wrote then, in the folder; the database (a backup restored) does not know it.
    writeFileSync(join(out, "old-comma_7.csv"), "Number,Gross\r\n1001,11736 56\r\n");
    const sie = await runExport(runner, settings({ output_dir: out }), { format: "sie4" }, { by: "cli" });
    // Before: the template was passed over as invalid, its file not read, and 1001 went into the SIE file a second time.
    expect(sie.ok).toBe(false);
    expect(!sie.ok && sie.problems.map((p) => [p.code, p.message.includes("old-comma_7.csv"), p.message.includes(": 1001.")])).toEqual([
      ["exports.output_dir_has_unknown_file", true, true],
    ]);
    expect(await statusOf(runner, 1001)).toBe("to_transfer");
  });
});
