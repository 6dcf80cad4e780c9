// Taking back the leases of workers that are gone (issue 17, many workers on PostgreSQL; agent/db/pg/README.md §6).
// A worker is dead when the server has not heard its heartbeat for longer than the dead-after setting, judged on
// the server's clock. In one transaction: its workers row is deleted (from then on its heartbeat finds no row, so
// it knows; and its late outcomes find a lease_owner that is no longer its own, so they land nowhere), and in every
// tenant its in_flight deliveries go back to pending, marked uncertain: the push may have reached the target, so
// the next attempt looks the record up before creating it (as the outbox's recoverExpiredLeases does on SQLite),
// and each gets an "interrupted" attempt row. A slow push of a live worker is never taken: its worker heartbeats.
//
// Crossing tenants: the deliveries are row-level secured, and the role kontobro connects as owns them with FORCE,
// so no statement of it sees two tenants at once. A SECURITY DEFINER function would not help (it runs as that same
// owner, still held to RLS; a BYPASSRLS owner is what openPostgres refuses), and a policy that lets some setting
// see every tenant would weaken isolation for all code. So the transaction walks the tenants list (global, no RLS)
// and names each tenant in turn (set_config(kontobro.tenant, …, true), as every tenant transaction does), running
// the same statement under that tenant's policy. That costs two round trips per tenant, paid only when a worker
// has died or stops; deleting the rows and recovering in one transaction means a recoverer that dies half-way
// leaves nothing half-done (the rows come back and the next pass does it all).
import type { SQL } from "bun";
import { rowsFromPostgres } from "./dialect.ts";
import { TENANT_SETTING } from "./tenancy.ts";

/** A worker whose leases were taken back. */
export interface RetiredWorker {
  id: number;
  host: string;
  pid: number;
}

export interface Recovery {
  workers: RetiredWorker[];
  /** In_flight deliveries put back to pending (uncertain), over all tenants. */
  deliveries: number;
}

/** Workers silent for longer than $1 seconds on the server's clock; ones another recoverer is handling are skipped. */
const DELETE_DEAD = `DELETE FROM workers WHERE id IN (
    SELECT id FROM workers WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $1::float8) ORDER BY id FOR UPDATE SKIP LOCKED)
  RETURNING id, host, pid`;
const DELETE_ONE = "DELETE FROM workers WHERE id = $1 RETURNING id, host, pid";

/**
 * In the transaction's current tenant: the in_flight deliveries leased by the workers in $1 (a JSON array of
 * {id, host, pid}) back to pending and uncertain, each with its "interrupted" attempt (message $2, a format() text
 * taking the worker's id, host and pid; hint $3). next_attempt_at is left as it was: it was due when the push was
 * claimed, so it is due now on every worker's clock. Times written are the server's (epoch ms).
 */
const RECOVER = `WITH gone AS (
    SELECT * FROM json_to_recordset(CAST(CAST($1 AS text) AS json)) AS w(id bigint, host text, pid integer)),
  clock AS (SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint) AS ms),
  recovered AS (
    UPDATE deliveries d SET status = 'pending', uncertain = 1, lease_until = NULL, lease_owner = NULL, updated_at = clock.ms
      FROM gone, clock WHERE d.status = 'in_flight' AND d.lease_owner = gone.id
    RETURNING d.id, d.attempts, gone.id AS worker, gone.host, gone.pid, clock.ms)
  INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, message, hint)
  SELECT id, attempts, ms, 'interrupted', format(CAST($2 AS text), worker, host, pid), $3 FROM recovered`;

const DIED =
  "No answer was recorded: worker %s (%s, pid %s) stopped sending heartbeats while this push was under way. It may have reached the target.";
const STOPPED = "No answer was recorded: worker %s (%s, pid %s) stopped while this push was under way. It may have reached the target.";
const HINT = "Nothing to do: the next attempt looks the record up at the target first, so it is not created twice.";

/** Declares dead every worker silent for more than `deadAfterMs` (server clock) and takes back its leases. */
export function recoverDeadWorkers(client: SQL, deadAfterMs: number): Promise<Recovery> {
  return retire(client, DELETE_DEAD, [deadAfterMs / 1000], DIED);
}

/** A worker leaving cleanly: its row goes, and any lease it still holds goes back to pending, uncertain. */
export function retireWorker(client: SQL, id: number): Promise<Recovery> {
  return retire(client, DELETE_ONE, [id], STOPPED);
}

async function retire(client: SQL, deleteWorkers: string, params: unknown[], message: string): Promise<Recovery> {
  return (await client.begin(async (tx) => {
    const res = await tx.unsafe(deleteWorkers, params);
    const workers = rowsFromPostgres<RetiredWorker>(res, res.columns);
    if (workers.length === 0) return { workers, deliveries: 0 };
    const gone = JSON.stringify(workers);
    let deliveries = 0;
    for (const { id } of (await tx.unsafe("SELECT id FROM tenants ORDER BY id")) as { id: number }[]) {
      await tx`SELECT set_config(${TENANT_SETTING}, ${String(id)}, true)`;
      deliveries += (await tx.unsafe(RECOVER, [gone, message, HINT])).affectedRows ?? 0;
    }
    return { workers, deliveries };
  })) as Recovery;
}
