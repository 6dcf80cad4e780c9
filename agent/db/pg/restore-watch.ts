// Noticing, on PostgreSQL, that the database was restored or moved (issue 17; agent/db/pg/README.md "Restores").
// There is no data directory beside it to keep high-water marks in (agent/restore-sqlite.ts): workers are many, on
// many machines. So the database keeps its own history in one global row (database_history) and every worker
// compares, at start and at every heartbeat, what the server says about the database now with what that row says:
//   - the cluster's system identifier (pg_control_system()): another server (a dump restored there, a move);
//   - the database's oid (pg_database): a dump restored into a new database, or the old one dropped and recreated;
//   - database_history's own oid: a dump restored into the same database (pg_restore --clean, psql) creates it anew;
//   - the WAL timeline (the first 8 digits of the current WAL file's name): a point-in-time recovery, or a standby
//     promoted after a failover, raises it;
//   - the generation, advanced at every look: a running worker remembers the one it wrote, and a row that went back
//     means the database was replaced under it (a dump restored in place, a VM snapshot of the server).
// On a change, one worker (it holds the row FOR UPDATE; the others wait, then find the row agrees) applies the restore
// rule of agent/restore.ts to every tenant in that same transaction (each tenant's open deliveries uncertain, the
// restore recorded in its settings with the lookup window, under the tenant's intake turn so that no intake group
// misses it), and gives the database a new incarnation. Running workers that knew the replaced incarnation take the
// new one without a second alarm; every worker restarts its tenants after a new incarnation, with a new epoch in the
// idempotency keys (delivery ids repeat after a restore). `kontobro storage restored` does the same on the
// operator's word, for a restore none of these signals shows (a VM snapshot while every worker was down).
import type { SQL, TransactionSQL } from "bun";
import { randomBytes } from "node:crypto";
import { takeIntakeTurn } from "../../intake-store.ts";
import type { Logger } from "../../log.ts";
import { declareRestore } from "../../restore.ts";
import { rowsFromPostgres } from "./dialect.ts";
import { asTenant } from "./runner.ts";

/** What the server says about the database now. Null where the role may not ask (see readIdentity). */
export interface DatabaseIdentity {
  systemIdentifier: string | null;
  databaseOid: number;
  tableOid: number;
  timeline: number | null;
}

/** database_history as stored: the identity a worker last saw (null parts: never seen), incarnation, generation. */
export interface StoredHistory {
  systemIdentifier: string | null;
  databaseOid: number | null;
  tableOid: number | null;
  timeline: number | null;
  incarnation: string;
  replacedIncarnation: string | null;
  generation: number;
}

/** What a running worker remembers of the row it last wrote. */
export interface Memory {
  incarnation: string;
  generation: number;
}

/** How the stored identity differs from the server's now, in words (empty: it does not). Pure. */
export function identityChanges(stored: StoredHistory, now: DatabaseIdentity): string[] {
  const out: string[] = [];
  const differs = <T>(was: T | null, is: T | null) => was !== null && is !== null && was !== is;
  if (differs(stored.systemIdentifier, now.systemIdentifier))
    out.push(
      `the database is on another PostgreSQL cluster (system identifier ${now.systemIdentifier}, was ${stored.systemIdentifier}): restored or moved to another server`,
    );
  else if (differs(stored.databaseOid, now.databaseOid))
    out.push(
      `the database is another one (oid ${now.databaseOid}, was ${stored.databaseOid}): a dump restored into a new database, or the database dropped and created again`,
    );
  else if (differs(stored.tableOid, now.tableOid))
    out.push(`database_history was created anew (oid ${now.tableOid}, was ${stored.tableOid}): a dump restored into this database`);
  if (differs(stored.timeline, now.timeline))
    out.push(`the WAL timeline is ${now.timeline}, was ${stored.timeline}: a point-in-time recovery, or a standby promoted`);
  return out;
}

/**
 * What the row says to a running worker that remembers `memory` (null at start: nothing to compare). Pure.
 * `replaced`: another worker handled a restore of the incarnation this one knew (take the new one, no alarm).
 */
export function historyChange(memory: Memory | null, row: StoredHistory): { reason: string | null; replaced: boolean } {
  if (!memory) return { reason: null, replaced: false };
  if (row.incarnation === memory.incarnation)
    return row.generation < memory.generation
      ? {
          reason: `the database went back under a running worker (generation ${row.generation}, this worker wrote ${memory.generation}): restored in place, or a snapshot of the server`,
          replaced: false,
        }
      : { reason: null, replaced: false };
  if (row.replacedIncarnation === memory.incarnation) return { reason: null, replaced: true };
  return {
    reason: `the database's incarnation is ${row.incarnation}, this running worker knew ${memory.incarnation}: it was replaced under it`,
    replaced: false,
  };
}

const IDENTITY = `SELECT (SELECT oid FROM pg_database WHERE datname = current_database())::bigint AS "databaseOid",
  to_regclass('database_history')::oid::bigint AS "tableOid"`;
// The timeline of the WAL being written now (pg_control_checkpoint's waits for the next checkpoint after a promotion).
const CONTROL = `SELECT system_identifier::text AS "systemIdentifier",
  ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer AS timeline FROM pg_control_system()`;

/**
 * What the server says about the database. pg_control_system() and the WAL functions may be revoked from the role by
 * a hosting provider (PostgreSQL 15 grants them to PUBLIC): then `control` says why, and the oids alone are compared.
 */
