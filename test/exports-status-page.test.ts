// The status page's list of export files says which files are not yet in the output folder (a folder that cannot be
// written): such a file waits in the database until the next export or start, and nobody should think it arrived.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runExport } from "../agent/exports/service.ts";
import type { StatusContext } from "../agent/http/context.ts";
import { renderExportsSection } from "../agent/http/status-exports.ts";
import { BASE, invoice, seed, settings, testDb } from "./exports-fixtures.ts";

describe("status page: export files and the output folder", () => {
  test("a file the output folder did not take is marked so; one written there is not", async () => {
    const { runner, dir } = testDb();
    // A file where the folder should be: the folder cannot be made (as root too, unlike a read-only folder).
    writeFileSync(join(dir, "blocked"), "");
    await seed(runner, [...BASE(), invoice(1001)]);
    const written = await runExport(runner, settings({ output_dir: join(dir, "out") }), { format: "sie4" }, { by: "cli" });
    expect(written.ok && written.warnings).toEqual([]);
    await seed(runner, [invoice(1002)]);
    const failed = await runExport(runner, settings({ output_dir: join(dir, "blocked", "out") }), { format: "sie4" }, { by: "cli" });
    expect(failed.ok && failed.warnings.map((w) => w.code)).toContain("exports.output_dir_unwritable");
    const page = String(await renderExportsSection({ runner, base: "", exports: { uiActions: true } } as unknown as StatusContext));
    const row = (id: number) => new RegExp(`<tr data-file="${id}">[\\s\\S]*?</tr>`).exec(page)![0];
    const [waiting, delivered] = [failed.ok ? failed.files[0]!.id : 0, written.ok ? written.files[0]!.id : 0];
    // Before: both rows looked the same; the waiting file was only in the first export's warnings.
    expect(row(waiting)).toContain("not yet in the output folder");
    expect(row(delivered)).not.toContain("not yet in the output folder");
  });
});
