// Character encodings of export files (SIE 4's CP437 and the templates' choice of encodings), and the one
// policy for characters an encoding cannot hold: control characters (tabs, line breaks) become a space so
// one record stays one line; a fixed table or dropping an accent keeps the text readable (ø → ö in CP437,
// € → EUR in Latin-1); anything else becomes "?"; every change is reported, never silent.
// WHATWG TextDecoder has no CP437 or CP865, so the CP437 table is written out here.

export const ENCODINGS = ["utf-8", "utf-8-bom", "iso-8859-1", "windows-1252", "cp437", "cp865"] as const;
export type Encoding = (typeof ENCODINGS)[number];

export const ENCODING_TITLES: Record<Encoding, string> = {
  "utf-8": "UTF-8",
  "utf-8-bom": "UTF-8 with byte order mark (Excel)",
  "iso-8859-1": "ISO 8859-1 (Latin-1)",
  "windows-1252": "Windows-1252 (Latin-1 with €)",
  cp437: "IBM PC code page 437",
  cp865: "IBM PC code page 865 (Nordic: ø, Ø)",
};

/**
 * IBM code page 437 ("PC8", the only character set SIE allows): all 256 code points, index = byte.
 * 0x00–0x7F are plain ASCII: in a SIE file bytes 0–31 are line ends and (forbidden) control characters,
 * never the ☺♥♦ glyphs some CP437 charts show there.
 */
const CP437: readonly number[] = [
  // 0x00–0x7F: ASCII
  ...Array.from({ length: 128 }, (_, i) => i),
  // 0x80–0x8F
  0x00c7,
  0x00fc,
  0x00e9,
  0x00e2,
  0x00e4,
  0x00e0,
  0x00e5,
  0x00e7,
  0x00ea,
  0x00eb,
  0x00e8,
  0x00ef,
  0x00ee,
  0x00ec,
  0x00c4,
  0x00c5,
  // 0x90–0x9F (0x9B ¢ and 0x9D ¥ are where CP865 has ø and Ø: CP437 has no ø/Ø)
  0x00c9,
  0x00e6,
  0x00c6,
  0x00f4,
  0x00f6,
  0x00f2,
  0x00fb,
  0x00f9,
  0x00ff,
  0x00d6,
  0x00dc,
  0x00a2,
  0x00a3,
  0x00a5,
  0x20a7,
  0x0192,
  // 0xA0–0xAF
  0x00e1,
  0x00ed,
  0x00f3,
  0x00fa,
  0x00f1,
  0x00d1,
  0x00aa,
  0x00ba,
  0x00bf,
  0x2310,
  0x00ac,
  0x00bd,
  0x00bc,
  0x00a1,
  0x00ab,
  0x00bb,
  // 0xB0–0xBF: shades and box drawing
  0x2591,
  0x2592,
  0x2593,
  0x2502,
  0x2524,
  0x2561,
  0x2562,
  0x2556,
  0x2555,
  0x2563,
  0x2551,
  0x2557,
  0x255d,
  0x255c,
  0x255b,
  0x2510,
  // 0xC0–0xCF
  0x2514,
  0x2534,
  0x252c,
  0x251c,
  0x2500,
  0x253c,
  0x255e,
  0x255f,
  0x255a,
  0x2554,
  0x2569,
  0x2566,
  0x2560,
  0x2550,
  0x256c,
  0x2567,
  // 0xD0–0xDF
  0x2568,
  0x2564,
  0x2565,
  0x2559,
  0x2558,
  0x2552,
  0x2553,
  0x256b,
  0x256a,
  0x2518,
  0x250c,
  0x2588,
  0x2584,
  0x258c,
  0x2590,
  0x2580,
  // 0xE0–0xEF: Greek and maths (0xE1 doubles as German ß)
  0x03b1,
  0x00df,
  0x0393,
  0x03c0,
  0x03a3,
  0x03c3,
  0x00b5,
  0x03c4,
  0x03a6,
  0x0398,
  0x03a9,
  0x03b4,
  0x221e,
  0x03c6,
  0x03b5,
  0x2229,
  // 0xF0–0xFF (0xFF is the no-break space)
  0x2261,
  0x00b1,
  0x2265,
  0x2264,
  0x2320,
  0x2321,
  0x00f7,
  0x2248,
  0x00b0,
  0x2219,
  0x00b7,
  0x221a,
  0x207f,
  0x00b2,
  0x25a0,
  0x00a0,
];

/**
 * Fixed transliterations for characters an encoding lacks but invoices do contain. Chosen so an accountant
 * reading the imported file still understands it: Norwegian ø/Ø become the Swedish ö/Ö (the same letter),
 * € becomes the currency code, typographic punctuation becomes its ASCII form.
 */
export const TRANSLITERATIONS: Readonly<Record<string, string>> = {
  ø: "ö",
  Ø: "Ö",
  "€": "EUR",
  "\u2018": "'",
  "\u2019": "'",
  "\u201a": "'",
  "\u201b": "'",
  "\u2032": "'",
  "\u00b4": "'",
  "\u201c": '"',
  "\u201d": '"',
  "\u201e": '"',
  "\u201f": '"',
  "\u2033": '"',
  "\u2010": "-",
  "\u2011": "-",
  "\u2012": "-",
  "\u2013": "-",
  "\u2014": "-",
  "\u2015": "-",
  "\u2212": "-",
  "\u00ad": "-",
  "\u2026": "...",
  "\u2022": "*",
  "\u00d7": "x",
  "\u2122": "TM",
  "\u00a9": "(c)",
  "\u00ae": "(R)",
  "\u00a7": "par.",
  "\u2009": " ",
  "\u200a": " ",
  "\u2002": " ",
  "\u2003": " ",
  "\u202f": " ",
  "\u2007": " ",
  "\u3000": " ",
  "\u200b": "",
  "\u200c": "",
  "\u200d": "",
  "\ufeff": "",
  ð: "d",
  Ð: "D",
  þ: "th",
  Þ: "Th",
  đ: "d",
  Đ: "D",
  ł: "l",
  Ł: "L",
  œ: "oe",
  Œ: "OE",
  ĳ: "ij",
  Ĳ: "IJ",
  ŀ: "l",
  Ŀ: "L",
  ı: "i",
};

