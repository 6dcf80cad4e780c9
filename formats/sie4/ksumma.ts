// The #KSUMMA checksum of SIE 4B §10: CRC-32 (reflected polynomial EDB88320, preset FFFFFFFF, final
// inversion: the same function as zlib's crc32) over the records between the opening `#KSUMMA` and the
// closing `#KSUMMA <n>`. Only the label (with its '#') and the field *values* count: no separating
// spaces, no quotes around fields, no braces, no line breaks; `\"` counts as `"`. CRC runs across records.
import { encodeCp437 } from "./cp437.ts";

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** zlib-compatible CRC-32, continuable: crc32(b, crc32(a)) === crc32(a ++ b). Unsigned result. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffffffff) >>> 0;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One record as the checksum sees it: the label and the field values (object-list items included, in order). */
export interface ChecksumRecord {
  label: string;
  values: readonly string[];
}

export interface KsummaOptions {
  /** How characters become bytes. CP437 per the spec; the reader passes the file's detected encoding. */
  encode?: (text: string) => Uint8Array;
  /** Leave out the label's '#': a variant one public implementation also accepts. Only for diagnostics. */
  withoutHash?: boolean;
}

/** A running #KSUMMA: feed records in file order, read `value` at the closing record. */
export class KsummaAccumulator {
  private crc = 0;
  private readonly encode: (text: string) => Uint8Array;
  private readonly withoutHash: boolean;

  constructor(options: KsummaOptions = {}) {
    this.encode = options.encode ?? encodeCp437;
    this.withoutHash = options.withoutHash ?? false;
  }

  add(record: ChecksumRecord): this {
    const label = this.withoutHash ? record.label.replace(/^#/, "") : record.label;
    this.crc = crc32(this.encode(label + record.values.join("")), this.crc);
    return this;
  }

  get value(): number {
    return this.crc;
  }
}

export function ksummaOf(records: Iterable<ChecksumRecord>, options?: KsummaOptions): number {
  const acc = new KsummaAccumulator(options);
  for (const r of records) acc.add(r);
  return acc.value;
}

/**
 * A declared checksum as a number modulo 2^32: writers differ on signed vs unsigned printing
 * (-1120567155 and 3174400141 are the same sum). Undefined when the text is not an integer.
 */
export function parseDeclaredKsumma(text: string): number | undefined {
  if (!/^-?\d{1,11}$/.test(text)) return undefined;
  const n = Number(text);
  return ((n % 2 ** 32) + 2 ** 32) % 2 ** 32;
}
