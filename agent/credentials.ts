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
import { AsyncLocalStorage } from "node:async_hooks";
import { html } from "hono/html";
import { join } from "node:path";
import type { CredentialStore, StoredCredential } from "../connectors/contract.ts";
import { openDatabase, type Db } from "./db/index.ts";
import { sqliteRunner, type SqlRunner } from "./db/pg/runner.ts";
import { tryJobLock } from "./lock.ts";
import { registerSecret } from "./log.ts";
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

/** How long a process waits for another one's refresh before it gives up (the other holds the lock at most a request). */
const LOCK_WAIT_MS = 60_000;

/** How one refresh at a time is made sure of: a lock file in the data directory (SQLite), or the row lock (PostgreSQL). */
export type RefreshLock = { lockFile: string } | "row";

/** The target's credentials on `runner` (the SQLite file's, or a tenant's on PostgreSQL). */
export function storedCredentials(runner: SqlRunner, target: string, lock: RefreshLock, now: () => number = Date.now): CredentialStore {
  /** The refresh's transaction while `exclusive` runs one (PostgreSQL): its reads and writes go through it. */
  const refreshing = new AsyncLocalStorage<SqlRunner>();
  const on = () => refreshing.getStore() ?? runner;
  return {
    async read() {
      const row = await on().get<StoredCredential>(READ, target);
      if (row) {
        registerSecret(row.refreshToken ?? undefined);
        registerSecret(row.accessToken ?? undefined);
      }
      return row;
    },
    async write(v) {
      if (v.issuer === PLACEHOLDER_ISSUER) throw new Error(`a credential of ${target} names no token endpoint (issuer)`);
      registerSecret(v.refreshToken ?? undefined);
      registerSecret(v.accessToken ?? undefined);
      await on().run(
        WRITE,
        target,
        v.issuer,
        v.clientId,
        v.refreshToken,
        v.accessToken,
        v.accessExpiresAt,
        v.scope,
        v.state,
        v.problem,
        now(),
      );
    },
    exclusive: <T>(fn: () => Promise<T>) =>
      lock === "row" ? underRowLock(runner, target, now, (tx) => refreshing.run(tx, fn)) : underLockFile(lock.lockFile, target, fn),
  };
}

/** PostgreSQL: `fn` in one transaction holding the target's credentials row; committed also when `fn` throws. */
async function underRowLock<T>(runner: SqlRunner, target: string, now: () => number, fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
  const outcome = await runner.transaction(async (tx) => {
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
  if ("error" in outcome) throw outcome.error;
  return outcome.ok;
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

/** A tenant's credentials on PostgreSQL (`runner` is the tenant's): one refresh at a time across all its workers. */
export function tenantCredentialStore(runner: SqlRunner, target: string, now: () => number = Date.now): CredentialStore {
  return storedCredentials(runner, target, "row", now);
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
