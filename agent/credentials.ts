// OAuth tokens per target in the agent's database (table credentials; the connector contract's CredentialStore),
// the same statements on both engines (SqlRunner). A write outside a refresh is one statement in its own transaction,
// committed (SQLite synchronous=FULL: on disk) when it resolves: a connector writes a rotated refresh token before it
// uses the new access token, and a process killed after that goes on with it. One refresh at a time per target:
//   - SQLite, across the processes of a data directory (the agent, `kontobro check`, `pull`, `match`, `connect`): a
//     lock file, as for pull jobs; each write commits at once.
//   - PostgreSQL, across every worker of the tenant: the refresh runs in one transaction holding the credentials row
//     FOR UPDATE (a row made for the purpose if there is none yet, never seen by anyone else), and re-reads it after
//     taking it: a worker that waited finds the tokens the other one stored. What the refresh writes is committed
//     before `exclusive` resolves, so before the new access token is used, and also when the refresh throws (the
//     reconnect state a refused refresh token leads to is kept). The transaction stays open for one token request: a
//     hosted worker's connections end a transaction idle for dead_after / 2, which a target's request_timeout_ms
//     must stay under anyway (tenant-runtime.ts warns); a token request made for a push passes the worker's fence as any other.
//     A refresh token rotates with every use: once the identity server has answered, the one stored is no longer
//     accepted. When the transaction is lost before its commit (the connection dropped: a restart of the server, a
//     backend ended), what the refresh wrote is stored again on fresh connections (`restore`), a few times within
//     seconds; if the database still does not take it, this process keeps it in memory (reads return it, so the
//     target goes on working here), tries again every few seconds until stored, and says in its log that the target
//     needs a reconnect should it stop before. The store again only replaces the token this refresh used (or its
//     own): a reconnect or a newer refresh stored meanwhile is kept.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { html } from "hono/html";
import { join } from "node:path";
import type { CredentialStore, StoredCredential } from "../connectors/contract.ts";
import { openDatabase, type Db } from "./db/index.ts";
import { sqliteRunner, type SqlRunner } from "./db/pg/runner.ts";
import { tryJobLock } from "./lock.ts";
import { registerSecret, type Logger } from "./log.ts";
import { showTime } from "./time.ts";

/** A refresh's own row, made only to be locked while nothing is stored yet (PostgreSQL); never committed. */
const PLACEHOLDER_ISSUER = "";

const READ = `SELECT issuer, client_id AS clientId, refresh_token AS refreshToken, access_token AS accessToken,
  access_expires_at AS accessExpiresAt, scope, state, problem, updated_at AS updatedAt
  FROM credentials WHERE target = ?1 AND issuer <> ''`;
const WRITE = `INSERT INTO credentials (target, issuer, client_id, refresh_token, access_token, access_expires_at, scope, state, problem, updated_at)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
  ON CONFLICT (target) DO UPDATE SET issuer = ?2, client_id = ?3, refresh_token = ?4, access_token = ?5, access_expires_at = ?6,
  scope = ?7, state = ?8, problem = ?9, updated_at = ?10`;
const MAKE_PLACEHOLDER = `INSERT INTO credentials (target, issuer, client_id, state, updated_at) VALUES (?1, '', '', 'connected', ?2)
  ON CONFLICT (target) DO NOTHING`;
const LOCK_ROW = `SELECT target FROM credentials WHERE target = ?1 FOR UPDATE`;
const DROP_PLACEHOLDER = `DELETE FROM credentials WHERE target = ?1 AND issuer = ''`;
const STORED_REFRESH_TOKEN = `SELECT refresh_token AS refreshToken FROM credentials WHERE target = ?1 AND issuer <> ''`;
// A refresh's writes stored again after its transaction was lost: only over the refresh token stored when it began (?11)
// or the newer one this process kept in memory then (?12), both rotated away by now, or its own (?4: the commit did
// happen); never over a reconnect or a later refresh.
const WRITE_AGAIN = `${WRITE}
  WHERE credentials.refresh_token IS NOT DISTINCT FROM ?11 OR credentials.refresh_token IS NOT DISTINCT FROM ?12
     OR credentials.refresh_token IS NOT DISTINCT FROM ?4`;

