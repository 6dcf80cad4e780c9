// The storage contract's lowest layer (issue 17): one async way to run SQL written once (SQLite text, ?N
// parameters) on either engine.
//   - SQLite: statements prepared once per text and kept; a transaction holds the connection (BEGIN IMMEDIATE …
//     COMMIT) and every other statement of the runner waits for it. A transaction starts on a fresh turn of the
//     event loop and awaits nothing but its own statements (checked: one that does is rolled back at the next timer
//     and its later statements fail), so it commits before the event loop runs anything else: code that still uses
//     the connection directly (the status page, other readers and writers not yet on the runner) can never see an
//     open transaction or slip into one.
//   - PostgreSQL: Bun's SQL client (named prepared statements); every statement runs in a transaction of one
//     tenant (SET LOCAL kontobro.tenant), which row-level security and the tenant_id defaults rely on.
import type { Database, Statement } from "bun:sqlite";
import type { SQL, TransactionSQL } from "bun";
import { type WalFailure, WalSync } from "../wal-sync.ts";
import { rowsFromPostgres, toPostgres } from "./dialect.ts";
import { TENANT_SETTING } from "./tenancy.ts";

export interface SqlRunner {
  all<T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T[]>;
  get<T = Record<string, unknown>>(text: string, ...params: unknown[]): Promise<T | null>;
  run(text: string, ...params: unknown[]): Promise<{ changes: number }>;
  /**
   * A SELECT … FOR UPDATE in a transaction: the rows it reads stay locked until the transaction ends, so writers
   * of the same rows take turns (PostgreSQL, many workers). Returns how many rows it locked. SQLite runs nothing
   * and returns null: its write transaction holds the whole database already.
   */
  lockForUpdate(text: string, ...params: unknown[]): Promise<number | null>;
  /** Everything `fn` runs through `tx` commits together, or nothing does when it throws. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /**
   * A transaction (a dispatcher round) that resolves once committed, with `durable`, which resolves once the
   * commit would survive a power cut. Nothing may act on what it wrote (send under its leases, report its
   * outcomes) before `durable`. SQLite syncs the WAL off the event loop (agent/db/wal-sync.ts); PostgreSQL is
   * durable at commit. Inside another transaction it is part of that one.
   */
  transactionDurableLater<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<{ result: T; durable: Promise<void> }>;
}

/** A SQLite connection's runner: also closes the connection (and the WAL file it keeps open for durable commits). */
export interface SqliteRunner extends SqlRunner {
  close(): void;
  /** A failed fsync of the WAL on this connection (agent/db/wal-sync.ts): nothing more is made durable until a restart. */
  walFailure(): WalFailure | null;
}

type Params = unknown[];

/**
 * Statements of one transaction that do not need each other's results, sent together: on PostgreSQL they are
 * pipelined on the transaction's connection (one round trip; the server runs them in the order they were started),
 * on SQLite they run in that order as always. Waits for all of them, so that none is still running when the
 * transaction ends (a statement after it would run outside it), then throws the first failure, if any.
 */
