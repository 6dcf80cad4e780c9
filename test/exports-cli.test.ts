// `kontobro export …` run as a user would, in a temporary folder with its own kontobro.toml.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseSelector } from "../agent/cli/export.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { BASE, creditNote, invoice, timeRecord } from "./exports-fixtures.ts";
import { tempDir } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
let cwd: string;

async function cli(...args: string[]) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, KONTOBRO_CONFIG: "" },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { out, err, code };
}

beforeAll(async () => {
  cwd = tempDir("kontobro-export-cli-");
  writeFileSync(join(cwd, "kontobro.toml"), `[exports]\ncompany_name = "CLI-bolaget AB"\norg_number = "556000-2222"\n`, { mode: 0o600 });
  writeFileSync(
    join(cwd, "events.json"),
    JSON.stringify([
      ...BASE(),
      invoice(7001),
      invoice(7002),
      invoice(7003),
      creditNote(7004, 7001),
      timeRecord("T1", "2026-03-02", 7, 7.5),
      timeRecord("T2", "2026-03-16", 7, 4),
    ]),
  );
  expect((await cli("enqueue", "events.json")).code).toBe(0);
});

describe("kontobro export", () => {
  test("help, and usage errors exit 2", async () => {
    const help = await cli("export");
    expect(help.code).toBe(2);
    for (const sub of [
      "run sie4|TEMPLATE",
      "files",
      "download ID",
      "invoices",
      "set-status",
      "templates",
      "template show",
      "template import",
      "template test",
    ])
      expect(help.out).toContain(sub);
    expect((await cli("export", "frobnicate")).code).toBe(2);
    expect((await cli("export", "set-status", "7001")).code).toBe(2);
    expect((await cli("--help")).out).toContain("  export ...");
  });

  test("set-status for one invoice and a range; an invalid transition explains itself and exits 1", async () => {
    expect((await cli("export", "set-status", "7003", "do_not_transfer")).out).toContain('1 invoice(s) set to "Do not transfer": 7003.');
    const refused = await cli("export", "set-status", "7002..7003", "transferred");
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('Invoice 7003 is marked "do not transfer"');
    expect(refused.err).toContain("fix: ");
    const skipped = await cli("export", "set-status", "7002-7003", "transferred", "--skip-invalid");
    expect(skipped.out).toContain('1 invoice(s) set to "Transferred": 7002.');
    expect(skipped.out).toContain("warning: skipped: Invoice 7003");
    expect((await cli("export", "set-status", "7002", "to_transfer")).code).toBe(0);
    expect((await cli("export", "invoices", "--status", "to_transfer")).out).toMatch(
      /To transfer: 3, Transferred: 0, Do not transfer: 1\n\s+7004/,
    );
    expect((await cli("export", "set-status", "8000", "to_transfer")).err).toContain("No invoice 8000");
  });

  test("run sie4, list the files, download one again to a file and to standard output", async () => {
    const run = await cli("export", "run", "sie4");
    expect(run.code).toBe(0);
    expect(run.out).toContain("3 invoice(s) marked as transferred");
    const id = /file (\d+): (SIE4I_5560002222_\d{14}_1\.SI)/.exec(run.out)!;
    expect((await cli("export", "files")).out).toContain(id[2]!);
    expect((await cli("export", "download", id[1]!, "--out", "copy.si")).out).toContain("wrote copy.si");
    const doc = readSie(new Uint8Array(readFileSync(join(cwd, "copy.si"))));
    expect(doc.ok).toBe(true);
    expect(doc.document.vouchers.map((v) => v.text)).toEqual([
      "Faktura 7001, kund 100",
      "Faktura 7002, kund 100",
      "Kreditnota 7004 avser faktura 7001",
    ]);
    const piped = Bun.spawnSync([process.execPath, MAIN, "export", "download", id[1]!, "--out", "-"], {
      cwd,
      env: { ...process.env, KONTOBRO_CONFIG: "" },
    });
    expect(Buffer.compare(piped.stdout, readFileSync(join(cwd, "copy.si")))).toBe(0);
    expect((await cli("export", "run", "sie4")).out).toContain("No invoices to transfer.");
    expect((await cli("export", "download", "999")).code).toBe(1);
  });

  test("period exports print that rows repeat, and name the overlap", async () => {
    const first = await cli("export", "run", "hours-per-employee", "--from", "2026-03-01", "--to", "2026-03-15");
    expect(first.out).toContain("warning: Time records carry no exported flag");
    const second = await cli("export", "run", "hours-per-employee", "--from", "2026-03-10", "--to", "2026-03-31");
    expect(second.out).toContain("warning: Time records from 2026-03-10 to 2026-03-15 were already exported");
    const missing = await cli("export", "run", "hours-per-employee");
    expect([missing.code, missing.err.split("\n")[0]]).toEqual([
      1,
      "error: Time records (grouped) are exported by period: give both from and to.",
    ]);
  });

  test("templates: show to a file, import a changed copy, test it, run it, delete it; a broken file is refused with fields", async () => {
    expect((await cli("export", "templates")).out).toContain(
      "xledger-ar10                     Invoices grouped by account, built in, 12 guessed column(s)",
    );
    expect((await cli("export", "template", "show", "customer-list", "--out", "t.json")).out).toContain("wrote t.json");
    const file = JSON.parse(readFileSync(join(cwd, "t.json"), "utf8"));
    file.template.name = "kunder";
    file.template.encoding = "iso-8859-1";
    file.template.columns = file.template.columns.slice(0, 2);
    writeFileSync(join(cwd, "kunder.json"), JSON.stringify(file));
    expect((await cli("export", "template", "import", "kunder.json")).out).toContain("saved template kunder");
    expect((await cli("export", "template", "import", "kunder.json")).code).toBe(1);
    expect((await cli("export", "template", "import", "kunder.json", "--replace")).out).toContain("replaced template kunder");
    const preview = await cli("export", "template", "test", "kunder");
    expect(preview.out).toContain("The first 1 of 1 row(s)");
    expect(preview.out).toContain(`Number;Name\n100;"Bølgen ""Nord"" {AS}`);
    expect(preview.out).toContain("€ → EUR");
    const run = await cli("export", "run", "kunder");
    expect(run.out).toMatch(/file \d+: kunder_\d{8}_\d+\.csv/);
    file.template.columns = [{ header: "x", field: "nam" }];
    writeFileSync(join(cwd, "broken.json"), JSON.stringify(file));
    const broken = await cli("export", "template", "import", "broken.json");
    expect(broken.code).toBe(1);
    expect(broken.err).toContain('template.columns.0.field: "nam" is not a field of Customers.');
    expect((await cli("export", "template", "test", "broken.json")).err).toContain("template.columns.0.field");
    expect((await cli("export", "template", "delete", "kunder")).out).toContain("deleted template kunder");
    expect((await cli("export", "fields", "time_records_grouped")).out).toContain("billableHours");
  });

  test("selectors", () => {
    expect(parseSelector("10001..10050")).toEqual({ from: "10001", to: "10050" });
    expect(parseSelector("10001-10050")).toEqual({ from: "10001", to: "10050" });
    expect(parseSelector("A-7")).toEqual({ number: "A-7" });
  });
});