export async function readIdentity(client: SQL): Promise<{ identity: DatabaseIdentity; control: string | null }> {
  const res = await client.unsafe(IDENTITY);
  const [ids] = rowsFromPostgres<{ databaseOid: number; tableOid: number }>(res, res.columns);
  try {
    const [c] = (await client.unsafe(CONTROL)) as { systemIdentifier: string; timeline: number }[];
    return { identity: { ...ids!, systemIdentifier: c!.systemIdentifier, timeline: c!.timeline }, control: null };
  } catch (e) {
    return { identity: { ...ids!, systemIdentifier: null, timeline: null }, control: (e as Error).message };
  }
}

const ENSURE_ROW = "INSERT INTO database_history (id, incarnation) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
const READ_ROW = `SELECT system_identifier AS "systemIdentifier", database_oid AS "databaseOid", table_oid AS "tableOid", timeline,
  incarnation, replaced_incarnation AS "replacedIncarnation", generation FROM database_history WHERE id = 1 FOR UPDATE`;
const WRITE_ROW = `UPDATE database_history SET system_identifier = $1, database_oid = $2, table_oid = $3, timeline = $4,
  incarnation = $5, replaced_incarnation = $6, generation = generation + 1, checked_at = clock_timestamp() WHERE id = 1 RETURNING generation`;

/** A restore applied: why, and what it touched. */
export interface RestoreApplied {
  reason: string;
  tenants: number;
  openDeliveries: number;
}

export interface HistoryCheck {
  memory: Memory;
  /** The restore this check applied, or null. */
  applied: RestoreApplied | null;
  /** The incarnation is new to this worker (it applied a restore, or another worker did): restart the tenants. */
  newIncarnation: boolean;
}

/**
 * One look (start, heartbeat): compares and advances database_history in one transaction; on a change, applies the
 * restore rule to every tenant. `operator` (kontobro storage restored) applies it whatever the signals say.
 */
export async function checkHistory(
  client: SQL,
  identity: DatabaseIdentity,
  memory: Memory | null,
  options: { now?: Date; operator?: string } = {},
): Promise<HistoryCheck> {
  return (await client.begin(async (tx) => {
    await tx.unsafe(ENSURE_ROW, [newIncarnation()]);
    const res = await tx.unsafe(READ_ROW);
    const [row] = rowsFromPostgres<StoredHistory>(res, res.columns);
    const live = historyChange(memory, row!);
    const reasons = [
      ...(options.operator ? [options.operator] : []),
      ...identityChanges(row!, identity),
      ...(live.reason ? [live.reason] : []),
    ];
    let incarnation = row!.incarnation;
    let replaced = row!.replacedIncarnation;
    let applied: RestoreApplied | null = null;
    if (reasons.length > 0) {
      applied = await applyRestore(tx, reasons.join("; "), options.now ?? new Date());
      replaced = incarnation;
      incarnation = newIncarnation();
    }
    const [written] = (await tx.unsafe(WRITE_ROW, [
      identity.systemIdentifier,
      identity.databaseOid,
      identity.tableOid,
      identity.timeline,
      incarnation,
      replaced,
    ])) as { generation: string | number }[];
    return {
      memory: { incarnation, generation: Number(written!.generation) },
      applied,
      newIncarnation: memory !== null && memory.incarnation !== incarnation,
    };
  })) as HistoryCheck;
}

/** agent/restore.ts's rule for every tenant (disabled ones too), each under its intake turn. */
async function applyRestore(tx: TransactionSQL, reason: string, now: Date): Promise<RestoreApplied> {
  const applied: RestoreApplied = { reason, tenants: 0, openDeliveries: 0 };
  for (const { id } of (await tx.unsafe("SELECT id FROM tenants ORDER BY id")) as { id: number }[]) {
    const runner = await asTenant(tx, id);
    await takeIntakeTurn(runner);
    applied.openDeliveries += (await declareRestore(runner, now, reason)).openDeliveries;
    applied.tenants++;
  }
  return applied;
}

function newIncarnation(): string {
  return randomBytes(8).toString("hex");
}

/** A worker's looks at the database's history: at start (before any tenant runs) and at every heartbeat. */
export class RestoreWatch {
  private memory: Memory | null = null;
  private controlWarned = false;

  constructor(
    private readonly client: SQL,
    private readonly log: Logger,
  ) {}

  /**
   * One look. True when the incarnation changed since this worker's last look (a restore it applied, or another
   * worker did): its tenants must start afresh, with a new epoch in their idempotency keys.
   */
  async check(operator?: string): Promise<boolean> {
    const { identity, control } = await readIdentity(this.client);
    if (control && !this.controlWarned) {
      this.controlWarned = true;
      this.log.warn(
        "this role may not read the cluster's identity or WAL timeline; a restore on another server or a point-in-time recovery is noticed only by the database's oids",
        {
          error: control,
          hint: "GRANT EXECUTE ON FUNCTION pg_control_system(), pg_current_wal_lsn(), pg_walfile_name(pg_lsn) TO the role kontobro connects as",
        },
      );
    }
    const first = this.memory === null;
    const r = await checkHistory(this.client, identity, this.memory, operator ? { operator } : {});
    this.memory = r.memory;
    if (r.applied)
      this.log.error(
        "restore detected: every open delivery of every tenant is looked up at its target before any new create, and so is every record not linked at a target until lookupsUntil (or whose change is dated before it); events the PSA sent after the backup are not in this database, so ask the PSAs to send again what changed since then",
        { ...r.applied },
      );
    else if (r.newIncarnation)
      this.log.warn("another worker noticed a restore of this database and applied it; this worker's tenants start afresh");
    return !first && (r.applied !== null || r.newIncarnation);
  }
}
