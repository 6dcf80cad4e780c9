// Keys a JSON text names twice in one object. JSON.parse keeps the last of them without a word, so {"unitPrice":100,
// "unitPrice":200} would be taken as 200 whatever the sender meant (RFC 8259: names SHOULD be unique, what a parser
// does with a repeat is not defined). Intake refuses such an event rather than guess.

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

/**
 * The repeats told at most: the events are refused at the first, and the list is for a person to read. Bounds the work
 * of a text that repeats a key hundreds of thousands of times (each told repeat is a path, and a problem in the answer).
 */
export const MAX_REPEATED_KEYS = 20;

/** The deepest an event's values may nest (arrays and objects within its data); no record of the model comes near. */
export const MAX_NESTING = 32;

/**
 * The paths of the keys `text` (valid JSON: JSON.parse took it) repeats in one object, in the order met: a key's
 * escapes are read (\u0061 is a), array positions are numbers; the first MAX_REPEATED_KEYS only. [] when every object
 * names each key once. Pure.
 * One pass: a string is skipped with indexOf (a PDF's megabytes of base64 at memory speed); in valid JSON every quote
 * outside a string opens one, so only brackets, commas and strings followed by a colon (keys) need a look.
 */
export function duplicateKeys(text: string): (string | number)[][] {
  const found: (string | number)[][] = [];
  // Per open object or array: the keys seen (null for an array) and where in it the scan is (its last key as written, or
  // its index).
  const open: { keys: Set<string> | null; at: string | number }[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i < 0) return found; // not JSON: no string ends
        let slashes = 0;
        while (text.charCodeAt(i - 1 - slashes) === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
      }
      const end = i;
      let j = i + 1;
      while (j < n && text.charCodeAt(j) <= 32) j++;
      const top = open[open.length - 1];
      if (text.charCodeAt(j) !== COLON || !top?.keys) continue;
      // Compared as written, quotes included (a Set of such slices is several times faster than of the names inside
      // them); a key with an escape as JSON.stringify writes its name, the form of the same name without escapes.
      const quoted = text.slice(start, end + 1);
      const key = quoted.includes("\\") ? JSON.stringify(JSON.parse(quoted)) : quoted;
      top.at = key;
      if (top.keys.has(key)) {
        found.push(open.map((o) => (typeof o.at === "string" ? (JSON.parse(o.at) as string) : o.at)));
        if (found.length === MAX_REPEATED_KEYS) return found;
      } else top.keys.add(key);
      i = j;
    } else if (c === 123 || c === 91) {
      // Deeper than an event may nest (the array of events, the event, its values): that event is refused as too deep
      // (parseEvents), and the paths of repeats down there would cost their depth each.
      if (open.length > MAX_NESTING + 1) return found;
      open.push(c === 123 ? { keys: new Set(), at: '""' } : { keys: null, at: 0 });
    } else if (c === 125 || c === 93) open.pop();
    else if (c === 44) {
      const top = open[open.length - 1];
      if (top && top.keys === null) top.at = (top.at as number) + 1;
    }
  }
  return found;
}