/** code point → byte, for the single-byte encodings. */
const byteTables: Partial<Record<Encoding, Map<number, number>>> = {};

function tableOf(encoding: Encoding): Map<number, number> | undefined {
  if (encoding === "utf-8" || encoding === "utf-8-bom") return undefined;
  const cached = byteTables[encoding];
  if (cached) return cached;
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  let chars: string;
  if (encoding === "iso-8859-1")
    chars = String.fromCharCode(...all); // byte = code point (WHATWG's label means 1252)
  else if (encoding === "windows-1252") chars = new TextDecoder("windows-1252").decode(all);
  else {
    chars = String.fromCharCode(...CP437);
    // CP865 is CP437 with ø, Ø and ¤ where CP437 has ¢, ¥ and ».
    if (encoding === "cp865") chars = chars.slice(0, 0x9b) + "ø" + chars[0x9c] + "Ø" + chars.slice(0x9e, 0xaf) + "¤" + chars.slice(0xb0);
  }
  const map = new Map<number, number>();
  for (let i = 0; i < 256; i++) if (!map.has(chars.charCodeAt(i))) map.set(chars.charCodeAt(i), i);
  byteTables[encoding] = map;
  return map;
}

export function canEncode(char: string, encoding: Encoding): boolean {
  const table = tableOf(encoding);
  return !table || table.has(char.codePointAt(0)!);
}

export type SubstitutionReason = "transliterated" | "unmappable" | "control";

/** One character written differently than given. */
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

const isControl = (cp: number) => cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0);

/** What a character the encoding lacks is written as: the fixed table, else the letter without its accent, else "?". */
function replacementFor(char: string, encoding: Encoding): string {
  const fixed = TRANSLITERATIONS[char];
  if (fixed !== undefined && [...fixed].every((c) => canEncode(c, encoding))) return fixed;
  const base = char.normalize("NFKD").replace(/\p{M}/gu, "");
  return base !== char && base !== "" && [...base].every((c) => canEncode(c, encoding)) ? base : "?";
}

/**
 * Makes a value writable in `encoding`: NFC-normalises it, turns control characters into a space,
 * transliterates what the encoding lacks, and reports every change (with `field`, when given).
 */
export function transliterate(value: string, encoding: Encoding, field?: string): { text: string; substitutions: Substitution[] } {
  const substitutions: Substitution[] = [];
  let out = "";
  let index = 0;
  for (const char of value.normalize("NFC")) {
    const cp = char.codePointAt(0)!;
    let replacement = char;
    let reason: SubstitutionReason | undefined;
    if (isControl(cp)) {
      replacement = " ";
      reason = "control";
    } else if (!canEncode(char, encoding)) {
      replacement = replacementFor(char, encoding);
      reason = replacement === "?" ? "unmappable" : "transliterated";
    }
    if (reason) {
      substitutions.push({
        char,
        codePoint: "U+" + cp.toString(16).toUpperCase().padStart(4, "0"),
        replacement,
        reason,
        index,
        ...(field ? { field } : {}),
      });
    }
    out += replacement;
    index += char.length;
  }
  return { text: out, substitutions };
}

/**
 * The templates' view of transliterate(): the characters that were replaced (a control character turned
 * into a space is expected in a one-line record, so it is not listed).
 */
export function toEncodable(value: string, encoding: Encoding): { text: string; substitutions: { char: string; replacement: string }[] } {
  const { text, substitutions } = transliterate(value, encoding);
  return {
    text,
    substitutions: substitutions.filter((s) => s.reason !== "control").map(({ char, replacement }) => ({ char, replacement })),
  };
}

/** Strict: run every value through transliterate() first; a character that slipped through throws. */
export function encodeText(text: string, encoding: Encoding, fix = "pass the text through toEncodable first"): Uint8Array {
  if (encoding === "utf-8") return new TextEncoder().encode(text);
  if (encoding === "utf-8-bom") return new TextEncoder().encode("\ufeff" + text);
  const table = tableOf(encoding)!;
  const bytes = new Uint8Array(text.length);
  let n = 0;
  for (const char of text) {
    const byte = table.get(char.codePointAt(0)!);
    if (byte === undefined) throw new Error(`character ${JSON.stringify(char)} cannot be written in ${encoding}; ${fix}`);
    bytes[n++] = byte;
  }
  return bytes.subarray(0, n);
}

/** The inverse of encodeText. */
export function decodeText(bytes: Uint8Array, encoding: Encoding): string {
  if (encoding === "utf-8" || encoding === "utf-8-bom") return new TextDecoder("utf-8", { ignoreBOM: encoding === "utf-8" }).decode(bytes);
  const table = tableOf(encoding)!;
  const chars = new Array<string>(256);
  for (const [cp, byte] of table) chars[byte] = String.fromCharCode(cp);
  let out = "";
  for (const b of bytes) out += chars[b] ?? "\ufffd";
  return out;
}
