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
