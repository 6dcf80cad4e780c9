// Taking back the leases of workers that are gone (issue 17, many workers on PostgreSQL; agent/db/pg/README.md §6).
// A worker is dead when the server has not heard its heartbeat for longer than the dead-after setting, judged on
// the server's clock. In one transaction: its workers row is deleted (from then on its heartbeat finds no row, so
// it knows; and its late outcomes find a lease_owner that is no longer its own, so they land nowhere), and in every
// tenant its in_flight deliveries go back to pending, marked uncertain: the push may have reached the target, so
// the next attempt looks the record up before creating it (as the outbox's recoverExpiredLeases does on SQLite),
// and each gets an "interrupted" attempt row. Its running pull runs (job_runs.worker) end as interrupted, so the
// job's next slot or a pull asked for may run (a job has one running run at most); a late page of the dead worker
// lands nowhere (agent/pulls/runner.ts). The circuit breaker's probe it had out (target_state.probe_owner) is freed:
// the next probe may go at once (or when the target's pause ends), not when the dead probe's lease would have ended
// (lease_seconds). A slow push of a live worker is never taken, nor its probe freed: its worker heartbeats.
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
import { heldFrom, RETRY_EARLY, STILL_LANDING } from "../lease-owner.ts";
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
  /** Pull runs still running under these workers, ended as interrupted, over all tenants. */
  runs: number;
  /** Half-open targets whose probe one of these workers had out, freed for the next probe, over all tenants. */
  probes: number;
}

/** Workers silent for longer than $1 seconds on the server's clock; ones another recoverer is handling are skipped. */
const DELETE_DEAD = `DELETE FROM workers WHERE id IN (
    SELECT id FROM workers WHERE heartbeat_at < clock_timestamp() - make_interval(secs => $1::float8) ORDER BY id FOR UPDATE SKIP LOCKED)
  RETURNING id, host, pid`;
const DELETE_ONE = "DELETE FROM workers WHERE id = $1 RETURNING id, host, pid";

/**
 * In the transaction's current tenant: the in_flight deliveries leased by the workers in $1 (a JSON array of
 * {id, host, pid}) back to pending and uncertain, each with its "interrupted" attempt (message $2, a format() text
 * taking the worker's id, host and pid; hint $3), and their running pull runs ended as interrupted (message $4,
 * the same kind of format() text; hint $5). Each delivery is due again once a write its worker may have sent just
 * before can no longer land: now plus the late_answer_wait_ms its lease was taken with (heldFrom,
 * agent/db/lease-owner.ts; a lease without one keeps its next_attempt_at, due when the push was claimed, so due now on
 * every worker's clock); the delivery also shows why it waits (error_message and error_hint, as its attempt row). The
 * half-open targets whose probe these workers had out (probe_owner) get their probe back: no owner, and the next probe
 * due now or when the target's pause ends, never later than it was (releaseProbe in agent/target-state.ts, which a
 * SQLite start applies). Times written are the server's (epoch ms). One round trip: the counts come back as one row.
 */
const RECOVER = `WITH gone AS (
    SELECT * FROM json_to_recordset(CAST(CAST($1 AS text) AS json)) AS w(id bigint, host text, pid integer)),
  clock AS (SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint) AS ms),
  recovered AS (
    UPDATE deliveries d SET status = 'pending', uncertain = 1, lease_until = NULL, lease_owner = NULL, updated_at = clock.ms,
        next_attempt_at = CASE WHEN d.late_answer_wait_ms > 0 THEN ${heldFrom("clock.ms")} ELSE d.next_attempt_at END, error_code = 'interrupted', error_message = format(CAST($2 AS text), gone.id, gone.host, gone.pid),
        error_hint = $3, error_field = NULL
      FROM gone, clock WHERE d.status = 'in_flight' AND d.lease_owner = gone.id
    RETURNING d.id, d.attempts, gone.id AS worker, gone.host, gone.pid, clock.ms),
  recorded AS (
    INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, message, hint)
    SELECT id, attempts, ms, 'interrupted', format(CAST($2 AS text), worker, host, pid), $3 FROM recovered),
  runs AS (
    UPDATE job_runs r SET status = 'interrupted', finished_at = clock.ms, error_code = 'interrupted',
        error_message = format(CAST($4 AS text), gone.id, gone.host, gone.pid), error_hint = $5
      FROM gone, clock WHERE r.status = 'running' AND r.worker = gone.id
    RETURNING r.id),
  probes AS (
    UPDATE target_state t SET probe_owner = NULL, updated_at = clock.ms,
        next_probe_at = LEAST(t.next_probe_at, GREATEST(clock.ms, COALESCE(t.paused_until, 0)))
      FROM gone, clock WHERE t.breaker = 'half_open' AND t.probe_owner = gone.id
    RETURNING t.target)
  SELECT (SELECT count(*) FROM recovered) AS deliveries, (SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM probes) AS probes`;

/** What the recovered pushes and runs say: format() texts taking the worker's id, host and pid. */
interface Messages {
  push: string;
  run: string;
}
const DIED: Messages = {
  push: `No answer was recorded: worker %s (%s, pid %s) stopped sending heartbeats while this push was under way. It may have reached the target, ${STILL_LANDING}`,
  run: "The run was cut off: worker %s (%s, pid %s) stopped answering (no heartbeat) before it finished.",
};
const STOPPED: Messages = {
  push: `No answer was recorded: worker %s (%s, pid %s) stopped while this push was under way. It may have reached the target, ${STILL_LANDING}`,
  run: "The run was cut off: worker %s (%s, pid %s) stopped before it finished.",
};
const PUSH_HINT = `Nothing to do: the next attempt looks the record up at the target first, so it is not created twice. ${RETRY_EARLY}`;
const RUN_HINT = "Nothing is lost: the job's next scheduled run, or a pull started by hand, continues from the last page that was stored.";

/** Declares dead every worker silent for more than `deadAfterMs` (server clock) and takes back its leases. */
export function recoverDeadWorkers(client: SQL, deadAfterMs: number): Promise<Recovery> {
  return retire(client, DELETE_DEAD, [deadAfterMs / 1000], DIED);
}

/** A worker leaving cleanly: its row goes, any lease it still holds goes back to pending, uncertain, and a run it still has is interrupted. */
export function retireWorker(client: SQL, id: number): Promise<Recovery> {
  return retire(client, DELETE_ONE, [id], STOPPED);
}

async function retire(client: SQL, deleteWorkers: string, params: unknown[], messages: Messages): Promise<Recovery> {
  return (await client.begin(async (tx) => {
    const res = await tx.unsafe(deleteWorkers, params);
    const workers = rowsFromPostgres<RetiredWorker>(res, res.columns);
    const recovery: Recovery = { workers, deliveries: 0, runs: 0, probes: 0 };
    if (workers.length === 0) return recovery;
    const gone = JSON.stringify(workers);
    for (const { id } of (await tx.unsafe("SELECT id FROM tenants ORDER BY id")) as { id: number }[]) {
      await tx`SELECT set_config(${TENANT_SETTING}, ${String(id)}, true)`;
      const [counts] = (await tx.unsafe(RECOVER, [gone, messages.push, PUSH_HINT, messages.run, RUN_HINT])) as {
        deliveries: number | string;
        runs: number | string;
        probes: number | string;
      }[];
      recovery.deliveries += Number(counts!.deliveries);
      recovery.runs += Number(counts!.runs);
      recovery.probes += Number(counts!.probes);
    }
    return recovery;
  })) as Recovery;
}
