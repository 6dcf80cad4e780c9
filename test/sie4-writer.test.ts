import { describe, expect, test } from "bun:test";
import { decodeCp437 } from "../formats/sie4/cp437.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { formatAmount, sieFileName, SieWriteError, writeSie4i, type SieWriteInput } from "../formats/sie4/writer.ts";

const LONG = "Ett mycket långt projektnamn ".repeat(20).trim();

function input(overrides: Partial<SieWriteInput> = {}): SieWriteInput {
  return {
    program: 'kontobro "edge"',
    programVersion: "0.1.0",
    generatedAt: "2025-02-01T10:20:30Z",
    generatedBy: "sync",
    companyName: "Bjørnstad & Åkesson {Norden} AB",
    orgNumber: "556334-3689",
    currency: "SEK",
    chartOfAccountsType: "EUBAS97",
    fiscalYear: { start: "2025-01-01", end: "2025-12-31" },
    accounts: [
      { number: "1510", name: "Kundfordringar" },
      { number: 3041, name: 'Försäljning "tjänster" 25 %' },
      { number: "2611", name: "Utgående moms 25 %" },
    ],
    dimensions: [
      { id: 1, name: "Kostnadsställe", objects: [{ id: "200", name: "Konsult\\avd" }] },
      {
        id: 6,
        name: "Projekt",
        objects: [
          { id: "P-100", name: LONG },
          { id: '4711 "B"', name: "Ærø – Kø {x} \\ € 😀" },
        ],
      },
    ],
    vouchers: [
      {
        date: "2025-01-31",
        text: 'Faktura 10001, kund "20001"',
        transactions: [
          { account: "1510", amountMinor: 1437500, text: "Faktura 10001" },
          {
            account: 3041,
            objects: [
              { dimension: 1, id: "200" },
              { dimension: 6, id: "P-100" },
            ],
            amountMinor: -1150000,
            text: "Konsult\\tid {jan}",
          },
          { account: "2611", amountMinor: -287500, text: "Moms 25 %" },
        ],
      },
      {
        series: "A",
        number: 7,
        date: "2025-02-05",
        text: "Kreditnota 10003 – øre",
        transactions: [
          { account: "1510", amountMinor: -5 },
          { account: "3041", objects: [{ dimension: 6, id: '4711 "B"' }], amountMinor: 4 },
          { account: "2611", amountMinor: 1, date: "2025-02-06" },
        ],
      },
    ],
    ...overrides,
  };
}

