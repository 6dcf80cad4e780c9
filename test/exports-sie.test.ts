// SIE 4 through the export path: intake → records → export (one transaction) → stored file → our reader, on both
// engines (a SQLite file, a tenant on a real PostgreSQL server).
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deliverOnStart } from "../agent/exports/deliver.ts";
import { runExport } from "../agent/exports/service.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { getFileBytes, listFiles } from "../agent/exports/store.ts";
import { silentLogger } from "../agent/log.ts";
import { toCp437Text } from "../formats/sie4/cp437.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { AWKWARD, BASE, count, creditNote, invoice, seed, settings, statusOf } from "./exports-fixtures.ts";
import { type Engine, workerEngines } from "./engines.ts";
import { tempDir } from "./helpers.ts";

const LINE_TEXTS = [
  AWKWARD,
  'Citat "inne i" text',
  'Klammer {6 "P-9"} och \\ backslash',
  "Norsk ø/Ø og € 100 og tab\there",
  "x".repeat(300),
];
const cp437 = (s: string) => toCp437Text(s).text;

function awkwardInvoices() {
  return [
    invoice(1001, {
      projectNumber: "P-1",
      lines: LINE_TEXTS.map((text, i) => ({ text, quantity: i + 1, unitPrice: 10000 + i * 333, vatCode: i % 2 ? "12" : "25" })),
    }),
    invoice(1002, {
      date: "2026-03-11",
      lines: [
        { text: "Rabatt ø", quantity: -1, unitPrice: 5000 },
        { text: "Konsult", quantity: 3, unitPrice: 99999 },
      ],
    }),
    creditNote(1003, 1001, {
      projectNumber: "P-1",
      date: "2026-03-12",
      lines: [{ text: 'Kreditering "fel" {timmar}', quantity: 2, unitPrice: 10000 }],
    }),
  ];
}

const sieSettings = (over: Record<string, unknown> = {}) =>
  settings({
    company_name: 'Bølgen & Søn "AB"',
    posting: {
      revenue_detail: "per_line",
      customer_dimension: true,
      cost_centre: "project_department",
      account_names: { "3041": "Tjänster ø {25 %}" },
    },
    ...over,
  });

const storages = workerEngines("SIE 4 exports");
const open = async (engine: Engine) => (await storages.open(engine)).storage;

/** Invoice number → the SIE files (serial numbers) whose vouchers hold it. */
async function filesPerInvoice(db: SqlRunner): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>();
  for (const f of await listFiles(db)) {
    const serial = f.fileName.split("_").pop()!;
    for (const v of readSie((await getFileBytes(db, f.id))!.bytes).document.vouchers) {
      const n = /^\w+ (\d+)/.exec(v.text!)![1]!;
      seen.set(n, [...(seen.get(n) ?? []), serial]);
    }
  }
  return seen;
}

