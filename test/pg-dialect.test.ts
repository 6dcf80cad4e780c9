// SQL written once: the SQLite text of a statement as PostgreSQL runs it (agent/db/pg/dialect.ts), and
// PostgreSQL's rows read as SQLite's. Pure; test/pg-schema.test.ts runs such statements on both engines.
import { describe, expect, test } from "bun:test";
import { rowsFromPostgres, toPostgres } from "../agent/db/pg/dialect.ts";

describe("toPostgres", () => {
  test("numbered parameters become $N, reused numbers stay the same parameter", () => {
    expect(toPostgres("UPDATE deliveries SET next_attempt_at = ?2, updated_at = ?2 WHERE caused_by = ?1 AND status = 'needs_action'")).toBe(
      "UPDATE deliveries SET next_attempt_at = $2, updated_at = $2 WHERE caused_by = $1 AND status = 'needs_action'",
    );
  });

  test("a bare ? takes the next number after the highest so far, as in SQLite", () => {
    expect(toPostgres("SELECT 1 WHERE a = ? AND b = ?3 AND c = ?")).toBe("SELECT 1 WHERE a = $1 AND b = $3 AND c = $4");
  });

  test("question marks in string literals, quoted names and comments are not parameters", () => {
    const text = `SELECT 'why?' AS "what?", 'it''s ?1' FROM t -- ?2 in a comment\nWHERE x = ?1`;
    expect(toPostgres(text)).toBe(`SELECT 'why?' AS "what?", 'it''s ?1' FROM t -- ?2 in a comment\nWHERE x = $1`);
  });

  test("every ON CONFLICT target starts with the tenant; DO NOTHING without a target stays as it is", () => {
    expect(
      toPostgres("INSERT INTO links (target, entity, key) VALUES (?1, ?2, ?3) ON CONFLICT (target, entity, key) DO UPDATE SET x = 1"),
    ).toBe("INSERT INTO links (target, entity, key) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, target, entity, key) DO UPDATE SET x = 1");
    expect(toPostgres("INSERT INTO settings (name, value) VALUES (?1, ?2)\n  on conflict(name) DO NOTHING")).toBe(
      "INSERT INTO settings (name, value) VALUES ($1, $2)\n  ON CONFLICT (tenant_id, name) DO NOTHING",
    );
    expect(toPostgres("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING")).toBe("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING");
    expect(toPostgres("SELECT 'ON CONFLICT (x)' AS note")).toBe("SELECT 'ON CONFLICT (x)' AS note");
  });

  test("camelCase aliases are quoted so PostgreSQL keeps their case; types in CAST and lower-case aliases are not", () => {
    expect(toPostgres("SELECT d.event_seq AS eventSeq, e.payload AS payload, CAST(?1 AS BIGINT) AS t, CAST(x as integer) FROM d")).toBe(
      'SELECT d.event_seq AS "eventSeq", e.payload AS payload, CAST($1 AS BIGINT) AS t, CAST(x as integer) FROM d',
    );
  });

  test("json_each over a JSON array parameter becomes json_array_elements_text, whose rows are also called value", () => {
    expect(toPostgres("SELECT key FROM records WHERE entity = ?1 AND key IN (SELECT value FROM json_each(?2))")).toBe(
      "SELECT key FROM records WHERE entity = $1 AND key IN (SELECT value FROM json_array_elements_text(CAST(CAST($2 AS text) AS json)))",
    );
  });

  test("SQLite's planner hints are dropped: INDEXED BY and a unary + before a column; a binary + stays", () => {
    expect(
      toPostgres("UPDATE deliveries INDEXED BY deliveries_caused_by SET n = n + 1, m = m+1 WHERE a = ?1 AND +entity = 'invoice'"),
    ).toBe("UPDATE deliveries SET n = n + 1, m = m+1 WHERE a = $1 AND entity = 'invoice'");
  });

  test("an unterminated literal is an error that shows where", () => {
    expect(() => toPostgres("SELECT 'oops FROM t")).toThrow("unterminated string in SQL: 'oops FROM t");
  });
});

describe("rowsFromPostgres", () => {
  test("int8 and numeric columns become numbers, others are left alone", () => {
    const rows = [{ seq: "1796162344790", n: "3", total: "12.5", name: "7", flag: 1 }];
    const columns = [
      { name: "seq", type: 20 },
      { name: "n", type: 20 },
      { name: "total", type: 1700 },
      { name: "name", type: 25 },
      { name: "flag", type: 21 },
    ];
    expect(rowsFromPostgres(rows, columns)).toEqual([{ seq: 1796162344790, n: 3, total: 12.5, name: "7", flag: 1 }]);
  });

  test("an int8 beyond 2^53 is an error rather than a silently different number", () => {
    expect(() => rowsFromPostgres([{ id: "9007199254740993" }], [{ name: "id", type: 20 }])).toThrow("id: 9007199254740993 is beyond");
  });
});