describe("SIE 4I writer", () => {
  test("writes the mandatory records in order, CRLF, #KSUMMA first and last", () => {
    const r = writeSie4i(input());
    const lines = r.text.split("\r\n");
    expect(lines.slice(0, 12)).toEqual([
      "#FLAGGA 0",
      "#KSUMMA",
      "#FORMAT PC8",
      "#SIETYP 4",
      '#PROGRAM "kontobro \\"edge\\"" "0.1.0"',
      '#GEN 20250201 "sync"',
      '#FNAMN "Björnstad & Åkesson {Norden} AB"',
      "#ORGNR 556334-3689",
      "#RAR 0 20250101 20251231",
      "#KPTYP EUBAS97",
      "#VALUTA SEK",
      '#KONTO 1510 "Kundfordringar"',
    ]);
    expect(lines).toContain('\t#TRANS 3041 {1 "200" 6 "P-100"} -11500.00 20250131 "Konsult\\\\tid {jan}"');
    expect(lines).toContain("\t#TRANS 1510 {} -0.05");
    expect(lines).toContain("\t#TRANS 2611 {} 0.01 20250206");
    expect(lines).toContain('#VER "A" "7" 20250205 "Kreditnota 10003 - öre"');
    expect(lines.at(-2)).toBe(`#KSUMMA ${r.ksumma}`);
    expect(lines.at(-1)).toBe("");
    expect(r.text).not.toMatch(/[^\r]\n/);
    expect(decodeCp437(r.bytes)).toBe(r.text);
    expect(r.fileName).toBe("FAKT.SI");
  });

  test("round trip: the reader gets back exactly what was written, checksum included", () => {
    const w = writeSie4i(input());
    const r = readSie(w.bytes);
    expect(r.problems).toEqual([]);
    const d = r.document;
    expect(d.encoding).toBe("cp437");
    expect(d.ksumma).toEqual({ declared: w.ksumma!, computed: w.ksumma!, matches: true });
    expect(d.program).toEqual({ name: 'kontobro "edge"', version: "0.1.0" });
    expect(d.companyName).toBe("Björnstad & Åkesson {Norden} AB");
    expect(d.objects).toEqual([
      { dimension: 1, id: "200", name: "Konsult\\avd" },
      { dimension: 6, id: "P-100", name: LONG },
      { dimension: 6, id: '4711 "B"', name: "Ærö - Kö {x} \\ EUR ?" },
    ]);
    expect(d.accounts[1]).toEqual({ number: "3041", name: 'Försäljning "tjänster" 25 %' });
    expect(d.vouchers.map((v) => [v.series, v.number, v.date, v.text, v.balanceMinor])).toEqual([
      ["", "", "2025-01-31", 'Faktura 10001, kund "20001"', 0],
      ["A", "7", "2025-02-05", "Kreditnota 10003 - öre", 0],
    ]);
    expect(d.vouchers[0]!.transactions[1]).toMatchObject({
      account: "3041",
      objects: [
        { dimension: 1, id: "200" },
        { dimension: 6, id: "P-100" },
      ],
      amountMinor: -1150000,
      text: "Konsult\\tid {jan}",
      date: "2025-01-31",
    });
    expect(d.vouchers[1]!.transactions.map((t) => t.amountMinor)).toEqual([-5, 4, 1]);
    expect(d.vouchers[1]!.transactions[1]!.objects).toEqual([{ dimension: 6, id: '4711 "B"' }]);
  });

  test("every substitution is reported with its field and line", () => {
    const w = writeSie4i(input());
    expect(w.substitutions.map((s) => [s.char, s.replacement, s.field, s.line])).toEqual([
      ["ø", "ö", "companyName", 7],
      ["ø", "ö", "dimensions[1].objects[1].name", 19],
      ["–", "-", "dimensions[1].objects[1].name", 19],
      ["ø", "ö", "dimensions[1].objects[1].name", 19],
      ["€", "EUR", "dimensions[1].objects[1].name", 19],
      ["😀", "?", "dimensions[1].objects[1].name", 19],
      ["–", "-", "vouchers[1].text", 26],
      ["ø", "ö", "vouchers[1].text", 26],
    ]);
    expect(w.text.split("\r\n")[18]).toBe('#OBJEKT 6 "4711 \\"B\\"" "Ærö - Kö {x} \\\\ EUR ?"');
  });

  test("LF on request, and no #KSUMMA on request", () => {
    const w = writeSie4i(input(), { lineEnding: "lf", ksumma: false });
    expect(w.text).not.toContain("\r");
    expect(w.text).not.toContain("#KSUMMA");
    expect(w.ksumma).toBeUndefined();
    expect(readSie(w.bytes).problems).toEqual([]);
  });

  test("rejects an unbalanced voucher with a clear error", () => {
    const bad = input();
    bad.vouchers[0]!.transactions[2]!.amountMinor = -285700;
    try {
      writeSie4i(bad);
      throw new Error("expected SieWriteError");
    } catch (e) {
      expect(e).toBeInstanceOf(SieWriteError);
      const problems = (e as SieWriteError).problems;
      expect(problems.map((p) => p.code)).toEqual(["sie4.unbalanced_voucher"]);
      expect(problems[0]!.message).toBe(
        'Voucher 1 (unnumbered, 2025-01-31, "Faktura 10001, kund "20001"") does not balance: its transactions sum to 18.00 instead of 0.00.',
      );
      expect(problems[0]!.field).toBe("vouchers[0]");
    }
  });

  test("rejects non-integer amounts, bad accounts, bad dates, vouchers outside the year", () => {
    const bad = input();
    bad.vouchers[0]!.transactions[0]!.amountMinor = 14375.5;
    bad.vouchers[1]!.transactions[0]!.account = "15A0";
    bad.vouchers[1]!.date = "2026-01-05";
    bad.accounts[0]!.number = "ab";
    expect(() => writeSie4i(bad)).toThrow(SieWriteError);
    try {
      writeSie4i(bad);
    } catch (e) {
      expect((e as SieWriteError).problems.map((p) => p.code)).toEqual([
        "sie4.bad_account",
        "sie4.bad_amount",
        "sie4.unbalanced_voucher",
        "sie4.voucher_outside_year",
        "sie4.bad_account",
      ]);
    }
    expect(() => writeSie4i(input({ vouchers: [{ date: "2025-02-30", transactions: [{ account: 1510, amountMinor: 0 }] }] }))).toThrow(
      /not a valid ISO date/,
    );
  });

  test("amount formatting: two decimals, '.', leading minus, no '+'", () => {
    expect([0, 5, -5, 100, -143750, 123456789012].map(formatAmount)).toEqual([
      "0.00",
      "0.05",
      "-0.05",
      "1.00",
      "-1437.50",
      "1234567890.12",
    ]);
  });

  test("file names: FAKT.SI, or the unique SIE4I_<org>_<timestamp>_<serial>.SI form", () => {
    expect(sieFileName({ generatedAt: "2025-02-01" })).toBe("FAKT.SI");
    expect(sieFileName({ generatedAt: "2025-02-01T10:20:30Z", orgNumber: "556334-3689", serial: 12 })).toBe(
      "SIE4I_5563343689_20250201102030_12.SI",
    );
    expect(sieFileName({ generatedAt: new Date("2025-02-01T10:20:30Z"), serial: 1 })).toBe("SIE4I_20250201102030_1.SI");
    expect(writeSie4i(input(), { serial: 3 }).fileName).toBe("SIE4I_5563343689_20250201102030_3.SI");
  });
});