export async function together<T extends readonly unknown[]>(work: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** Statements kept per connection; far more than the texts the agent has, so only built texts ever leave. */
const MAX_STATEMENTS = 1000;

const runners = new WeakMap<Database, SqliteRunner>();

/**
 * The runner of a SQLite connection: one per connection (every caller gets the same one), so that all of them
 * wait for each other's transactions.
 */
export function sqliteRunner(db: Database): SqliteRunner {
  let runner = runners.get(db);
  if (!runner) runners.set(db, (runner = newSqliteRunner(db)));
  return runner;
}

function newSqliteRunner(db: Database): SqliteRunner {
  const statements = new Map<string, Statement>();
  /** bun:sqlite's own cache (db.query) keeps 20 statements: fewer than the outbox alone runs in a round. */
  const statement = (text: string): Statement => {
    let st = statements.get(text);
    if (st === undefined) {
      if (statements.size >= MAX_STATEMENTS) {
        const [oldest, old] = statements.entries().next().value!;
        statements.delete(oldest);
        old.finalize();
      }
      statements.set(text, (st = db.prepare(text)));
    }
    return st;
  };
  let tail: Promise<unknown> = Promise.resolve();
  /** Runs `fn` when every earlier caller is done: one user of the connection at a time. */
  const exclusive = <T>(fn: () => Promise<T> | T): Promise<T> => {
    // Rejected, not thrown: a caller's .catch (the dispatcher putting a round's outcomes back) must see it.
    if (open)
      return Promise.reject(
        new Error(
          "SQL run on the runner itself inside one of its transactions (it would wait for that transaction forever): use the transaction's runner (tx).",
        ),
      );
    const result = tail.then(fn);
    tail = result.catch(() => {});
    return result;
  };
  let open = false;
  let walSync: WalSync | undefined;
  const bind = (params: Params) => params as any[];
  /**
   * The runner a transaction's function gets. Once the transaction has ended (committed, or rolled back because it
   * awaited something else) its statements fail: they would run outside it, or inside the next caller's.
   */
  const transactionRunner = (ended: () => string | null): SqlRunner => {
    const check = () => {
      const why = ended();
      if (why !== null) throw new Error(why);
    };
    const use = (text: string): Statement => {
      check();
      return statement(text);
    };
    const tx: SqlRunner = {
      all: async <T>(text: string, ...p: Params) => use(text).all(...bind(p)) as T[],
      get: async <T>(text: string, ...p: Params) => (use(text).get(...bind(p)) as T | null) ?? null,
      run: async (text: string, ...p: Params) => ({ changes: use(text).run(...bind(p)).changes }),
      lockForUpdate: async () => null,
      transaction: async (fn) => {
        check();
        db.run("SAVEPOINT nested");
        try {
          const r = await fn(tx);
          check();
          db.run("RELEASE nested");
          return r;
        } catch (e) {
          if (ended() === null) {
            db.run("ROLLBACK TO nested");
            db.run("RELEASE nested");
          }
          throw e;
        }
      },
      transactionDurableLater: async (fn) => ({ result: await tx.transaction(fn), durable: DURABLE }),
    };
    return tx;
  };
  /**
   * BEGIN IMMEDIATE … COMMIT around `fn`, on a fresh turn of the event loop and within that turn. `durableLater`:
   * it commits with synchronous=NORMAL and its WAL is synced off the event loop (agent/db/wal-sync.ts). Once it has
   * committed it resolves: a failure after COMMIT (restoring FULL, the WAL's fsync) only rejects `durable`.
   */
  const immediate = async <T>(fn: (tx: SqlRunner) => Promise<T>, durableLater: boolean) => {
    await nextTurn();
    /** The transaction's state; an object, as callbacks change it while the function awaits. */
    const t: { state: "open" | "spanned" | "ended" } = { state: "open" };
    const tx = transactionRunner(() => (t.state === "open" ? null : t.state === "spanned" ? SPANNED : ENDED));
    // After a failed fsync no durable-later transaction begins: its commit could never be made durable, and a round
    // that leased, found its leases not durable and released them unsent wrote an attempt for each, every round.
    const sync = durableLater ? (walSync ??= new WalSync(db)) : null;
    sync?.assertHealthy();
    const relaxed = sync?.relax() ?? null;
    /** Ends the transaction without committing (at most once). */
    const rollBack = () => {
      open = false;
      if (db.inTransaction) db.run("ROLLBACK");
      relaxed?.(false);
    };
    let abandon: (e: Error) => void = () => {};
    const abandoned = new Promise<never>((_, reject) => (abandon = reject));
    // Anything else the event loop runs while the transaction is open would see it, or write into it: the first
    // timer or immediate after this turn rolls it back at once, before any timer the function set itself. (Not
    // before a timer due earlier that was set before the transaction began, nor work returning from another
    // thread ahead of the timers: such code still finds it open. Awaiting only its own statements is the rule.)
    const onSpan = () => {
      if (t.state !== "open") return;
      t.state = "spanned";
      rollBack();
      abandon(new Error(SPANNED));
    };
    const timer = setTimeout(onSpan, 0);
    const immediateWatch = setImmediate(onSpan);
    try {
      try {
        db.run("BEGIN IMMEDIATE");
      } catch (e) {
        t.state = "ended";
        relaxed?.(false);
        throw e;
      }
      open = true;
      let result: T;
      try {
        result = await Promise.race([fn(tx), abandoned]);
        if (t.state !== "open") throw new Error(SPANNED);
        t.state = "ended";
        db.run("COMMIT");
        open = false;
      } catch (e) {
        if (t.state !== "spanned") {
          t.state = "ended";
          rollBack();
        }
        throw e;
      }
      return { result, durable: afterCommit(relaxed) };
    } finally {
      clearTimeout(timer);
      clearImmediate(immediateWatch);
    }
  };
  /** Single statements outside any transaction (each its own, in turn with the transactions). */
  const single = transactionRunner(() => null);
  return {
    all: (text, ...p) => exclusive(() => single.all(text, ...p)),
    get: (text, ...p) => exclusive(() => single.get(text, ...p)),
    run: (text, ...p) => exclusive(() => single.run(text, ...p)),
    lockForUpdate: async () => null,
    transaction: (fn) => exclusive(async () => (await immediate(fn, false)).result),
    transactionDurableLater: (fn) => exclusive(() => immediate(fn, true)),
    walFailure: () => walSync?.failure ?? null,
    close: () => {
      walSync?.close();
      for (const st of statements.values()) st.finalize();
      statements.clear();
      db.close();
    },
  };
}

const DURABLE = Promise.resolve();
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** After COMMIT nothing throws: what fails there (restoring FULL, the WAL's fsync) rejects `durable` only. */
function afterCommit(relaxed: ((committed: boolean) => Promise<void>) | null): Promise<void> {
  if (relaxed === null) return DURABLE;
  try {
    return relaxed(true);
  } catch (e) {
    return Promise.reject(e);
  }
}

const ENDED = "This transaction has ended: its runner (tx) cannot be used after it committed or rolled back.";

const SPANNED =
  "A SQLite transaction awaited something other than its own statements (a timer, a request, another runner), so it was rolled back: " +
  "a transaction holds the connection, and code using the connection directly would have run inside it. Do that work before or after the transaction.";

/** The runner of one tenant on a PostgreSQL pool. */
export function postgresRunner(client: SQL, tenant: number): SqlRunner {
  if (!Number.isSafeInteger(tenant) || tenant <= 0) throw new Error(`tenant ${tenant}: a tenant is a positive whole number (tenants.id)`);
  const pgText = textCache();
  const transaction = <T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> =>
    client.begin(async (tx) => {
      await tx`SELECT set_config(${TENANT_SETTING}, ${String(tenant)}, true)`;
      return fn(runnerOn(tx, pgText));
    }) as Promise<T>;
  return {
    all: (text, ...p) => transaction((tx) => tx.all(text, ...p)),
    get: (text, ...p) => transaction((tx) => tx.get(text, ...p)),
    run: (text, ...p) => transaction((tx) => tx.run(text, ...p)),
    lockForUpdate: (text, ...p) => transaction((tx) => tx.lockForUpdate(text, ...p)),
    transaction,
    // PostgreSQL's commit is durable when it returns.
    transactionDurableLater: async (fn) => ({ result: await transaction(fn), durable: Promise.resolve() }),
  };
}

/**
 * Inside a transaction that walks the tenants (a restore noticed, agent/db/pg/restore-watch.ts): names `tenant` for
 * the rest of the transaction, or until the next call names another, and returns a runner of its statements.
 */
export async function asTenant(tx: TransactionSQL, tenant: number): Promise<SqlRunner> {
  await tx`SELECT set_config(${TENANT_SETTING}, ${String(tenant)}, true)`;
  return runnerOn(tx, textCache());
}

/** SQLite text → PostgreSQL text, translated once per text. */
function textCache(): (text: string) => string {
  const texts = new Map<string, string>();
  return (text) => {
    let t = texts.get(text);
    if (t === undefined) texts.set(text, (t = toPostgres(text)));
    return t;
  };
}

/** Statements on a connection already in a tenant's transaction; a nested transaction is a savepoint. */
function runnerOn(c: SQL, pgText: (text: string) => string): SqlRunner {
  return {
    all: async <T>(text: string, ...p: Params) => {
      const res = await c.unsafe(pgText(text), p);
      return rowsFromPostgres<T>(res, res.columns);
    },
    get: async <T>(text: string, ...p: Params) => ((await runnerOn(c, pgText).all<T>(text, ...p))[0] ?? null) as T | null,
    run: async (text: string, ...p: Params) => ({ changes: (await c.unsafe(pgText(text), p)).affectedRows }),
    lockForUpdate: async (text: string, ...p: Params) => (await c.unsafe(pgText(text), p)).length,
    transaction: (fn) => (c as TransactionSQL).savepoint((sp) => fn(runnerOn(sp, pgText))) as Promise<any>,
    transactionDurableLater: async (fn) => ({ result: await runnerOn(c, pgText).transaction(fn), durable: Promise.resolve() }),
  };
}
