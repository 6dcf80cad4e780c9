// SIE 4's character set: IBM code page 437 ("PC8", the only one SIE allows), written with the one
// code-page module of the exports (formats/encoding.ts: table, transliteration, substitution reports),
// and the detection of what real files use instead when they are read.
import { canEncode, decodeText, encodeText, transliterate, type Substitution } from "../encoding.ts";

export function isCp437(char: string): boolean {
  return canEncode(char, "cp437");
}

/**
 * Makes a field value writable in CP437: NFC-normalises it, turns control characters (tab, line break)
 * into a space (SIE forbids them in strings), transliterates with the fixed table or by dropping accents,
 * and writes "?" for anything else (emoji, CJK). Every change is reported.
 */
export function toCp437Text(value: string, field?: string): { text: string; substitutions: Substitution[] } {
  return transliterate(value, "cp437", field);
}

/** Strict: throws on a character outside CP437. Run values through toCp437Text first. */
export function encodeCp437(text: string): Uint8Array {
  return encodeText(text, "cp437", "pass the text through toCp437Text first");
}

export function decodeCp437(bytes: Uint8Array): string {
  return decodeText(bytes, "cp437");
}

export type SieEncoding = "cp437" | "utf-8" | "iso-8859-15";

/**
 * Real files declare `#FORMAT PC8` but are often UTF-8 or Latin-1. Valid UTF-8 with at least one
 * multi-byte sequence is UTF-8 (CP437 text almost never forms valid sequences). Otherwise Swedish letters
 * decide: in CP437 they sit in 0x80–0x9A, in Latin-1 in 0xC4–0xF6 (box drawing/Greek in CP437).
 */
export function detectEncoding(bytes: Uint8Array): SieEncoding {
  let high = false;
  for (const b of bytes)
    if (b >= 0x80) {
      high = true;
      break;
    }
  if (!high) return "cp437";
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return "utf-8";
  } catch {
    // not UTF-8: fall through
  }
  let cp437Letters = 0;
  let latinLetters = 0;
  for (const b of bytes) {
    if (b >= 0x80 && b <= 0x9a) cp437Letters++;
    else if (b >= 0xc0 && b <= 0xff) latinLetters++;
  }
  return latinLetters > cp437Letters ? "iso-8859-15" : "cp437";
}

export function decodeSieBytes(bytes: Uint8Array, encoding: SieEncoding = detectEncoding(bytes)): string {
  if (encoding === "cp437") return decodeCp437(bytes);
  return new TextDecoder(encoding).decode(bytes); // also strips a UTF-8 BOM
}

/** The inverse of decodeSieBytes for text that came from it: used to checksum fields as they stand in the file. */
export function encodeAs(encoding: SieEncoding): (text: string) => Uint8Array {
  if (encoding === "cp437") return encodeCp437;
  if (encoding === "utf-8") {
    const encoder = new TextEncoder();
    return (text) => encoder.encode(text);
  }
  const latin = new Map<number, number>();
  const decoded = new TextDecoder("iso-8859-15").decode(Uint8Array.from({ length: 256 }, (_, i) => i));
  for (let i = 0; i < 256; i++) latin.set(decoded.charCodeAt(i), i);
  return (text) => Uint8Array.from(text, (c) => latin.get(c.charCodeAt(0)) ?? 0x3f);
}
