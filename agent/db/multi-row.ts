// Multi-row statements: one INSERT with many VALUES rows instead of one call per row (issue 16: the calls,
// not the rows, were most of intake's time). A statement is prepared once per chunk size, a power of two
// up to MAX_ROWS, so any number of rows takes a handful of calls and at most nine cached statements.
import type { Database, Statement } from "bun:sqlite";

const MAX_ROWS = 256;

/**
 * `head` is the statement up to VALUES (e.g. "INSERT INTO t (a, b)"), `tail` what follows the rows
 * (ON CONFLICT, RETURNING). Returns a function that writes rows of `columns` values each and returns
 * the rows RETURNING gave, in the order of the chunks.
 */
export function multiRowStatement(c: Database, head: string, columns: number, tail = ""): (rows: unknown[][]) => unknown[] {
  const byChunk = new Map<number, Statement>();
  const row = `(${Array.from({ length: columns }, () => "?").join(", ")})`;
  const statement = (n: number) => {
    let st = byChunk.get(n);
    if (!st) byChunk.set(n, (st = c.prepare(`${head} VALUES ${Array.from({ length: n }, () => row).join(", ")} ${tail}`)));
    return st;
  };
  return (rows) => {
    const out: unknown[] = [];
    for (let i = 0; i < rows.length; ) {
      let n = MAX_ROWS;
      while (n > rows.length - i) n >>= 1;
      const params: unknown[] = [];
      for (let k = i; k < i + n; k++) for (const v of rows[k]!) params.push(v);
      for (const r of statement(n).all(...(params as any[]))) out.push(r);
      i += n;
    }
    return out;
  };
}
