// Who holds a delivery's lease (deliveries.lease_owner), as the outbox's SQL says it on both engines.
// On PostgreSQL many workers share the outbox: a lease names its worker (workers.id, agent/db/pg/workers.ts), and
// the outcome of a push lands only while that worker still holds the lease. A worker declared dead has had its
// leases taken back (lease_owner NULL, or another worker's id by now), so its late answers change nothing.
// SQLite has one process and never sets lease_owner: the outbox binds NULL there, and NULL matches NULL.

/**
 * The condition "the lease is held by the worker bound to ?n" (NULL on SQLite), for the WHERE of every statement
 * that writes the outcome of a leased delivery: `… WHERE id = ?1 AND status = 'in_flight' AND ${leaseHeldBy(9)}`.
 * IS NOT DISTINCT FROM is equality that also matches NULL with NULL; SQLite (3.39+) and PostgreSQL both have it,
 * so the statement stays one text for both engines.
 */
export function leaseHeldBy(n: number): string {
  if (!Number.isInteger(n) || n < 1) throw new Error(`leaseHeldBy(${n}): the parameter number is a whole number from 1 (?1, ?2, …)`);
  return `lease_owner IS NOT DISTINCT FROM ?${n}`;
}

/**
 * A lease taken back without its push's answer (a crash, a worker declared dead, a stop while the push ran) holds the
 * delivery for the late_answer_wait_ms its lease was taken with (deliveries.late_answer_wait_ms, set at the claim from
 * the target's setting): a write of the push may have left just before, and the target may carry it out up to that
 * long after it was sent. `now` is the SQL for the moment the lease is taken back. NULL (a lease of an older version):
 * no hold.
 */
export function heldFrom(now: string): string {
  return `${now} + coalesce(late_answer_wait_ms, 0)`;
}

/** What the record page says of such a delivery (after "It may have reached the target"), and the hint's last words. */
export const STILL_LANDING =
  "and a write of it may still land there: it is tried again (the record looked up first) only once the target's late_answer_wait_ms has passed since then, at the next attempt's time shown.";
export const RETRY_EARLY =
  "Pressing retry sends it sooner, but then a write of the interrupted attempt that lands afterwards can leave a second draft or order at the target.";
