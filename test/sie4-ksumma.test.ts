import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { encodeCp437 } from "../formats/sie4/cp437.ts";
import { crc32, ksummaOf, parseDeclaredKsumma } from "../formats/sie4/ksumma.ts";
import { readSie, tokenizeLine } from "../formats/sie4/reader.ts";

const recordOf = (line: string) => {
  const [label, ...rest] = tokenizeLine(line).tokens;
  return { label: (label as { value: string }).value, values: rest.flatMap((t) => (t.kind === "list" ? t.values : [t.value])) };
};

describe("#KSUMMA", () => {
  test("crc32 is zlib's", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array())).toBe(0);
    const a = encodeCp437("#KONTO1915");
    const b = encodeCp437("Kassa");
    expect(crc32(b, crc32(a))).toBe(crc32(encodeCp437("#KONTO1915Kassa")));
  });

  test("spec example 10.15: label, values, escaped quote counts as a quote", () => {
    expect(ksummaOf([recordOf('#KONTO 1915 "Kassa \\"special\\""')])).toBe(1921122205);
    expect(crc32(encodeCp437('#KONTO1915Kassa "special"'))).toBe(1921122205);
  });

  test("object list: braces and spaces do not count, items do", () => {
    expect(ksummaOf([recordOf('#TRANS 7010 {1 "456"} 13200.00')])).toBe(3174400141);
  });

  test("declared sums compare modulo 2^32 (signed printing accepted)", () => {
    expect(parseDeclaredKsumma("-1120567155")).toBe(3174400141);
    expect(parseDeclaredKsumma("3174400141")).toBe(3174400141);
    expect(parseDeclaredKsumma("12a")).toBeUndefined();
  });

  test("the amount text matters: 14375.00 and 14375 differ", () => {
    expect(ksummaOf([recordOf("#TRANS 1510 {} 14375.00")])).not.toBe(ksummaOf([recordOf("#TRANS 1510 {} 14375")]));
  });

  const dir = path.join(import.meta.dir, "../../shared/reference/sie-synthetic");
  test.skipIf(!existsSync(dir))("synthetic fixtures: valid 1843789077, mismatch computed 2721078541", () => {
    const valid = readSie(new Uint8Array(readFileSync(path.join(dir, "synthetic-4i-valid-ksumma.si"))));
    expect(valid.document.ksumma).toEqual({ declared: 1843789077, computed: 1843789077, matches: true });
    expect(valid.ok).toBe(true);
    const bad = readSie(new Uint8Array(readFileSync(path.join(dir, "negative-4i-ksumma-mismatch.si"))));
    expect(bad.document.ksumma).toEqual({ declared: 1843789077, computed: 2721078541, matches: false });
  });

  test("a sum computed without the labels' # is accepted with a warning", () => {
    const body = ["#FORMAT PC8", '#PROGRAM "x" 1', "#GEN 20250101", '#FNAMN "AB"'];
    const noHash = ksummaOf(body.map(recordOf), { withoutHash: true });
    const file = ["#FLAGGA 0", "#KSUMMA", ...body, `#KSUMMA ${noHash}`, ""].join("\n");
    const r = readSie(encodeCp437(file));
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => p.code)).toContain("sie4.ksumma_variant");
  });
});
