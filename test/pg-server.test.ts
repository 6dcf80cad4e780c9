// The PostgreSQL test server (test/pg-server.ts): it starts from nothing, serves a database over loopback,
// hands disjoint rows to two connections claiming with FOR UPDATE SKIP LOCKED, and is gone after stop().
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`PostgreSQL server tests skipped: ${unavailable}`);

let server: PgServer;
beforeAll(async () => {
  if (!unavailable) server = await startPgServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe.skipIf(!!unavailable)("PostgreSQL test server", () => {
  test("serves a fresh database on a loopback port, with a table that keeps what is written", async () => {
    expect(server.url).toMatch(/^postgres:\/\/kontobro@127\.0\.0\.1:\d+\/kontobro_test$/);
    const db = new SQL(server.url);
    try {
      const [{ version, superuser }] = await db`SELECT current_setting('server_version_num')::int AS version,
        (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`;
      expect(version).toBeGreaterThanOrEqual(130000);
      // As production: no superuser (a superuser would pass row-level security by).
      expect(superuser).toBe(false);
      await db`CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL DEFAULT 'pending', owner text)`;
      await db`INSERT INTO jobs (id) SELECT g FROM generate_series(1, 6) g`;
      expect(await db`SELECT count(*)::int AS n FROM jobs`).toEqual([{ n: 6 }]);
    } finally {
      await db.close();
    }
  });

  test("two connections claiming with FOR UPDATE SKIP LOCKED get disjoint rows while both transactions are open", async () => {
    const a = new SQL({ url: server.url, max: 1 });
    const b = new SQL({ url: server.url, max: 1 });
    try {
      let releaseA!: () => void;
      const holdA = new Promise<void>((r) => (releaseA = r));
      let claimedA!: (ids: number[]) => void;
      const aClaimed = new Promise<number[]>((r) => (claimedA = r));
      const claim = (tx: SQL, owner: string) =>
        tx`UPDATE jobs SET state = 'claimed', owner = ${owner}
             WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 4 FOR UPDATE SKIP LOCKED)
             RETURNING id`.then((rows: { id: number }[]) => rows.map((r) => r.id).sort((x, y) => x - y));

      // A claims and keeps its transaction (and row locks) open until B has claimed too.
      const txA = a.begin(async (tx) => {
        claimedA(await claim(tx, "a"));
        await holdA;
      });
      const idsA = await aClaimed;
      const idsB = await b.begin((tx) => claim(tx, "b"));
      // A row A holds cannot be taken by B, not even by waiting for it: NOWAIT fails at once.
      const locked = await b`SELECT id FROM jobs WHERE id = ${idsA[0]!} FOR UPDATE NOWAIT`.then(
        () => "not locked",
        (e: Error) => e.message,
      );
      releaseA();
      await txA;

      expect(idsA).toEqual([1, 2, 3, 4]);
      expect(idsB).toEqual([5, 6]);
      expect(locked).toMatch(/could not obtain lock/);
      expect(await a`SELECT owner, count(*)::int AS n FROM jobs GROUP BY owner ORDER BY owner`).toEqual([
        { owner: "a", n: 4 },
        { owner: "b", n: 2 },
      ]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("another database on the same server is empty and separate", async () => {
    const url = await server.createDatabase("second_db");
    const db = new SQL(url);
    try {
      expect(await db`SELECT to_regclass('jobs') AS t`).toEqual([{ t: null }]);
    } finally {
      await db.close();
    }
  });

  test("stop() ends the server: a new connection is refused", async () => {
    const own = await startPgServer({ database: "short_lived" });
    const before = new SQL({ url: own.url, max: 1, connectionTimeout: 5 });
    expect(await before`SELECT 1 AS one`).toEqual([{ one: 1 }]);
    await before.close();
    await own.stop();
    await own.stop();
    const after = new SQL({ url: own.url, max: 1, connectionTimeout: 5 });
    const outcome = await after`SELECT 1`.then(
      () => "connected",
      (e: Error) => e.message,
    );
    await after.close().catch(() => {});
    expect(outcome).not.toBe("connected");
  }, 120_000);
});
