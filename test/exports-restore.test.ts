// SIE 4 exports after the database went back in time (a backup restored, a reinstall on an old copy): the invoices
// exported since are "to transfer" again, while their file is still in the output folder, where the accounting
// system imports it. The next export must not hand the importer the same vouchers a second time, nor reuse a serial.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { runExport } from "../agent/exports/service.ts";
import { changeExportStatus } from "../agent/exports/status.ts";
import { readSie } from "../formats/sie4/reader.ts";
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
