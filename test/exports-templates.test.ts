// Template exports on a real SQLite file and a tenant on a real PostgreSQL server: stored templates, invoice
// marking, periods and their overlaps, "test template" (preview), and a non-UTF-8 file end to end.
import { beforeEach, describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { previewTemplate } from "../agent/exports/preview.ts";
import { runExport } from "../agent/exports/service.ts";
import { getFileBytes } from "../agent/exports/store.ts";
import { deleteTemplate, findTemplate, listTemplates, saveTemplate } from "../agent/exports/templates-store.ts";
import { toEncodable } from "../formats/encoding.ts";
import { AWKWARD, BASE, claim, count, creditNote, invoice, seed, settings, statusOf, timeRecord, user } from "./exports-fixtures.ts";
import { type Engine, workerEngines } from "./engines.ts";

const storages = workerEngines("template exports");

describe.each(storages.engines)("on %s", (engine: Engine) => {
  let db: SqlRunner;
  const s = settings();
  const text = async (fileId: number, encoding: "utf-8" | "windows-1252" = "utf-8") =>
    new TextDecoder(encoding).decode((await getFileBytes(db, fileId))!.bytes);
  const run = async (template: string, from?: string, to?: string) => {
    const r = await runExport(
      db,
      s,
      { format: "template", template, ...(from ? { from } : {}), ...(to ? { to } : {}) },
      { by: "api", now: new Date("2026-04-02T09:00:00Z") },
    );
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    return r;
  };

  beforeEach(async () => {
    db = (await storages.open(engine)).storage;
    await seed(db, [
      ...BASE(),
      user(9, "Ola Nordmann", "E9"),
      invoice(1001),
      invoice(1002, { currency: "NOK" }),
      creditNote(1003, 1001),
      timeRecord("T1", "2026-03-02", 7, 7.5),
      timeRecord("T2", "2026-03-03", 7, 2.25, { billable: false }),
      timeRecord("T3", "2026-03-03", 9, 8),
      timeRecord("T4", "2026-03-20", 7, 4, { approved: false }),
      timeRecord("T5", "2026-03-31", 8, 6),
      timeRecord("T6", "2026-04-01", 7, 1),
      claim("EC1", "2026-03-05", 7, [
        { text: "Taxi; flyplass", amount: 45000, vatAmount: 4821, account: "7140", vatCode: "1" },
        { text: "Hotell", amount: 120000, vatAmount: 12857, account: "7130" },
      ]),
      claim("EC2", "2026-03-25", 9, [{ text: "Parkering", amount: 9000, projectNumber: undefined }], { projectNumber: undefined }),
    ]);
  });

  describe("stored templates", () => {
    const mine = {
      name: "lonn",
      title: "Timer til lønn",
      dataType: "time_records",
      delimiter: ",",
      encoding: "windows-1252",
      decimalSeparator: ",",
      quote: "as_needed",
      columns: [
        { header: "Ansatt", field: "externalEmployeeNumber" },
        { header: "Navn", field: "personName" },
        { header: "Dato", field: "date", dateFormat: "dd.MM.yyyy" },
        { header: "Timer", field: "hours", decimals: 1 },
        { header: "Fakturerbar", field: "billable", trueText: "J", falseText: "N" },
        { header: "Valuta", value: "€" },
      ],
      filters: [{ field: "approved", op: "eq", value: true }],
    };

    test("save, refuse duplicates and built-in names, replace, list, delete", async () => {
      expect(await saveTemplate(db, mine)).toMatchObject({ ok: true, created: true });
      expect(await saveTemplate(db, mine)).toMatchObject({ ok: false, httpStatus: 409 });
      expect(await saveTemplate(db, { ...mine, name: "xledger-ar10" })).toMatchObject({
        ok: false,
        httpStatus: 409,
        problems: [{ code: "template.builtin_name" }],
      });
      expect(await saveTemplate(db, { ...mine, title: "v2" }, { replace: true })).toMatchObject({ ok: true, created: false });
      expect((await listTemplates(db)).filter((t) => !t.builtin).map((t) => [t.name, t.title, t.dataType])).toEqual([
        ["lonn", "v2", "time_records"],
      ]);
      expect(await findTemplate(db, "lonn")).toMatchObject({ ok: true, builtin: false });
      expect(await deleteTemplate(db, "xledger-ar10")).toMatchObject({ ok: false, httpStatus: 409 });
      expect(await deleteTemplate(db, "lonn")).toEqual({ ok: true });
      expect(await findTemplate(db, "lonn")).toMatchObject({ ok: false, httpStatus: 404 });
    });

    test("an invalid template is refused with field-level problems and nothing is stored", async () => {
      const r = await saveTemplate(db, {
        ...mine,
        columns: [
          { header: "x", field: "wage" },
          { header: "y", field: "date", decimals: 2 },
        ],
      });
      expect(!r.ok && r.problems.map((p) => [p.field, p.code])).toEqual([
        ["columns.0.field", "template.unknown_field"],
        ["columns.1.decimals", "template.format_not_applicable"],
      ]);
      expect(await count(db, `SELECT count(*) AS n FROM export_templates`)).toBe(0);
    });

    test("a windows-1252 file: formats, filters and the period, byte for byte", async () => {
      await saveTemplate(db, mine);
      const r = await run("lonn", "2026-03-01", "2026-03-31");
      const bytes = (await getFileBytes(db, r.files[0]!.id))!.bytes;
      expect(bytes.includes(0xc3)).toBe(false); // no UTF-8 sequences
      expect(bytes[bytes.indexOf(0x80)]).toBe(0x80); // € is one byte in windows-1252
      expect(await text(r.files[0]!.id, "windows-1252")).toBe(
        'Ansatt,Navn,Dato,Timer,Fakturerbar,Valuta\r\nE7,Åse Øvrebø,02.03.2026,"7,5",J,€\r\nE7,Åse Øvrebø,03.03.2026,"2,3",N,€\r\nE9,Ola Nordmann,03.03.2026,"8,0",J,€\r\n,Per Uten Nummer,31.03.2026,"6,0",J,€\r\n',
      );
    });
  });

  describe("invoice templates mark what they export", () => {
    test("a filter decides which invoices go; only those are marked transferred", async () => {
      await saveTemplate(db, {
        name: "sek",
        dataType: "invoices",
        columns: [
          { header: "No", field: "number" },
          { header: "Gross", field: "grossAmount" },
        ],
        filters: [{ field: "currency", op: "eq", value: "SEK" }],
      });
      const r = await run("sek");
      expect(await text(r.files[0]!.id)).toBe("No;Gross\r\n1001;11754.56\r\n1003;-1500.00\r\n");
      expect(r.invoices.exported).toEqual(["1001", "1003"]);
      expect(await Promise.all([1001, 1002, 1003].map((n) => statusOf(db, n)))).toEqual(["transferred", "to_transfer", "transferred"]);
      expect(await run("sek")).toMatchObject({ files: [], message: "Nothing to export: no invoices pass the template's filters." });
    });

    test("Xledger AR10: one balanced line per voucher row, ISO 8859-1, quotes kept out", async () => {
      const r = await run("xledger-ar10");
      const lines = (await text(r.files[0]!.id, "windows-1252")).trimEnd().split("\r\n");
      expect(r.invoices.exported).toEqual(["1001", "1002", "1003"]); // a CSV may mix currencies: NOK 1002 goes too
      expect(lines.every((l) => l.split(";").length === 29 && l.startsWith("GBAT10;"))).toBe(true);
      const cents = (l: string) => Math.round(Number(l.split(";")[8]) * 100);
      for (const n of ["1001", "1002", "1003"])
        expect(lines.filter((l) => l.split(";")[1] === n).reduce((sum, l) => sum + cents(l), 0)).toBe(0);
      expect(lines[0]!.split(";").slice(2, 10)).toEqual(["20260310", "", "03", "2026", "1510", "", "11754.56", "100"]);
      // Transliterated first (€ → EUR, – → -), then cut to the column's 30 characters, quotes replaced (never quoted).
      expect(lines[0]!.split(";")[11]).toBe([...toEncodable(AWKWARD, "iso-8859-1").text].slice(0, 30).join("").replaceAll('"', "'"));
      expect(lines[0]!.split(";")[11]).toBe("Bølgen 'Nord' {AS} \\ 100 EUR -");
      expect(r.warnings.map((w) => w.code).sort()).toEqual([
        "template.characters_replaced",
        "template.delimiter_in_value",
        "template.value_truncated",
      ]);
    });

    test("customers are exported whole: no marking, and a period is ignored with a warning", async () => {
      const r = await run("customer-list", "2026-01-01", "2026-01-31");
      expect((await text(r.files[0]!.id)).replace(/^\ufeff/, "").split("\r\n")[0]).toBe(
        "Number;Name;Org. no.;Street;Postal code;City;Country;E-mail;Currency",
      );
      expect(r.warnings.map((w) => w.code)).toEqual(["exports.period_ignored"]);
      expect(await statusOf(db, 1001)).toBe("to_transfer");
    });
  });

  describe("periods: time records and claims carry no exported flag", () => {
    test("grouped hours; every period export says rows repeat; an overlap names the earlier export", async () => {
      const march = await run("hours-per-employee", "2026-03-01", "2026-03-31");
      expect(await text(march.files[0]!.id)).toBe(
        "Employee no.;Name;Project;Activity;Hours;Billable hours;From;To\r\nE7;Åse Øvrebø;P-1;Utvikling;9,75;7,50;2026-03-01;2026-03-31\r\nE9;Ola Nordmann;P-1;Utvikling;8,00;8,00;2026-03-01;2026-03-31\r\n",
      );
      expect(march.warnings.map((w) => w.code)).toEqual(["exports.no_exported_flag"]);
      expect(march.warnings[0]!.message).toContain("exporting an overlapping period again repeats those rows");

      const april = await run("hours-per-employee", "2026-04-01", "2026-04-30");
      expect(april.warnings.map((w) => w.code)).toEqual(["exports.no_exported_flag"]);

      const overlap = await run("hours-per-employee", "2026-03-15", "2026-04-15");
      const w = overlap.warnings.filter((x) => x.code === "exports.period_overlap");
      expect(w).toHaveLength(2);
      expect(w[0]!.message).toContain(
        `Time records from 2026-03-15 to 2026-03-31 were already exported on 2026-04-02 (export ${march.runId}, template hours-per-employee: ${march.files[0]!.fileName} (file ${march.files[0]!.id}))`,
      );
      expect(w[1]!.message).toContain("from 2026-04-01 to 2026-04-15");
      // The ungrouped data type reads the same time records, so it overlaps too.
      await saveTemplate(db, { name: "raw", dataType: "time_records", columns: [{ header: "Id", field: "id" }] });
      expect((await run("raw", "2026-03-31", "2026-03-31")).warnings.filter((x) => x.code === "exports.period_overlap")).toHaveLength(2);
    });

    test("expense claims by the claim's date, in the Visma Document Center layout; an overlap is reported", async () => {
      const r = await run("visma-document-center-expenses", "2026-03-01", "2026-03-31");
      const lines = (await text(r.files[0]!.id)).trimEnd().split("\r\n");
      expect(lines[0]!.startsWith('"JNo";"EntNo";"WfId";"Sup";"actor.Nm";"AcNo"')).toBe(true);
      expect(lines.slice(1)).toEqual([
        'EC1;1;;E7;Åse Øvrebø;7140;EC1;20260305;20260305;;"Taxi; flyplass";NOK;100;450.00;450.00;;P-1;;;401.79;48.21;;1;;;EC1',
        "EC1;2;;E7;Åse Øvrebø;7130;EC1;20260305;20260305;;Hotell;NOK;100;1200.00;1200.00;;P-1;;;1071.43;128.57;;;;;EC1",
      ]); // EC2 has no project: left out by the template's filter, as Moment skips such rows
      expect((await run("visma-document-center-expenses", "2026-03-05", "2026-03-05")).warnings.map((x) => x.code)).toEqual([
        "exports.no_exported_flag",
        "exports.period_overlap",
      ]);
    });

    test("a period is required, and must be a real, non-empty range", async () => {
      const missing = await runExport(db, s, { format: "template", template: "hours-per-employee", from: "2026-03-01" }, { by: "api" });
      expect(!missing.ok && missing.problems[0]).toMatchObject({ code: "exports.period_required", field: "to" });
      const bad = await runExport(
        db,
        s,
        { format: "template", template: "hours-per-employee", from: "2026-02-30", to: "2026-01-01" },
        { by: "api" },
      );
      expect(!bad.ok && bad.problems.map((p) => p.code)).toEqual(["exports.bad_date"]);
      const reversed = await runExport(
        db,
        s,
        { format: "template", template: "hours-per-employee", from: "2026-03-31", to: "2026-03-01" },
        { by: "api" },
      );
      expect(!reversed.ok && reversed.problems[0]!.code).toBe("exports.bad_period");
      expect(await runExport(db, s, { format: "template", template: "nope" }, { by: "api" })).toMatchObject({ ok: false, httpStatus: 404 });
    });
  });

  describe("test template (preview)", () => {
    test("shows the first rows as the file will have them, and stores or marks nothing", async () => {
      const p = await previewTemplate(
        db,
        s,
        (await findTemplate(db, "invoice-journal")).ok ? ((await findTemplate(db, "invoice-journal")) as any).template : null,
        { rows: 1 },
      );
      if (!p.ok) throw new Error("refused");
      expect(p.header).toEqual([
        "Number",
        "Type",
        "Date",
        "Due",
        "Customer no.",
        "Customer",
        "Project",
        "Currency",
        "Net",
        "VAT",
        "Gross",
        "KID",
      ]);
      expect(p.rows).toHaveLength(1);
      expect(p.rows[0]!.slice(0, 3)).toEqual(["1001", "invoice", "10.03.2026"]);
      expect(p.totalRows).toBe(3);
      expect(p.message).toContain("The first 1 of 3 row(s)");
      expect(p.text.split("\r\n")[0]).toBe("Number;Type;Date;Due;Customer no.;Customer;Project;Currency;Net;VAT;Gross;KID");
      expect((await count(db, `SELECT count(*) AS n FROM export_runs`)) + (await count(db, `SELECT count(*) AS n FROM export_files`))).toBe(
        0,
      );
      expect(await statusOf(db, 1001)).toBe("to_transfer");
      const ar10 = await previewTemplate(db, s, ((await findTemplate(db, "xledger-ar10")) as any).template, {});
      expect(ar10.ok && ar10.columns.filter((c) => c.guess).length).toBe(12);
      const none = await previewTemplate(db, s, ((await findTemplate(db, "hours-per-employee")) as any).template, {
        from: "2025-01-01",
        to: "2025-01-31",
      });
      expect(none.ok && none.message).toContain("No rows");
    });
  });
});
