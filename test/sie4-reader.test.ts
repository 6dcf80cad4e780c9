import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { encodeCp437 } from "../formats/sie4/cp437.ts";
import { parseSieAmount, parseSieDate, readSie, tokenizeLine, type SieReadResult } from "../formats/sie4/reader.ts";

const samples = path.join(import.meta.dir, "../../shared/reference/sie-samples");
const synthetic = path.join(import.meta.dir, "../../shared/reference/sie-synthetic");
const readFile = (dir: string, name: string) => readSie(new Uint8Array(readFileSync(path.join(dir, name))));
const errors = (r: SieReadResult) => r.problems.filter((p) => p.severity === "error");
const codes = (r: SieReadResult) => r.problems.map((p) => p.code);
const read = (text: string) => readSie(encodeCp437(text));
const HEAD = '#FLAGGA 0\n#FORMAT PC8\n#SIETYP 4\n#PROGRAM "t" 1\n#GEN 20250201\n#FNAMN "AB"\n';

describe("tokenizer", () => {
  test("quotes, escaped quotes, backslashes, object lists, empty lists", () => {
    expect(tokenizeLine('#VER "K" "" 20180502 "a \\"b\\" c\\\\d"').tokens).toEqual([
      { kind: "value", value: "#VER", quoted: false },
      { kind: "value", value: "K", quoted: true },
      { kind: "value", value: "", quoted: true },
      { kind: "value", value: "20180502", quoted: false },
      { kind: "value", value: 'a "b" c\\d', quoted: true },
    ]);
    expect(tokenizeLine('\t#TRANS 3041 {1 "200" "6" "P-101"} -3000.00').tokens[2]).toEqual({
      kind: "list",
      values: ["1", "200", "6", "P-101"],
    });
    expect(tokenizeLine("#TRANS 1930 {} 100.00").tokens[2]).toEqual({ kind: "list", values: [] });
    expect(tokenizeLine('#OBJEKT 1 "a {b} c" x').tokens[2]).toEqual({ kind: "value", value: "a {b} c", quoted: true });
    expect(tokenizeLine("#TRANS 7010 {6 P-100}").tokens[2]).toEqual({ kind: "list", values: ["6", "P-100"] });
    expect(tokenizeLine('#X "open').error).toMatch(/closing quote/);
    expect(tokenizeLine('#X {1 "2"').error).toMatch(/closing brace/);
  });

  test("dates and amounts", () => {
    expect(parseSieDate("20240229")).toBe("2024-02-29");
    expect(parseSieDate("20250229")).toBeUndefined();
    expect(parseSieDate("2025-01-31")).toBeUndefined();
    expect(parseSieAmount("-1437.5")).toBe(-143750);
    expect(parseSieAmount("14375")).toBe(1437500);
    expect(parseSieAmount("0.05")).toBe(5);
    expect(parseSieAmount("1.005")).toBeUndefined();
    expect(parseSieAmount("1,50")).toBeUndefined();
  });
});

