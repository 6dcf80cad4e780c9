import { describe, expect, test } from "bun:test";
import { crc32 } from "../formats/sie4/ksumma.ts";
import { decodeCp437, decodeSieBytes, detectEncoding, encodeCp437, isCp437, toCp437Text } from "../formats/sie4/cp437.ts";

describe("CP437 table", () => {
  test("is a bijection over all 256 bytes", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const text = decodeCp437(all);
    expect(new Set(text).size).toBe(256);
    expect(encodeCp437(text)).toEqual(all);
  });

  test("matches the published code page (CRC-32 of all 256 characters as UTF-8, computed independently with Python's cp437 codec)", () => {
    const all = decodeCp437(Uint8Array.from({ length: 256 }, (_, i) => i));
    expect(crc32(new TextEncoder().encode(all))).toBe(1301192267);
  });

  test("Nordic letters sit where the code page puts them", () => {
    const at = (b: number) => decodeCp437(Uint8Array.of(b));
    expect([0x84, 0x94, 0x86, 0x8e, 0x99, 0x8f, 0x91, 0x92, 0x81, 0x82, 0x9a].map(at).join("")).toBe("äöåÄÖÅæÆüéÜ");
    // CP865 has ø/Ø here; CP437 has ¢ and ¥.
    expect(at(0x9b)).toBe("¢");
    expect(at(0x9d)).toBe("¥");
    expect(at(0xe1)).toBe("ß");
    expect(at(0xff)).toBe("\u00a0");
    expect(decodeCp437(new TextEncoder().encode("#KONTO 1510"))).toBe("#KONTO 1510");
  });

  test("æ Æ å Å ä ö exist; ø Ø € do not", () => {
    for (const c of "æÆåÅäÄöÖ") expect(isCp437(c)).toBe(true);
    for (const c of "øØ€") expect(isCp437(c)).toBe(false);
  });

  test("strict encoding refuses characters outside the table", () => {
    expect(() => encodeCp437("Bjørn")).toThrow(/toCp437Text/);
  });
});

describe("CP437 substitution policy", () => {
  test("keeps what CP437 holds, with no report", () => {
    const r = toCp437Text("Blåbærsyltetoy Ärlig Åse «ok» ½ £ ß");
    expect(r.substitutions).toEqual([]);
  });

  test("transliterates the fixed table and reports each change with its position", () => {
    const r = toCp437Text("Bjørn “Ø” – 5 €…", "vouchers[0].text");
    expect(r.text).toBe('Björn "Ö" - 5 EUR...');
    expect(r.substitutions.map((s) => [s.char, s.replacement, s.index, s.reason])).toEqual([
      ["ø", "ö", 2, "transliterated"],
      ["“", '"', 6, "transliterated"],
      ["Ø", "Ö", 7, "transliterated"],
      ["”", '"', 8, "transliterated"],
      ["–", "-", 10, "transliterated"],
      ["€", "EUR", 14, "transliterated"],
      ["…", "...", 15, "transliterated"],
    ]);
    expect(r.substitutions[5]!.codePoint).toBe("U+20AC");
    expect(r.substitutions.every((s) => s.field === "vouchers[0].text")).toBe(true);
  });

  test("drops accents CP437 lacks, writes ? for the rest, spaces for control characters", () => {
    const r = toCp437Text("Šárka Łódź 🎉 中\tend\r\nx");
    expect(r.text).toBe("Sárka Lódz ? ? end  x");
    const byReason = (reason: string) => r.substitutions.filter((s) => s.reason === reason).map((s) => s.char);
    expect(byReason("transliterated")).toEqual(["Š", "Ł", "ź"]);
    expect(byReason("unmappable")).toEqual(["🎉", "中"]);
    expect(byReason("control")).toEqual(["\t", "\r", "\n"]);
    expect(() => encodeCp437(r.text)).not.toThrow();
  });

  test("decomposed input is normalised first, not reported", () => {
    const r = toCp437Text("Ha\u0308ndelse a\u030a");
    expect(r.text).toBe("Händelse å");
    expect(r.substitutions).toEqual([]);
  });

  test("every result is encodable (property over random Unicode)", () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 300; i++) {
      const s = Array.from({ length: 20 }, () => String.fromCodePoint(Math.floor(rand() * 0x3000))).join("");
      const r = toCp437Text(s);
      expect(() => encodeCp437(r.text)).not.toThrow();
      expect(decodeCp437(encodeCp437(r.text))).toBe(r.text);
    }
  });
});

describe("encoding detection", () => {
  test("CP437, UTF-8 and Latin-1 bytes of the same text", () => {
    const text = '#FNAMN "Övningsbolaget Åre"\n#KONTO 3041 "Försäljning tjänster"\n';
    const cp437 = encodeCp437(text);
    const utf8 = new TextEncoder().encode(text);
    const latin1 = Uint8Array.from(text, (c) => c.charCodeAt(0));
    expect(detectEncoding(cp437)).toBe("cp437");
    expect(detectEncoding(utf8)).toBe("utf-8");
    expect(detectEncoding(latin1)).toBe("iso-8859-15");
    for (const bytes of [cp437, utf8, latin1]) expect(decodeSieBytes(bytes)).toBe(text);
  });

  test("plain ASCII counts as CP437", () => {
    expect(detectEncoding(new TextEncoder().encode("#FLAGGA 0\n"))).toBe("cp437");
  });
});
