// Multi-row statements: one INSERT with many VALUES rows instead of one call per row (issue 16: the calls,
// not the rows, were most of intake's time). A statement is prepared once per chunk size, a power of two
// up to MAX_ROWS, so any number of rows takes a handful of calls and at most nine statements.
import { type SqlRunner, together } from "./pg/runner.ts";

const MAX_ROWS = 256;

/**
 * `head` is the statement up to VALUES (e.g. "INSERT INTO t (a, b)"), `tail` what follows the rows (ON CONFLICT,
 * RETURNING). Returns a function that writes rows of `columns` values each through a SqlRunner
 * (agent/db/pg/runner.ts), so the text serves both engines, and returns the rows RETURNING gave, in the order of
 * the chunks. There is one text per chunk size; the runner keeps a statement per text. The chunks are sent together
 * (agent/db/pg/runner.ts): on PostgreSQL one round trip for all of them (seven for 1,000 rows one after another).
 */
export function multiRowSql(head: string, columns: number, tail = ""): (q: SqlRunner, rows: unknown[][]) => Promise<unknown[]> {
  const text = chunkText(head, columns, tail);
  return async (q, rows) => (await together([...chunks(rows)].map(([n, params]) => q.all(text(n), ...params)))).flat();
}

/** The statement's text for `n` rows, made once per chunk size. */
function chunkText(head: string, columns: number, tail: string): (n: number) => string {
  const byChunk = new Map<number, string>();
  const row = `(${Array.from({ length: columns }, () => "?").join(", ")})`;
  return (n) => {
    let t = byChunk.get(n);
    if (t === undefined) byChunk.set(n, (t = `${head} VALUES ${Array.from({ length: n }, () => row).join(", ")} ${tail}`));
    return t;
  };
}

/** The rows in chunks of a power of two (largest first), each as its size and its parameters in a row. */
function* chunks(rows: unknown[][]): Generator<[number, unknown[]]> {
  for (let i = 0; i < rows.length; ) {
    let n = MAX_ROWS;
    while (n > rows.length - i) n >>= 1;
    const params: unknown[] = [];
    for (let k = i; k < i + n; k++) for (const v of rows[k]!) params.push(v);
    yield [n, params];
    i += n;
  }
}
