// IBM code page 437 ("PC8", the only character set SIE allows) and the policy for text it cannot hold.
// WHATWG TextDecoder has no CP437, so the table is written out here from the code page definition.

/**
 * All 256 code points, index = byte. 0x00–0x7F are plain ASCII: in a SIE file bytes 0–31 are line
 * ends and (forbidden) control characters, never the ☺♥♦ glyphs some CP437 charts show there.
 */
const CP437: readonly number[] = [
  // 0x00–0x7F: ASCII
  ...Array.from({ length: 128 }, (_, i) => i),
  // 0x80–0x8F
  0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7, 0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
  // 0x90–0x9F (0x9B ¢ and 0x9D ¥ are where CP865 has ø and Ø: CP437 has no ø/Ø)
  0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9, 0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
  // 0xA0–0xAF
  0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba, 0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
  // 0xB0–0xBF: shades and box drawing
  0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
  // 0xC0–0xCF
  0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f, 0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
  // 0xD0–0xDF
  0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b, 0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
  // 0xE0–0xEF: Greek and maths (0xE1 doubles as German ß)
  0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4, 0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
  // 0xF0–0xFF (0xFF is the no-break space)
  0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248, 0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
];

const BYTE_OF = new Map<number, number>(CP437.map((cp, byte) => [cp, byte]));

/**
 * Fixed transliterations for characters CP437 lacks but invoices do contain. Chosen so an accountant
 * reading the imported voucher still understands it: Norwegian ø/Ø become the Swedish ö/Ö (the same
 * letter), € becomes the currency code, typographic punctuation becomes its ASCII form.
 */
export const TRANSLITERATIONS: Readonly<Record<string, string>> = {
  "ø": "ö", "Ø": "Ö", "€": "EUR",
  "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
  "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
  "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-", "\u00ad": "-",
  "\u2026": "...", "\u2022": "*", "\u00d7": "x", "\u2122": "TM", "\u00a9": "(c)", "\u00ae": "(R)", "\u00a7": "par.",
  "\u2009": " ", "\u200a": " ", "\u2002": " ", "\u2003": " ", "\u202f": " ", "\u2007": " ", "\u3000": " ",
  "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
  "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L",
  "œ": "oe", "Œ": "OE", "ĳ": "ij", "Ĳ": "IJ", "ŀ": "l", "Ŀ": "L", "ı": "i",
};

export type SubstitutionReason = "transliterated" | "unmappable" | "control";

/** One character the writer had to change. Reported, never silent, so the caller can warn the user. */
export interface Substitution {
  /** The original character. */
  char: string;
  /** e.g. "U+20AC". */
  codePoint: string;
  /** What was written instead ("" when a zero-width character was dropped). */
  replacement: string;
  reason: SubstitutionReason;
  /** UTF-16 offset of the character in the (NFC-normalised) original value. */
  index: number;
  /** Where the value came from, e.g. "vouchers[2].transactions[0].text"; set by the caller. */
  field?: string;
  /** Line of the written file, when known. */
  line?: number;
}

export function isCp437(char: string): boolean {
  const cp = char.codePointAt(0);
  return cp !== undefined && BYTE_OF.has(cp);
}

const isControl = (cp: number) => cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0);

/** Latin letters with accents CP437 lacks (š, ő, ã): drop the accent, keep the letter. */
function stripAccents(char: string): string | undefined {
  const base = char.normalize("NFKD").replace(/\p{M}/gu, "");
  return base !== char && base !== "" && [...base].every(isCp437) ? base : undefined;
}

/**
 * Makes a field value writable in CP437: NFC-normalises it, turns control characters (tab, line break)
 * into a space (SIE forbids them in strings), transliterates with the fixed table or by dropping accents,
 * and writes "?" for anything else (emoji, CJK). Every change is reported.
 */
export function toCp437Text(value: string, field?: string): { text: string; substitutions: Substitution[] } {
  const substitutions: Substitution[] = [];
  let out = "";
  let index = 0;
  for (const char of value.normalize("NFC")) {
    const cp = char.codePointAt(0)!;
    let replacement: string;
    let reason: SubstitutionReason | undefined;
    if (isControl(cp)) {
      replacement = " ";
      reason = "control";
    } else if (BYTE_OF.has(cp)) {
      replacement = char;
    } else if (char in TRANSLITERATIONS) {
      replacement = TRANSLITERATIONS[char]!;
      reason = "transliterated";
    } else {
      const stripped = stripAccents(char);
      replacement = stripped ?? "?";
      reason = stripped ? "transliterated" : "unmappable";
    }
    if (reason) {
      substitutions.push({
        char, codePoint: "U+" + cp.toString(16).toUpperCase().padStart(4, "0"), replacement, reason, index,
        ...(field ? { field } : {}),
      });
    }
    out += replacement;
    index += char.length;
  }
  return { text: out, substitutions };
}

/** Strict: throws on a character outside CP437. Run values through toCp437Text first. */
export function encodeCp437(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  let n = 0;
  for (const char of text) {
    const byte = BYTE_OF.get(char.codePointAt(0)!);
    if (byte === undefined) {
      throw new Error(`character ${JSON.stringify(char)} cannot be written in CP437; pass the text through toCp437Text first`);
    }
    bytes[n++] = byte;
  }
  return bytes.subarray(0, n);
}

export function decodeCp437(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += String.fromCharCode(CP437[byte]!);
  return out;
}

export type SieEncoding = "cp437" | "utf-8" | "iso-8859-15";

/**
 * Real files declare `#FORMAT PC8` but are often UTF-8 or Latin-1. Valid UTF-8 with at least one
 * multi-byte sequence is UTF-8 (CP437 text almost never forms valid sequences). Otherwise Swedish letters
 * decide: in CP437 they sit in 0x80–0x9A, in Latin-1 in 0xC4–0xF6 (box drawing/Greek in CP437).
 */
export function detectEncoding(bytes: Uint8Array): SieEncoding {
  let high = false;
  for (const b of bytes) if (b >= 0x80) { high = true; break; }
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
