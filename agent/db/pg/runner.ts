// Prototype of the storage contract's lowest layer (issue 17; not used by the agent yet): one async way to run
// SQL written once (SQLite text, ?N parameters) on either engine.
//   - SQLite: bun:sqlite's cached statements; a transaction holds the connection (BEGIN IMMEDIATE … COMMIT)
//     and every other statement waits for it, so awaiting inside a transaction never lets another caller's
//     statement slip into it.
//   - PostgreSQL: Bun's SQL client (named prepared statements); every statement runs in a transaction of one
//     tenant (SET LOCAL kontobro.tenant), which row-level security and the tenant_id defaults rely on.
import type { Database } from "bun:sqlite";
import type { SQL, TransactionSQL } from "bun";
import { rowsFromPostgres, toPostgres } from "./dialect.ts";
import { TENANT_SETTING } from "./mirror.ts";

export interface SqlRunner {
  all<T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T[]>;
  get<T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T | null>;
  run(text: string, ...params: unknown[]): Promise<{ changes: number }>;
  /** Everything `fn` runs through `tx` commits together, or nothing does when it throws. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
}

type Params = unknown[];

export function sqliteRunner(db: Database): SqlRunner {
  let tail: Promise<unknown> = Promise.resolve();
  /** Runs `fn` when every earlier caller is done: one user of the connection at a time. */
  const exclusive = <T>(fn: () => Promise<T> | T): Promise<T> => {
    const result = tail.then(fn);
    tail = result.catch(() => {});
    return result;
  };
  const bind = (params: Params) => params as any[];
  const inside: SqlRunner = {
    all: async <T>(text: string, ...p: Params) => db.query(text).all(...bind(p)) as T[],
    get: async <T>(text: string, ...p: Params) => (db.query(text).get(...bind(p)) as T | null) ?? null,
    run: async (text: string, ...p: Params) => ({ changes: db.query(text).run(...bind(p)).changes }),
    transaction: async (fn) => {
      db.run("SAVEPOINT nested");
      try {
        const r = await fn(inside);
        db.run("RELEASE nested");
        return r;
      } catch (e) {
        db.run("ROLLBACK TO nested");
        db.run("RELEASE nested");
        throw e;
      }
    },
  };
  return {
    all: (text, ...p) => exclusive(() => inside.all(text, ...p)),
    get: (text, ...p) => exclusive(() => inside.get(text, ...p)),
    run: (text, ...p) => exclusive(() => inside.run(text, ...p)),
    transaction: (fn) =>
      exclusive(async () => {
        db.run("BEGIN IMMEDIATE");
        try {
          const r = await fn(inside);
          db.run("COMMIT");
          return r;
        } catch (e) {
          db.run("ROLLBACK");
          throw e;
        }
      }),
  };
}

/** The runner of one tenant on a PostgreSQL pool. */
export function postgresRunner(client: SQL, tenant: number): SqlRunner {
  if (!Number.isSafeInteger(tenant) || tenant <= 0) throw new Error(`tenant ${tenant}: a tenant is a positive whole number (tenants.id)`);
  const texts = new Map<string, string>();
  const pgText = (text: string) => {
    let t = texts.get(text);
    if (t === undefined) texts.set(text, (t = toPostgres(text)));
    return t;
  };
  const on = (c: SQL): SqlRunner => ({
    all: async <T>(text: string, ...p: Params) => {
      const res = await c.unsafe(pgText(text), p);
      return rowsFromPostgres<T>(res, res.columns);
    },
    get: async <T>(text: string, ...p: Params) => ((await on(c).all<T>(text, ...p))[0] ?? null) as T | null,
    run: async (text: string, ...p: Params) => ({ changes: (await c.unsafe(pgText(text), p)).affectedRows }),
    transaction: (fn) => (c as TransactionSQL).savepoint((sp) => fn(on(sp))) as Promise<any>,
  });
  const transaction = <T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> =>
    client.begin(async (tx) => {
      await tx`SELECT set_config(${TENANT_SETTING}, ${String(tenant)}, true)`;
      return fn(on(tx));
    }) as Promise<T>;
  return {
    all: (text, ...p) => transaction((tx) => tx.all(text, ...p)),
    get: (text, ...p) => transaction((tx) => tx.get(text, ...p)),
    run: (text, ...p) => transaction((tx) => tx.run(text, ...p)),
    transaction,
  };
}