/** How long a process waits for another one's refresh before it gives up (the other holds the lock at most a request). */
const LOCK_WAIT_MS = 60_000;

/** How one refresh at a time is made sure of: a lock file in the data directory (SQLite), or the row lock (PostgreSQL). */
export type RefreshLock = { lockFile: string } | "row";

/** What a refresh whose transaction was lost (PostgreSQL) does with what it wrote; see the top of this file. */
export interface RestoreOptions {
  /** Where it says what happened (the tenant's log on a hosted worker). */
  log?: Pick<Logger, "info" | "warn" | "error">;
  /** The command that signs the target in again, for the log: `kontobro tenant connect <slug> <target>`. */
  signIn?: string;
  /** Waits before each store again on a fresh connection (default 0, 0.25, 1, 2, 4 s). */
  delaysMs?: number[];
  /** Then, kept in memory: how often it is tried again until stored (default 5 s). */
  everyMs?: number;
}

const RESTORE_DELAYS_MS = [0, 250, 1_000, 2_000, 4_000];

/** The refresh tokens a lost refresh's tokens may be stored over (WRITE_AGAIN's ?11 and ?12). */
type Replaces = [string | null, string | null];
const RESTORE_EVERY_MS = 5_000;

/** A refresh's transaction (PostgreSQL), while `exclusive` runs one: its reads and writes go through it. */
interface Refresh {
  tx: SqlRunner;
  /** What it wrote last (or tried to: a write that failed took the transaction with it). */
  wrote: StoredCredential | null;
}

const valuesOf = (target: string, v: Omit<StoredCredential, "updatedAt">, at: number) => [
  target,
  v.issuer,
  v.clientId,
  v.refreshToken,
  v.accessToken,
  v.accessExpiresAt,
  v.scope,
  v.state,
  v.problem,
  at,
];

