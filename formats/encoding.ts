// Character encodings of export files, and the policy for characters an encoding cannot hold: the same
// as the SIE writer's (formats/sie4/cp437.ts): transliterate where a fixed table or dropping an accent
// keeps the text readable (€ → EUR in Latin-1, ø → ö in CP437), else "?"; every change is reported.
import { decodeCp437, TRANSLITERATIONS } from "./sie4/cp437.ts";

export const ENCODINGS = ["utf-8", "utf-8-bom", "iso-8859-1", "windows-1252", "cp437", "cp865"] as const;
export type Encoding = (typeof ENCODINGS)[number];

export const ENCODING_TITLES: Record<Encoding, string> = {
  "utf-8": "UTF-8",
  "utf-8-bom": "UTF-8 with byte order mark (Excel)",
  "iso-8859-1": "ISO 8859-1 (Latin-1)",
  "windows-1252": "Windows-1252 (Latin-1 with €)",
  "cp437": "IBM PC code page 437",
  "cp865": "IBM PC code page 865 (Nordic: ø, Ø)",
};

/** code point → byte, for the single-byte encodings. */
const byteTables: Partial<Record<Encoding, Map<number, number>>> = {};

function tableOf(encoding: Encoding): Map<number, number> | undefined {
  if (encoding === "utf-8" || encoding === "utf-8-bom") return undefined;
  const cached = byteTables[encoding];
  if (cached) return cached;
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  let chars: string;
  if (encoding === "iso-8859-1") chars = String.fromCharCode(...all); // byte = code point (WHATWG's label means 1252)
  else if (encoding === "windows-1252") chars = new TextDecoder("windows-1252").decode(all);
  else {
    chars = decodeCp437(all);
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

/** A character written differently than given. */
export interface CharSubstitution {
  char: string;
  replacement: string;
}

/**
 * Makes a value writable in `encoding`: control characters (tabs, line breaks) become a space, so one
 * record stays one line; characters the encoding lacks are transliterated or become "?", and reported.
 */
export function toEncodable(value: string, encoding: Encoding): { text: string; substitutions: CharSubstitution[] } {
  const substitutions: CharSubstitution[] = [];
  let out = "";
  for (const char of value.normalize("NFC")) {
    const cp = char.codePointAt(0)!;
    if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0)) { out += " "; continue; }
    if (canEncode(char, encoding)) { out += char; continue; }
    let replacement = TRANSLITERATIONS[char];
    if (replacement === undefined || ![...replacement].every((c) => canEncode(c, encoding))) {
      const base = char.normalize("NFKD").replace(/\p{M}/gu, "");
      replacement = base !== char && base !== "" && [...base].every((c) => canEncode(c, encoding)) ? base : "?";
    }
    substitutions.push({ char, replacement });
    out += replacement;
  }
  return { text: out, substitutions };
}

/** Strict: run every value through toEncodable first; a character that slipped through throws. */
export function encodeText(text: string, encoding: Encoding): Uint8Array {
  if (encoding === "utf-8") return new TextEncoder().encode(text);
  if (encoding === "utf-8-bom") return new TextEncoder().encode("\ufeff" + text);
  const table = tableOf(encoding)!;
  const bytes = new Uint8Array(text.length);
  let n = 0;
  for (const char of text) {
    const byte = table.get(char.codePointAt(0)!);
    if (byte === undefined) throw new Error(`character ${JSON.stringify(char)} cannot be written in ${encoding}`);
    bytes[n++] = byte;
  }
  return bytes.subarray(0, n);
}

/** The inverse of encodeText: for previews and tests. */
export function decodeText(bytes: Uint8Array, encoding: Encoding): string {
  if (encoding === "utf-8" || encoding === "utf-8-bom") return new TextDecoder("utf-8", { ignoreBOM: encoding === "utf-8" }).decode(bytes);
  const table = tableOf(encoding)!;
  const chars = new Array<string>(256);
  for (const [cp, byte] of table) chars[byte] = String.fromCharCode(cp);
  let out = "";
  for (const b of bytes) out += chars[b] ?? "\ufffd";
  return out;
}