describe.skipIf(!existsSync(samples))("real sample files (Sie4j test data)", () => {
  test("every sample is read; only the imbalanced one has errors", () => {
    const files = readdirSync(samples);
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) {
      const r = readFile(samples, f);
      if (f === "BLBLOV_SIE4_UTF_8_IMBALANCED.SI") continue;
      expect({ file: f, errors: errors(r) }).toEqual({ file: f, errors: [] });
      expect(r.document.vouchers.length).toBeGreaterThan(0);
    }
  });

  test("BLBLOV_SIE4_UTF_8_IMBALANCED.SI: exactly the two imbalances 0.55 and -0.14", () => {
    const r = readFile(samples, "BLBLOV_SIE4_UTF_8_IMBALANCED.SI");
    const errs = errors(r);
    expect(errs.map((p) => p.code)).toEqual(["sie4.unbalanced_voucher", "sie4.unbalanced_voucher"]);
    expect(errs[0]!.message).toContain("Difference: 0.55");
    expect(errs[1]!.message).toContain("Difference: -0.14");
    expect(errs.map((p) => p.line)).toEqual([8, 14]);
    expect(r.document.vouchers.map((v) => v.balanceMinor)).toEqual([55, -14]);
    expect(r.document.flag).toBe(1);
  });

  test("BLBLOV_SIE4.SI: true CP437, unquoted name with a space, series without number", () => {
    const r = readFile(samples, "BLBLOV_SIE4.SI");
    expect(r.document.encoding).toBe("cp437");
    expect(r.document.companyName).toBe("Övningsbolaget AB");
    expect(r.document.vouchers[0]).toMatchObject({
      series: "K",
      number: "",
      date: "2018-05-02",
      text: "Försäljning 25% (DF:157)",
      regDate: "2018-05-03",
    });
    expect(r.document.vouchers[1]!.transactions.map((t) => t.amountMinor)).toEqual([50000, -5357, -44643]);
    expect(r.problems).toEqual([]);
  });

  test("Quotes_test.si: UTF-8 under PC8 and escaped quotes", () => {
    const r = readFile(samples, "Quotes_test.si");
    expect(r.document.encoding).toBe("utf-8");
    expect(r.document.program).toEqual({ name: "Kassasystem", version: '1.0 - "Oblique Ozelot" - alpha' });
    expect(r.document.vouchers[0]!.text).toBe('Försäljning 25% "DF:157"');
    expect(codes(r)).toEqual(["sie4.encoding_mismatch"]);
  });

  test("Transaktioner_per_Z-rapport.se: CRLF, 10 vouchers, 83 #TRANS, all balanced", () => {
    const d = readFile(samples, "Transaktioner_per_Z-rapport.se").document;
    expect(d.lineEnding).toBe("crlf");
    expect(d.currency).toBe("SEK");
    expect(d.dimensions).toEqual([{ id: 1, name: "Kostnadsställe" }]);
    expect(d.vouchers).toHaveLength(10);
    expect(d.vouchers.flatMap((v) => v.transactions)).toHaveLength(83);
    expect(d.vouchers.every((v) => v.balanceMinor === 0)).toBe(true);
  });

  test("Arousells_Visning_AB.SE: full 4E with balances; damaged letters are flagged", () => {
    const r = readFile(samples, "Arousells_Visning_AB.SE");
    const d = r.document;
    expect(d.fiscalYears.map((y) => y.index)).toEqual([0, -1]);
    expect(d.balances.filter((b) => b.label === "OUB").length).toBe(35);
    expect(d.balances.find((b) => b.label === "OUB")!.objects).toEqual([{ dimension: 1, id: "1000" }]);
    expect(d.balances.filter((b) => b.objects.some((o) => o.dimension === 6))).toHaveLength(12);
    expect(d.objects.find((o) => o.id === "100221")!.name).toBe("Projekt med sex siffrigt id");
    expect(codes(r)).toContain("sie4.replacement_characters");
  });

  test("KST/projekt sample: object lists with three dimensions, empty transaction text", () => {
    const d = readFile(samples, "SIE_test_av_KST_projekt_Testbolaget_e_-_kopia_ny.SE").document;
    expect(d.encoding).toBe("cp437");
    expect(d.accounts.length).toBe(1280);
    const v = d.vouchers[0]!;
    expect(v.sign).toBe("#1 Anders Engman");
    expect(v.transactions[0]!.objects).toEqual([
      { dimension: 1, id: "100000" },
      { dimension: 2, id: "100000" },
      { dimension: 6, id: "1234567891234567" },
    ]);
  });
});