/** The target's credentials on `runner` (the SQLite file's, or a tenant's on PostgreSQL). */
export function storedCredentials(
  runner: SqlRunner,
  target: string,
  lock: RefreshLock,
  now: () => number = Date.now,
  restore: RestoreOptions = {},
): CredentialStore {
  const refreshing = new AsyncLocalStorage<Refresh>();
  const on = () => refreshing.getStore()?.tx ?? runner;
  /** A refresh's writes the database did not take (PostgreSQL): newer than what it holds, so read from here. */
  let unsaved: { value: StoredCredential; replaces: Replaces } | null = null;
  const signIn = restore.signIn ?? `kontobro tenant connect <tenant> ${target}`;
  /** This store's tokens in the log's redaction: the latest of each only (they rotate). */
  const slot = `credentials:${randomUUID()}`;

  /** Stores `value` over `replaces` on a fresh connection: true, or false when newer tokens were stored meanwhile. */
  const storeAgain = async (value: StoredCredential, replaces: Replaces): Promise<boolean> => {
    const { changes } = await runner.run(WRITE_AGAIN, ...valuesOf(target, value, now()), ...replaces);
    if (changes === 0)
      restore.log?.info("the tokens of a lost token refresh were not stored: newer ones (a reconnect) were stored meanwhile", {
        target,
      });
    return changes > 0;
  };
  const keepTrying = (kept: NonNullable<typeof unsaved>) => {
    const attempt = async () => {
      if (unsaved !== kept) return; // stored by a later refresh, or replaced by newer ones kept
      try {
        if (await storeAgain(kept.value, kept.replaces))
          restore.log?.warn(
            kept.value.state === "reconnect"
              ? `the reconnect state kept in memory is stored now; nothing is sent to ${target} until you run \`${signIn}\``
              : "the rotated OAuth tokens kept in memory are stored now; no reconnect is needed",
            { target },
          );
        if (unsaved === kept) unsaved = null;
      } catch {
        setTimeout(attempt, restore.everyMs ?? RESTORE_EVERY_MS).unref?.(); // still not: again later
      }
    };
    setTimeout(attempt, restore.everyMs ?? RESTORE_EVERY_MS).unref?.();
  };
  /** After a refresh's transaction was lost: what it wrote is stored again, or kept in memory (see the top). */
  const recover = async (value: StoredCredential, replaces: Replaces, lost: unknown): Promise<void> => {
    let last: unknown = lost;
    for (const delay of restore.delaysMs ?? RESTORE_DELAYS_MS) {
      if (delay > 0) await Bun.sleep(delay);
      try {
        if (await storeAgain(value, replaces))
          restore.log?.warn(
            value.state === "reconnect"
              ? `a token refresh lost its database transaction before the commit; the reconnect state it wrote was stored again (the identity server refused the refresh token: ${value.problem}). Nothing is sent to ${target} until you run \`${signIn}\``
              : "a token refresh lost its database transaction before the commit; its rotated tokens were stored again",
            { target, error: lost },
          );
        return;
      } catch (e) {
        last = e;
      }
    }
    const kept = { value: { ...value, updatedAt: now() }, replaces };
    unsaved = kept;
    keepTrying(kept);
    restore.log?.error(
      value.state === "reconnect"
        ? `${target}'s identity server refused the refresh token (${value.problem}), and the reconnect state could not be stored (the database does not answer); this worker keeps it in memory and stores it as soon as the database answers. Nothing is sent to ${target} until you run \`${signIn}\``
        : `the OAuth refresh token ${target}'s identity server just rotated could not be stored (the database does not answer); this worker keeps it in memory, goes on with it and stores it as soon as the database answers. The one stored is no longer accepted: if this worker stops before, ${target} needs a reconnect: run \`${signIn}\``,
      { target, error: last },
    );
  };

  return {
    async read() {
      const row = refreshing.getStore() || !unsaved ? await on().get<StoredCredential>(READ, target) : null;
      const c = unsaved?.value ?? row;
      if (c) {
        registerSecret(c.refreshToken ?? undefined, `${slot}:refresh`);
        registerSecret(c.accessToken ?? undefined, `${slot}:access`);
      }
      return c;
    },
    async write(v) {
      if (v.issuer === PLACEHOLDER_ISSUER) throw new Error(`a credential of ${target} names no token endpoint (issuer)`);
      registerSecret(v.refreshToken ?? undefined, `${slot}:refresh`);
      registerSecret(v.accessToken ?? undefined, `${slot}:access`);
      const refresh = refreshing.getStore();
      if (!refresh) {
        await runner.run(WRITE, ...valuesOf(target, v, now()));
        return;
      }
      refresh.wrote = { ...v, updatedAt: now() };
      try {
        await refresh.tx.run(WRITE, ...valuesOf(target, v, now()));
      } catch {
        // The transaction is lost with it (the connection dropped): `exclusive` stores it again once the refresh is done.
      }
    },
    exclusive: <T>(fn: () => Promise<T>) => {
      if (lock !== "row") return underLockFile(lock.lockFile, target, fn);
      const refresh: Refresh = { tx: runner, wrote: null };
      let replaces: Replaces = [null, null];
      /** `fn`'s outcome once it has run to its end (the transaction may be lost while it still waits for its answer). */
      let done: Promise<{ ok: T } | { error: unknown }> | null = null;
      return underRowLock(runner, target, now, async (tx) => {
        refresh.tx = tx;
        const stored = (await tx.get<{ refreshToken: string | null }>(STORED_REFRESH_TOKEN, target))?.refreshToken ?? null;
        // Tokens kept in memory are newer than the stored ones: this refresh uses and replaces those.
        replaces = [stored, unsaved ? unsaved.value.refreshToken : stored];
        done = refreshing.run(refresh, fn).then(
          (ok) => ({ ok }),
          (error) => ({ error }),
        );
        const outcome = await done;
        if ("error" in outcome) throw outcome.error;
        return outcome.ok;
      }).then(
        // Committed, also when the refresh threw (a refused refresh token: the reconnect state it wrote is stored).
        (outcome) => {
          if (refresh.wrote) unsaved = null; // newer than anything kept in memory
          if ("error" in outcome) throw outcome.error;
          return outcome.ok;
        },
        async (lost) => {
          if (!done) throw lost; // lost before the refresh began: nothing asked of the identity server
          // The refresh runs to its end (its answer may still be on the way); its write into the lost transaction fails.
          const outcome = await done;
          // Lost before its commit after the refresh wrote: the identity server has rotated the refresh token already.
          if (!refresh.wrote) throw "error" in outcome ? outcome.error : lost;
          await recover(refresh.wrote, replaces, lost);
          if ("error" in outcome) throw outcome.error;
          return outcome.ok;
        },
      );
    },
  };
}

