// Read-only queries for the status page, the API, /metrics and `kontobro status`. Those of deliveries and events run
// through the SqlRunner (one text for SQLite and a hosted tenant's PostgreSQL); settings and the pull gauges still read
// the SQLite file.
import type { Db } from "./db/index.ts";
import { NOT_DONE } from "./db/open-deliveries.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import type { Gauge } from "./metrics.ts";
import type { DeliveryStatus } from "./states.ts";

export interface DeliveryRow {
  id: number;
  target: string;
  entity: string;
  key: string;
  status: DeliveryStatus;
  attempts: number;
  uncertain: boolean;
  nextAttemptAt: number;
  errorCode: string | null;
  errorMessage: string | null;
  errorHint: string | null;
  errorField: string | null;
  note: string | null;
  remoteId: string | null;
  eventId: string;
  eventType: string;
  createdAt: number;
  updatedAt: number;
  doneAt: number | null;
}

/** A delivery row's columns (deliveries d JOIN events e), for toDeliveryRow. */
export const DELIVERY_COLUMNS = `d.id, d.target, d.entity, d.key, d.status, d.attempts, d.uncertain, d.next_attempt_at AS nextAttemptAt,
  d.error_code AS errorCode, d.error_message AS errorMessage, d.error_hint AS errorHint, d.error_field AS errorField,
  d.note, d.remote_id AS remoteId, e.event_id AS eventId, e.type AS eventType, d.created_at AS createdAt,
  d.updated_at AS updatedAt, d.done_at AS doneAt`;

export const toDeliveryRow = (r: any): DeliveryRow => ({ ...r, uncertain: !!r.uncertain });

/** Every target's deliveries by status: those not done from deliveries_ready, the done ones from deliveries_done. */
export function deliveryCounts(runner: SqlRunner): Promise<{ target: string; status: DeliveryStatus; n: number }[]> {
  return runner.all(`SELECT target, status, count(*) AS n FROM deliveries WHERE ${NOT_DONE} GROUP BY target, status
    UNION ALL SELECT target, 'done' AS status, count(*) AS n FROM deliveries WHERE status = 'done' GROUP BY target
    ORDER BY target, status`);
}

export function eventCount(db: Db): number {
  return (db.$client.query(`SELECT coalesce(max(seq), 0) AS n FROM events`).get() as any).n;
}

export async function lastSuccessAt(runner: SqlRunner, target: string): Promise<number | null> {
  const row = await runner.get<{ t: number | null }>(
    `SELECT max(done_at) AS t FROM deliveries WHERE target = ?1 AND status = 'done'`,
    target,
  );
  return row?.t ?? null;
}

export async function listDeliveries(
  runner: SqlRunner,
  filter: { status?: DeliveryStatus; target?: string; limit?: number; beforeId?: number },
): Promise<DeliveryRow[]> {
  // Only the conditions in use go into the SQL, so SQLite can pick the (target, status) or (status, id) index.
  const where: string[] = [];
  const params: (string | number)[] = [];
  const done = filter.status === "done";
  if (done) {
    // Written out, as deliveries_done_id's condition: SQLite uses a partial index only then (agent/db/open-deliveries.ts).
    where.push(`d.status = 'done'`);
  } else if (filter.status) {
    // The others are in deliveries_status_id.
    params.push(filter.status);
    where.push(`d.status = ?${params.length}`, `d.${NOT_DONE}`);
  }
  if (filter.target) {
    params.push(filter.target);
    where.push(`d.target = ?${params.length}`);
  }
  if (filter.beforeId) {
    params.push(filter.beforeId);
    where.push(`d.id < ?${params.length}`);
  }
  params.push(Math.min(filter.limit ?? 100, 1000));
  // Done ones by deliveries_done_id, also for one target: by deliveries_done (target, done_at) SQLite reads and sorts all
  // of the target's done rows for a page. (PostgreSQL takes no hint: the dialect drops it.)
  const doneHint = done ? "INDEXED BY deliveries_done_id" : "";
  const rows = await runner.all(
    `SELECT ${DELIVERY_COLUMNS} FROM deliveries d ${doneHint} JOIN events e ON e.seq = d.event_seq
      ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY d.id DESC LIMIT ?${params.length}`,
    ...params,
  );
  return rows.map(toDeliveryRow);
}

export async function getDelivery(runner: SqlRunner, id: number): Promise<DeliveryRow | null> {
  const r = await runner.get(`SELECT ${DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.id = ?1`, id);
  return r ? toDeliveryRow(r) : null;
}

export function recentEvents(
  runner: SqlRunner,
  limit = 20,
): Promise<{ seq: number; eventId: string; type: string; entity: string; key: string; receivedAt: number }[]> {
  return runner.all(
    `SELECT seq, event_id AS eventId, type, entity, key, received_at AS receivedAt FROM events ORDER BY seq DESC LIMIT ?1`,
    limit,
  );
}

export function getSetting(db: Db, name: string): string | null {
  return (db.$client.query(`SELECT value FROM settings WHERE name = ?1`).get(name) as any)?.value ?? null;
}

/** Returns the stored value, creating it with `make()` the first time. */
export function ensureSetting(db: Db, name: string, make: () => string): string {
  db.$client.run(`INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING`, [name, make()]);
  return getSetting(db, name)!;
}

/** Items pulled from targets for the PSA, and the last run of each pull, for /metrics. */
export async function pullGauges(runner: SqlRunner): Promise<Gauge[]> {
  const inbox = await runner.all<{ target: string; state: string; n: number }>(
    `SELECT target, state, count(*) AS n FROM inbox GROUP BY target, state ORDER BY target, state`,
  );
  const runs = await runner.all<{ target: string; stream: string; status: string; startedAt: number; imported: number }>(
    `SELECT target, stream, status, started_at AS startedAt, imported FROM job_runs j
      WHERE id = (SELECT max(id) FROM job_runs WHERE target = j.target AND stream = j.stream) ORDER BY target, stream`,
  );
  return [
    {
      name: "kontobro_inbox_items",
      help: "Items pulled for the PSA by target and state.",
      rows: inbox.map((r) => ({ labels: { target: r.target, state: r.state }, value: r.n })),
    },
    {
      name: "kontobro_pull_last_run_ok",
      help: "1 if the last run of a pull succeeded, else 0.",
      rows: runs.map((r) => ({ labels: { target: r.target, stream: r.stream }, value: r.status === "ok" ? 1 : 0 })),
    },
    {
      name: "kontobro_pull_last_run_timestamp_seconds",
      help: "Start of the last run of a pull.",
      rows: runs.map((r) => ({ labels: { target: r.target, stream: r.stream }, value: Math.round(r.startedAt / 1000) })),
    },
    {
      name: "kontobro_pull_last_run_imported",
      help: "Items imported by the last run of a pull.",
      rows: runs.map((r) => ({ labels: { target: r.target, stream: r.stream }, value: r.imported })),
    },
  ];
}
