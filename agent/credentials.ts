// OAuth tokens per target in the agent's database (table credentials; the connector contract's CredentialStore).
// A write is one statement in its own transaction, so it is committed (synchronous=FULL: on disk) when write()
// returns: a connector writes a rotated refresh token before it uses the new access token, and a process killed
// after that goes on with it. One refresh at a time across the processes of a data directory (the agent,
// `kontobro check`, `pull`, `match`, `connect`): a lock file, as for pull jobs.
import { html } from "hono/html";
import { join } from "node:path";
import type { CredentialStore, StoredCredential } from "../connectors/contract.ts";
import { openDatabase, type Db } from "./db/index.ts";
import { tryJobLock } from "./lock.ts";
import { registerSecret } from "./log.ts";
import { showTime } from "./time.ts";

const COLUMNS = `issuer, client_id AS clientId, refresh_token AS refreshToken, access_token AS accessToken, access_expires_at AS accessExpiresAt,
  scope, state, problem, updated_at AS updatedAt`;

/** How long a process waits for another one's refresh before it gives up (the other holds the lock at most a request). */
const LOCK_WAIT_MS = 60_000;

export function credentialStore(db: Db, dataDir: string, target: string, now: () => number = Date.now): CredentialStore {
  const c = db.$client;
  const get = c.prepare(`SELECT ${COLUMNS} FROM credentials WHERE target = ?1`);
  const put =
    c.prepare(`INSERT INTO credentials (target, issuer, client_id, refresh_token, access_token, access_expires_at, scope, state, problem, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT (target) DO UPDATE SET issuer = ?2, client_id = ?3, refresh_token = ?4, access_token = ?5, access_expires_at = ?6, scope = ?7, state = ?8, problem = ?9, updated_at = ?10`);
  return {
    read() {
      const row = get.get(target) as StoredCredential | null;
      if (row) {
        registerSecret(row.refreshToken ?? undefined);
        registerSecret(row.accessToken ?? undefined);
      }
      return row;
    },
    write(v) {
      registerSecret(v.refreshToken ?? undefined);
      registerSecret(v.accessToken ?? undefined);
      put.run(target, v.issuer, v.clientId, v.refreshToken, v.accessToken, v.accessExpiresAt, v.scope, v.state, v.problem, now());
    },
    async exclusive<T>(fn: () => Promise<T>): Promise<T> {
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
    },
  };
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
export function connectionState(db: Db, target: string): ConnectionState | null {
  try {
    return (
      (db.$client
        .query(`SELECT target, state, problem, scope, updated_at AS updatedAt FROM credentials WHERE target = ?1`)
        .get(target) as ConnectionState | null) ?? null
    );
  } catch {
    return null;
  }
}

/** The status page's line for a target signed in with OAuth: reconnect needed (with the command), or connected. */
export function connectionLine(db: Db, target: string) {
  const s = connectionState(db, target);
  if (!s) return "";
  if (s.state === "reconnect") {
    return html`<p class="connection paused" data-connection="reconnect"><strong>Reconnect needed:</strong> the target no longer accepts kontobro's authorisation
(${s.problem ?? "the refresh token was refused"}, ${showTime(s.updatedAt)}). Nothing is sent or pulled until you run <code>kontobro connect ${target}</code>;
kontobro then goes on by itself.</p>`;
  }
  return html`<p class="connection muted" data-connection="connected">Connected (OAuth${s.scope ? `: ${s.scope}` : ""}); tokens last renewed ${showTime(s.updatedAt)}.</p>`;
}