/**
 * PostgreSQL: `fn` in one transaction holding the target's credentials row; committed also when `fn` throws. Resolves
 * with `fn`'s outcome once committed; rejects only when the transaction was lost (not committed).
 */
function underRowLock<T>(
  runner: SqlRunner,
  target: string,
  now: () => number,
  fn: (tx: SqlRunner) => Promise<T>,
): Promise<{ ok: T } | { error: unknown }> {
  return runner.transaction(async (tx) => {
    await tx.run(MAKE_PLACEHOLDER, target, now());
    await tx.lockForUpdate(LOCK_ROW, target);
    let result: { ok: T } | { error: unknown };
    try {
      result = { ok: await fn(tx) };
    } catch (error) {
      result = { error };
    }
    try {
      await tx.run(DROP_PLACEHOLDER, target);
    } catch (e) {
      // The transaction itself failed (a statement of `fn`'s, or the connection): the first error says why.
      throw "error" in result ? result.error : e;
    }
    return result;
  });
}

/** SQLite: `fn` while this process holds the target's refresh lock file; each write commits at once. */
async function underLockFile<T>(dataDir: string, target: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let lock = tryJobLock(dataDir, target, "oauth-refresh");
  while (!lock) {
    if (Date.now() > deadline) throw new Error(`another kontobro process has held the token refresh of ${target} for over a minute`);
    await Bun.sleep(25);
    lock = tryJobLock(dataDir, target, "oauth-refresh");
  }
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** The target's credentials in the SQLite file of the data directory `dataDir`. */
export function credentialStore(db: Db, dataDir: string, target: string, now: () => number = Date.now): CredentialStore {
  return storedCredentials(sqliteRunner(db.$client), target, { lockFile: dataDir }, now);
}

/**
 * A tenant's credentials on PostgreSQL (`runner` is the tenant's): one refresh at a time across all its workers; a
 * refresh whose transaction is lost stores its rotated tokens again (`restore`: where it says so, and the command
 * that signs the target in again).
 */
export function tenantCredentialStore(
  runner: SqlRunner,
  target: string,
  now: () => number = Date.now,
  restore: RestoreOptions = {},
): CredentialStore {
  return storedCredentials(runner, target, "row", now, restore);
}

/** A store that opens the data directory's database only when first used (commands that run without it). */
export function lazyCredentialStore(dataDir: string, target: string, busyTimeoutMs?: number): CredentialStore {
  let store: CredentialStore | null = null;
  const open = () => (store ??= credentialStore(openDatabase(join(dataDir, "kontobro.db"), { busyTimeoutMs }), dataDir, target));
  return { read: () => open().read(), write: (v) => open().write(v), exclusive: (fn) => open().exclusive(fn) };
}

export interface ConnectionState {
  target: string;
  state: "connected" | "reconnect";
  problem: string | null;
  scope: string | null;
  updatedAt: number;
}

/** The stored state of a target's authorisation, or null (never connected, or no table yet). */
export function connectionState(runner: SqlRunner, target: string): Promise<ConnectionState | null> {
  return runner.get<ConnectionState>(
    `SELECT target, state, problem, scope, updated_at AS updatedAt FROM credentials WHERE target = ?1`,
    target,
  );
}

/**
 * The status page's line for a target signed in with OAuth: reconnect needed (with `reconnect`, the command that signs
 * in again: `kontobro connect <target>`, or for a hosted tenant `kontobro tenant connect <slug> <target>`), or connected.
 */
export async function connectionLine(runner: SqlRunner, target: string, reconnect = `kontobro connect ${target}`) {
  const s = await connectionState(runner, target);
  if (!s) return "";
  if (s.state === "reconnect") {
    return html`<p class="connection paused" data-connection="reconnect"><strong>Reconnect needed:</strong> the target no longer accepts kontobro's authorisation
(${s.problem ?? "the refresh token was refused"}, ${showTime(s.updatedAt)}). Nothing is sent or pulled until you run <code>${reconnect}</code>;
kontobro then goes on by itself.</p>`;
  }
  return html`<p class="connection muted" data-connection="connected">Connected (OAuth${s.scope ? `: ${s.scope}` : ""}); tokens last renewed ${showTime(s.updatedAt)}.</p>`;
}