describe.each(storages.engines)("on %s", (engine) => {
  describe("SIE 4 export of awkward data", () => {
    test("round trip: what the reader gets back from the stored file is what was sent, after the CP437 policy", async () => {
      const db = await open(engine);
      await seed(db, [...BASE(), ...awkwardInvoices()]);
      const r = await runExport(db, sieSettings(), { format: "sie4" }, { by: "cli", now: new Date("2026-03-15T10:00:00Z") });
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      expect(r.files).toHaveLength(1);
      expect(r.invoices.exported.sort()).toEqual(["1001", "1002", "1003"]);
      const f = r.files[0]!;
      expect(f.fileName).toBe("SIE4I_5566778899_20260315100000_1.SI");
      const stored = (await getFileBytes(db, f.id))!;
      expect(stored.bytes.length).toBe(f.size);
      expect(new Bun.CryptoHasher("sha256").update(stored.bytes).digest("hex")).toBe(f.sha256);

      const read = readSie(stored.bytes);
      expect(read.problems).toEqual([]);
      expect(read.document.ksumma?.matches).toBe(true);
      expect(read.document.companyName).toBe(cp437('Bølgen & Søn "AB"'));
      expect(read.document.encoding).toBe("cp437");
      expect(read.document.vouchers).toHaveLength(3);
      for (const v of read.document.vouchers) expect(v.balanceMinor).toBe(0);
      const v1 = read.document.vouchers.find((v) => v.text?.startsWith("Faktura 1001"))!;
      expect(
        v1.transactions.filter((t) => t.account === "3041" || t.account === "3590" || t.account === "3042").map((t) => t.text),
      ).toEqual(LINE_TEXTS.map(cp437));
      expect(v1.transactions[0]!.objects).toEqual([{ dimension: 8, id: "100" }]);
      expect(v1.transactions[1]!.objects).toEqual([
        { dimension: 1, id: "200" },
        { dimension: 6, id: "P-1" },
      ]);
      expect(read.document.objects).toContainEqual({ dimension: 6, id: "P-1", name: cp437('Nybygg Ærø {fase "2"}') });
      expect(read.document.objects).toContainEqual({ dimension: 8, id: "100", name: cp437(AWKWARD) });
      expect(read.document.accounts).toContainEqual({ number: "3041", name: "Tjänster ö {25 %}" });
      const credit = read.document.vouchers.find((v) => v.text?.startsWith("Kreditnota 1003"))!;
      expect(credit.transactions.map((t) => t.amountMinor)).toEqual([-25000, 20000, 5000]);

      // Every character CP437 lacks is reported, never silently changed.
      const replaced = r.warnings
        .filter((w) => w.code === "sie4.character_replaced")
        .map((w) => w.message)
        .join("\n");
      for (const ch of ["ø", "Ø", "€", "–"]) expect(replaced).toContain(`"${ch}"`);
      expect(replaced).toContain("a tab or line break");

      expect(await Promise.all([1001, 1002, 1003].map((n) => statusOf(db, n)))).toEqual(["transferred", "transferred", "transferred"]);
      expect(await count(db, `SELECT count(*) AS n FROM invoice_export_status WHERE export_file_id = ${f.id}`)).toBe(3);
      const again = await runExport(db, sieSettings(), { format: "sie4" }, { by: "cli" });
      expect(again).toMatchObject({ ok: true, files: [], message: "No invoices to transfer." });
      expect(await count(db, `SELECT count(*) AS n FROM export_files`)).toBe(1);
    });

    test("generated invoices with random awkward text survive export → stored file → reader", async () => {
      const db = await open(engine);
      let seed32 = 42;
      const rand = (n: number) => Math.floor(((seed32 = (seed32 * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * n);
      const POOL = ['"', "{", "}", "\\", "ø", "Ø", "€", "æ", "å", "é", "–", "😀", "\t", " ", "a", "Z", "#", "1"];
      const randomText = () =>
        Array.from({ length: 1 + rand(rand(4) === 0 ? 400 : 30) }, () => POOL[rand(POOL.length)])
          .join("")
          .trim() || "x";
      const docs = Array.from({ length: 60 }, (_, i) => {
        const lines = Array.from({ length: 1 + rand(5) }, () => ({
          text: randomText(),
          quantity: (1 + rand(40)) / 4,
          unitPrice: rand(500_000) - 50_000,
          vatCode: ["25", "12", "6", "0"][rand(4)],
        }));
        const base = {
          date: `2026-0${1 + rand(9)}-1${rand(10)}`,
          dueDate: "2026-12-31",
          projectNumber: rand(2) ? "P-1" : undefined,
          lines,
        };
        // An invoice's total is never negative (model sign rules): a negative one is generated as a credit note, of an
        // invoice booked before kontobro (8000: no total here, so random amounts never over-credit it).
        const stated = lines.reduce((t, l) => t + Math.round(l.quantity * l.unitPrice), 0);
        return rand(4) === 0 || stated < 0 ? creditNote(9000 + i, 8000, base) : invoice(9000 + i, base);
      });
      await seed(db, [...BASE(), ...docs]);
      const r = await runExport(db, sieSettings(), { format: "sie4" }, { by: "api" });
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      expect(r.invoices.exported).toHaveLength(60);
      const read = readSie((await getFileBytes(db, r.files[0]!.id))!.bytes);
      expect(read.problems).toEqual([]);
      expect(read.document.ksumma?.matches).toBe(true);
      const sent = new Map(docs.map((d) => [String(d.data.number), d.data.lines as { text: string }[]]));
      for (const v of read.document.vouchers) {
        expect(v.balanceMinor).toBe(0);
        const number = /^\w+ (\d+)/.exec(v.text!)![1]!;
        const revenue = v.transactions.filter((t) => t.objects.some((o) => o.dimension === 1 || o.dimension === 6) || /^3/.test(t.account));
        expect(revenue.map((t) => t.text)).toEqual(sent.get(number)!.map((l) => cp437(l.text.trim())));
      }
    });

    test("one file per financial year, numbered without gaps; a period limits the invoices", async () => {
      const db = await open(engine);
      await seed(db, [
        ...BASE(),
        invoice(1, { date: "2026-06-30", dueDate: "2026-12-31" }),
        invoice(2, { date: "2026-07-01", dueDate: "2026-12-31" }),
        invoice(3, { date: "2026-08-15", dueDate: "2026-12-31" }),
        invoice(4, { date: "2026-09-01", dueDate: "2026-12-31" }),
      ]);
      const s = settings({ fiscal_year_start: "07-01" });
      const r = await runExport(db, s, { format: "sie4", to: "2026-08-31" }, { by: "api", now: new Date("2026-09-02T08:00:00Z") });
      if (!r.ok) throw new Error(JSON.stringify(r.problems));
      expect(r.files.map((f) => [f.fileName.split("_").pop(), f.periodFrom, f.periodTo, f.invoices])).toEqual([
        ["1.SI", "2026-06-30", "2026-06-30", ["1"]],
        ["2.SI", "2026-07-01", "2026-08-15", ["2", "3"]],
      ]);
      const years = await Promise.all(r.files.map(async (f) => readSie((await getFileBytes(db, f.id))!.bytes).document.fiscalYears[0]));
      expect(years).toEqual([
        { index: 0, start: "2025-07-01", end: "2026-06-30" },
        { index: 0, start: "2026-07-01", end: "2027-06-30" },
      ]);
      expect(await statusOf(db, 4)).toBe("to_transfer");
      const next = await runExport(db, s, { format: "sie4" }, { by: "api" });
      expect(next.ok && next.files.map((f) => f.fileName.split("_").pop())).toEqual(["3.SI"]);
    });

    test("an invoice the posting rules refuse is left out, stays to transfer, and the warning says why", async () => {
      const db = await open(engine);
      await seed(db, [
        ...BASE(),
        invoice(1),
        invoice(2, { lines: [{ text: "x", quantity: 1, unitPrice: 100, vatCode: "99" }] }),
        invoice(3, { currency: "NOK" }),
      ]);
      const r = await runExport(db, settings(), { format: "sie4" }, { by: "api" });
      if (!r.ok) throw new Error("refused");
      expect(r.invoices.exported).toEqual(["1"]);
      expect(r.invoices.leftOut.map((l) => [l.number, l.problems[0]!.code])).toEqual([
        ["2", "sie4.unknown_vat_code"],
        ["3", "sie4.currency_mismatch"],
      ]);
      expect(r.warnings.find((w) => w.message.startsWith('Invoice 2 was left out and stays "to transfer"'))!.hint).toContain(
        'vatCodes."99"',
      );
      expect(await Promise.all([1, 2, 3].map((n) => statusOf(db, n)))).toEqual(["transferred", "to_transfer", "to_transfer"]);
      expect(r.message).toContain("2 left out");
    });

    test("without a company name nothing is exported or marked", async () => {
      const db = await open(engine);
      await seed(db, [...BASE(), invoice(1)]);
      const r = await runExport(db, settings({ company_name: undefined }), { format: "sie4" }, { by: "api" });
      expect(!r.ok && r.problems[0]).toMatchObject({ code: "exports.company_name_missing", field: "exports.company_name" });
      expect(await statusOf(db, 1)).toBe("to_transfer");
      expect(await count(db, `SELECT count(*) AS n FROM export_runs`)).toBe(0);
    });
  });

  describe("a failure between storing the file and marking the invoices", () => {
    for (const stage of ["afterFilesStored", "afterInvoicesMarked"] as const) {
      test(`${stage}: nothing is kept, and the next export takes every invoice exactly once`, async () => {
        const db = await open(engine);
        await seed(db, [...BASE(), invoice(1), invoice(2), creditNote(3, 1)]);
        await expect(
          runExport(
            db,
            settings(),
            { format: "sie4" },
            {
              by: "api",
              faults: {
                [stage]: () => {
                  throw new Error("power cut");
                },
              },
            },
          ),
        ).rejects.toThrow("power cut");
        expect(await count(db, `SELECT count(*) AS n FROM export_files`)).toBe(0);
        expect(await count(db, `SELECT count(*) AS n FROM export_runs`)).toBe(0);
        expect(await Promise.all([1, 2, 3].map((n) => statusOf(db, n)))).toEqual(["to_transfer", "to_transfer", "to_transfer"]);
        const r = await runExport(db, settings(), { format: "sie4" }, { by: "api" });
        expect(r.ok && r.invoices.exported.sort()).toEqual(["1", "2", "3"]);
        const vouchers = readSie((await getFileBytes(db, r.ok ? r.files[0]!.id : 0))!.bytes).document.vouchers;
        expect(vouchers.map((v) => /^\w+ (\d+)/.exec(v.text!)![1]).sort()).toEqual(["1", "2", "3"]);
        expect(await count(db, `SELECT count(*) AS n FROM export_files`)).toBe(1);
      });
    }
  });

  describe("the output folder", () => {
    test("a file is written there after the commit; one committed but not yet written is written at the next start", async () => {
      const db = await open(engine);
      const out = join(tempDir("kontobro-out-"), "exports");
      await seed(db, [...BASE(), invoice(1)]);
      const s = settings({ output_dir: out });
      await expect(
        runExport(
          db,
          s,
          { format: "sie4" },
          {
            by: "api",
            faults: {
              beforeDelivery: () => {
                throw new Error("crash after commit");
              },
            },
          },
        ),
      ).rejects.toThrow("crash after commit");
      const [file] = await listFiles(db);
      expect(file!.deliveredAt).toBeNull();
      expect(await statusOf(db, 1)).toBe("transferred");
      expect(existsSync(join(out, file!.fileName))).toBe(false);
      await deliverOnStart(db, s, silentLogger);
      expect(Buffer.from((await getFileBytes(db, file!.id))!.bytes).equals(readFileSync(join(out, file!.fileName)))).toBe(true);
      expect((await listFiles(db))[0]!.deliveredAt).toBeGreaterThan(0);
      expect(existsSync(join(out, `${file!.fileName}.part`))).toBe(false);
    });

    test("a different file of the same name is never overwritten; files made without a folder are never written later", async () => {
      const db = await open(engine);
      const out = tempDir("kontobro-out-");
      await seed(db, [...BASE(), invoice(1), invoice(2)]);
      const first = await runExport(
        db,
        settings(),
        { format: "template", template: "invoice-journal", to: "2026-12-31" },
        { by: "api", now: new Date("2026-03-15T00:00:00Z") },
      );
      // A template file is named by its run: on PostgreSQL run ids are the installation's, not the tenant's.
      const firstRun = first.ok ? first.runId! : 0;
      const next = `invoice-journal_20260316_${firstRun + 1}.csv`;
      await seed(db, [invoice(3)]);
      writeFileSync(join(out, next), "someone else's file");
      const r = await runExport(
        db,
        settings({ output_dir: out }),
        { format: "template", template: "invoice-journal" },
        { by: "api", now: new Date("2026-03-16T00:00:00Z") },
      );
      expect(r.ok && r.files[0]!.fileName).toBe(next);
      expect(r.ok && r.warnings.map((w) => w.code)).toContain("exports.output_file_exists");
      expect(readFileSync(join(out, next), "utf8")).toBe("someone else's file");
      expect(existsSync(join(out, `invoice-journal_20260315_${firstRun}.csv`))).toBe(false);
      expect((await listFiles(db)).map((f) => f.deliveredAt)).toEqual([null, 0]);
    });
  });

  describe("two workers exporting the same tenant at once", () => {
    test("never put an invoice in two files, and number the SIE files without gaps or repeats", async () => {
      const storage = await storages.open(engine);
      const [a, b] = [storage.storage, await storage.worker()];
      await seed(a, BASE());
      let number = 1;
      for (let round = 0; round < 6; round++) {
        await seed(
          a,
          Array.from({ length: 5 }, () => invoice(number++)),
        );
        const results = await Promise.all(
          [a, b, a, b].map((db) => runExport(db, settings(), { format: "sie4" }, { by: "api", now: new Date("2026-03-15T10:00:00Z") })),
        );
        for (const r of results) if (!r.ok) throw new Error(JSON.stringify(r.problems));
        // Together they exported this round's five invoices, each once.
        const exported = results.flatMap((r) => (r.ok ? r.invoices.exported : []));
        expect(exported.map(Number).sort((x, y) => x - y)).toEqual(Array.from({ length: 5 }, (_, i) => number - 5 + i));
      }
      const per = await filesPerInvoice(a);
      expect(per.size).toBe(30);
      expect([...per.entries()].filter(([, files]) => files.length !== 1)).toEqual([]);
      const serials = (await listFiles(a)).map((f) => Number(f.fileName.split("_").pop()!.replace(".SI", ""))).sort((x, y) => x - y);
      expect(serials).toEqual(Array.from({ length: serials.length }, (_, i) => i + 1));
      expect(await count(a, `SELECT count(*) AS n FROM invoice_export_status WHERE status = 'transferred'`)).toBe(30);
    });
  });
});