describe.skipIf(!existsSync(synthetic))("synthetic fixtures", () => {
  test("valid files (CRLF, LF, with #KSUMMA) read without errors and agree", () => {
    const crlf = readFile(synthetic, "synthetic-4i-valid.si");
    const lf = readFile(synthetic, "synthetic-4i-valid-lf.si");
    const ks = readFile(synthetic, "synthetic-4i-valid-ksumma.si");
    for (const r of [crlf, lf, ks]) expect(r.problems).toEqual([]);
    expect(lf.document.lineEnding).toBe("lf");
    expect(lf.document.vouchers).toEqual(crlf.document.vouchers);
    expect(ks.document.vouchers).toEqual(
      crlf.document.vouchers.map((v) => ({
        ...v,
        line: v.line + 1,
        transactions: v.transactions.map((t) => ({ ...t, line: t.line + 1 })),
      })),
    );
    const d = crlf.document;
    expect(d.objects.find((o) => o.id === "P-101")!.name).toBe('Ombyggnad Sjöbo, etapp "A"');
    expect(d.objects.find((o) => o.id === "P-100")!.name).toBe("Nybygge Åre");
    expect(d.vouchers[1]!.transactions[1]!.objects).toEqual([
      { dimension: 1, id: "200" },
      { dimension: 6, id: "P-101" },
    ]);
    expect(d.vouchers[2]!.transactions.map((t) => t.amountMinor)).toEqual([-143750, 115000, 28750]);
    expect(d.vouchers.map((v) => [v.series, v.number])).toEqual([
      ["", ""],
      ["", ""],
      ["", ""],
    ]);
  });

  test("negative-4i-imbalanced.si: voucher 1 off by 18.00", () => {
    const errs = errors(readFile(synthetic, "negative-4i-imbalanced.si"));
    expect(errs).toHaveLength(1);
    expect(errs[0]!.message).toContain("Difference: 18.00");
  });

  test("negative-4i-ksumma-mismatch.si: checksum mismatch", () => {
    const errs = errors(readFile(synthetic, "negative-4i-ksumma-mismatch.si"));
    expect(errs.map((p) => p.code)).toEqual(["sie4.ksumma_mismatch"]);
    expect(errs[0]!.message).toContain("2721078541");
  });

  test("negative-4i-ksumma-truncated.si: opening #KSUMMA without closing → truncated", () => {
    const r = readFile(synthetic, "negative-4i-ksumma-truncated.si");
    expect(r.ok).toBe(false);
    expect(errors(r).map((p) => p.code)).toEqual(["sie4.truncated"]);
  });
});

describe("validation of hand-made files", () => {
  test("bad dates, bad amounts, bad accounts are errors with line numbers", () => {
    const r = read(HEAD + '#VER A 1 20250230 "x"\n{\n#TRANS 15x0 {} 1,00\n#TRANS 3041 {} -1.00 2025013\n}\n');
    expect(errors(r).map((p) => [p.code, p.line])).toEqual([
      ["sie4.bad_date", 7],
      ["sie4.bad_account", 9],
      ["sie4.bad_amount", 9],
      ["sie4.bad_date", 10],
      ["sie4.unbalanced_voucher", 7],
    ]);
  });

  test("unknown labels and misplaced records are warnings, not errors", () => {
    const r = read(HEAD + '#FOO 1 2\n#TRANS 1510 {} 1.00\n#VER "" "" 20250101\n{\n#KONTO 1510 x\n#TRANS 1510 {} 0\n}\n');
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => [p.code, p.severity])).toEqual([
      ["sie4.unknown_label", "warning"],
      ["sie4.misplaced_label", "warning"],
      ["sie4.misplaced_label", "warning"],
    ]);
  });

  test("a file cut off inside a voucher is truncated", () => {
    const r = read(HEAD + '#VER "" "" 20250101\n{\n#TRANS 1510 {} 1.00\n');
    expect(errors(r).map((p) => p.code)).toContain("sie4.truncated");
  });

  test("missing mandatory records are reported", () => {
    const r = read("#FLAGGA 0\n#SIETYP 4\n");
    expect(errors(r).map((p) => p.message)).toEqual([
      "The mandatory record #FORMAT is missing.",
      "The mandatory record #PROGRAM is missing.",
      "The mandatory record #GEN is missing.",
      "The mandatory record #FNAMN is missing.",
    ]);
  });

  test("Moment-style #TRANS without an object list, #RTRANS/#BTRANS outside the balance", () => {
    const r = read(
      HEAD +
        "#VER D 10001 20250131\n{\n  #TRANS 3041   -100.00\n#BTRANS 1510 {} 999.00\n#RTRANS 1510 {} 100.00\n#TRANS 1510 {} 100.00\n}\n",
    );
    expect(r.problems).toEqual([]);
    expect(r.document.vouchers[0]!.transactions.map((t) => [t.kind, t.account, t.amountMinor])).toEqual([
      ["TRANS", "3041", -10000],
      ["BTRANS", "1510", 99900],
      ["RTRANS", "1510", 10000],
      ["TRANS", "1510", 10000],
    ]);
  });
});
