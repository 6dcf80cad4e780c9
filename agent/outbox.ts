// The outbox: deliveries (one per event and target) and the state machine they move through.
// Every change of state is one SQLite transaction; the network call happens between two of them.
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "./db/index.ts";
import { deliveries, links } from "./db/schema.ts";
import { dependenciesOf, type Entity } from "./model.ts";
import type { Problem } from "./problem.ts";

export type DeliveryStatus = "pending" | "in_flight" | "waiting" | "done" | "needs_action" | "superseded";
export const OPEN_STATUSES: DeliveryStatus[] = ["pending", "in_flight", "waiting"];

export interface ClaimedDelivery {
  id: number;
  eventSeq: number;
  target: string;
  entity: Entity;
  key: string;
  attempts: number;
  uncertain: boolean;
  payload: any;
  createdAt: number;
}

export type Outcome =
  | { kind: "done"; remoteId: string; payloadHash: string; note?: string }
  | { kind: "retry"; problem: Problem; delayMs: number; uncertain: boolean }
  | { kind: "needs_action"; problem: Problem; uncertain: boolean }
  /** Not pushed yet because something it needs is not at the target: wait for `on` ("entity:key"). */
  | { kind: "wait"; on: string; reason: string };

export const recordRef = (entity: string, key: string) => `${entity}:${key}`;

export class Outbox {
  private readonly readyStmt;
  private readonly openForRecordStmt;
  private readonly linkStmt;
  private readonly recordExistsStmt;
  private readonly supersedeStmt;
  private readonly insertStmt;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    this.readyStmt = db.$client.prepare(
      `SELECT d.id, d.event_seq AS eventSeq, d.target, d.entity, d.key, d.attempts, d.uncertain, d.created_at AS createdAt, e.payload
         FROM deliveries d JOIN events e ON e.seq = d.event_seq
        WHERE d.target = ?1 AND d.status = 'pending' AND d.next_attempt_at <= ?2
        ORDER BY d.next_attempt_at, d.id LIMIT ?3`);
    this.openForRecordStmt = db.$client.prepare(
      `SELECT status FROM deliveries WHERE target = ?1 AND entity = ?2 AND key = ?3 AND status IN ('pending','in_flight','waiting') AND id <> ?4 AND id < ?5 LIMIT 1`);
    // Intake's hot path: prepared once, run per event (the query builder costs more than the write).
    this.supersedeStmt = db.$client.prepare(
      `UPDATE deliveries SET status = 'superseded', updated_at = ?4, waiting_on = NULL
        WHERE target = ?1 AND entity = ?2 AND key = ?3 AND status IN ('pending', 'waiting', 'needs_action')`);
    this.insertStmt = db.$client.prepare(
      `INSERT INTO deliveries (event_seq, target, entity, key, status, next_attempt_at, created_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5, ?5)`);
    this.recordExistsStmt = db.$client.prepare(`SELECT 1 FROM records WHERE entity = ?1 AND key = ?2`);
    this.linkStmt = db.$client.prepare(`SELECT remote_id AS remoteId, payload_hash AS payloadHash FROM links WHERE target = ?1 AND entity = ?2 AND key = ?3`);
  }

  /** Creates the deliveries for a stored event (called inside the intake transaction). */
  enqueue(eventSeq: number, entity: Entity, key: string, targets: string[], seenBefore = true): void {
    const now = this.now();
    for (const target of targets) {
      // Coalesce: an older delivery of the same record that has not started is replaced by this one.
      if (seenBefore) this.supersedeStmt.run(target, entity, key, now);
      this.insertStmt.run(eventSeq, target, entity, key, now);
    }
  }

  /**
   * Leases up to `limit` ready deliveries of one target. A delivery whose record is still in flight, or
   * whose customer/project/product is not yet at the target, is parked as "waiting" instead.
   */
  claim(target: string, limit: number, leaseMs: number, supports: (e: Entity) => boolean): ClaimedDelivery[] {
    return this.db.transaction(() => {
      const now = this.now();
      const claimed: ClaimedDelivery[] = [];
      const rows = this.readyStmt.all(target, now, limit) as any[];
      for (const row of rows) {
        const d: ClaimedDelivery = { ...row, uncertain: !!row.uncertain, payload: JSON.parse(row.payload) };
        const blocker = this.blockerOf(d, supports);
        if (blocker) {
          this.db.update(deliveries).set({ status: "waiting", waitingOn: blocker.on, errorCode: "waiting", errorMessage: blocker.reason, errorHint: null, errorField: null, updatedAt: now })
            .where(eq(deliveries.id, d.id)).run();
          continue;
        }
        this.db.update(deliveries).set({ status: "in_flight", leaseUntil: now + leaseMs, attempts: d.attempts + 1, updatedAt: now })
          .where(eq(deliveries.id, d.id)).run();
        d.attempts += 1;
        claimed.push(d);
      }
      return claimed;
    }, { behavior: "immediate" });
  }

  /** Why a delivery cannot go yet, or null. */
  private blockerOf(d: ClaimedDelivery, supports: (e: Entity) => boolean): { on: string; reason: string } | null {
    // An older delivery of the same record is still open (in flight): keep per-record order.
    if (this.openForRecordStmt.get(d.target, d.entity, d.key, d.id, d.id)) {
      return { on: recordRef(d.entity, d.key), reason: `waiting for an earlier change of ${d.entity} ${d.key} to finish` };
    }
    for (const dep of dependenciesOf(d.entity, d.payload)) {
      if (!supports(dep.entity)) continue;
      const ref = recordRef(dep.entity, dep.key);
      const open = this.openForRecordStmt.get(d.target, dep.entity, dep.key, -1, Number.MAX_SAFE_INTEGER) as { status: string } | null;
      if (open) return { on: ref, reason: `waiting for ${dep.entity} ${dep.key} to reach the target first` };
      if (!this.linkStmt.get(d.target, dep.entity, dep.key)) {
        if (dep.ifKnown && !this.recordExistsStmt.get(dep.entity, dep.key)) continue;
        const failed = this.db.select({ id: deliveries.id }).from(deliveries)
          .where(and(eq(deliveries.target, d.target), eq(deliveries.entity, dep.entity), eq(deliveries.key, dep.key), eq(deliveries.status, "needs_action"))).get();
        return {
          on: ref,
          reason: failed ? `blocked: ${dep.entity} ${dep.key} needs action (delivery ${failed.id}); fix it and this follows`
            : `waiting for ${dep.entity} ${dep.key}, which the PSA has not sent yet`,
        };
      }
    }
    return null;
  }

  link(target: string, entity: Entity, key: string): { remoteId: string; payloadHash: string } | null {
    return (this.linkStmt.get(target, entity, key) as any) ?? null;
  }

  /** Writes the outcomes of finished pushes and releases their leases, in one transaction. */
  complete(results: { delivery: ClaimedDelivery; outcome: Outcome; latencyMs?: number }[]): void {
    if (results.length === 0) return;
    this.db.transaction(() => {
      const now = this.now();
      for (const { delivery: d, outcome, latencyMs } of results) this.applyOutcome(d, outcome, now, latencyMs);
    }, { behavior: "immediate" });
  }

  private applyOutcome(d: ClaimedDelivery, o: Outcome, now: number, latencyMs?: number): void {
    const byId = eq(deliveries.id, d.id);
    const clearError = { errorCode: null, errorMessage: null, errorHint: null, errorField: null };
    switch (o.kind) {
      case "done":
        this.db.update(deliveries).set({ status: "done", leaseUntil: null, uncertain: false, remoteId: o.remoteId, note: o.note ?? null, doneAt: now, updatedAt: now, latencyMs: latencyMs ?? null, ...clearError }).where(byId).run();
        this.db.insert(links).values({ target: d.target, entity: d.entity, key: d.key, remoteId: o.remoteId, payloadHash: o.payloadHash, updatedAt: now })
          .onConflictDoUpdate({ target: [links.target, links.entity, links.key], set: { remoteId: o.remoteId, payloadHash: o.payloadHash, updatedAt: now } }).run();
        break;
      case "retry":
        this.db.update(deliveries).set({ status: "pending", leaseUntil: null, uncertain: o.uncertain, nextAttemptAt: now + o.delayMs, updatedAt: now, ...problemColumns(o.problem) }).where(byId).run();
        break;
      case "needs_action":
        this.db.update(deliveries).set({ status: "needs_action", leaseUntil: null, uncertain: o.uncertain, updatedAt: now, ...problemColumns(o.problem) }).where(byId).run();
        break;
      case "wait":
        this.db.update(deliveries).set({ status: "waiting", leaseUntil: null, waitingOn: o.on, updatedAt: now, errorCode: "waiting", errorMessage: o.reason, errorHint: null, errorField: null }).where(byId).run();
        return;
    }
    this.wake(d.target, recordRef(d.entity, d.key), now);
  }

  /** Deliveries waiting for `ref` become ready again (they re-check their dependencies when claimed). */
  private wake(target: string, ref: string, now: number): void {
    this.db.update(deliveries).set({ status: "pending", waitingOn: null, nextAttemptAt: now, updatedAt: now })
      .where(and(eq(deliveries.target, target), eq(deliveries.status, "waiting"), eq(deliveries.waitingOn, ref))).run();
  }

  /**
   * Deliveries whose lease ran out (the agent died mid-push, or `all` at start when we hold the instance
   * lock) go back to pending, marked uncertain: the push may have reached the target.
   */
  recoverExpiredLeases(all = false): number {
    const now = this.now();
    const res = this.db.$client.run(
      `UPDATE deliveries SET status = 'pending', uncertain = 1, lease_until = NULL, next_attempt_at = ?1, updated_at = ?1
        WHERE status = 'in_flight' AND (?2 OR lease_until < ?1)`, [now, all ? 1 : 0]);
    return res.changes;
  }

  /** Releases leases we hold without an answer (shutdown): pending again, uncertain. */
  release(ids: number[]): void {
    if (ids.length === 0) return;
    const now = this.now();
    this.db.update(deliveries).set({ status: "pending", uncertain: true, leaseUntil: null, nextAttemptAt: now, updatedAt: now })
      .where(and(inArray(deliveries.id, ids), eq(deliveries.status, "in_flight"))).run();
  }

  /** A person pressed retry: try again now. Returns false if the delivery cannot be retried. */
  retry(id: number): { ok: boolean; status?: string } {
    const row = this.db.select({ status: deliveries.status }).from(deliveries).where(eq(deliveries.id, id)).get();
    if (!row) return { ok: false };
    if (!["needs_action", "pending", "waiting"].includes(row.status)) return { ok: false, status: row.status };
    const now = this.now();
    this.db.update(deliveries).set({ status: "pending", nextAttemptAt: now, waitingOn: null, updatedAt: now }).where(eq(deliveries.id, id)).run();
    return { ok: true, status: "pending" };
  }

  /** Retries every delivery that needs action (optionally for one target). */
  retryAllNeedingAction(target?: string): number {
    const now = this.now();
    return this.db.$client.run(
      `UPDATE deliveries SET status = 'pending', next_attempt_at = ?1, updated_at = ?1 WHERE status = 'needs_action' AND (?2 IS NULL OR target = ?2)`,
      [now, target ?? null]).changes;
  }

  /** Earliest time a pending delivery of `target` becomes ready, or null. */
  nextDueAt(target: string): number | null {
    const row = this.db.get<{ t: number | null }>(sql`SELECT min(next_attempt_at) AS t FROM deliveries WHERE target = ${target} AND status = 'pending'`);
    return row?.t ?? null;
  }
}

function problemColumns(p: Problem) {
  return { errorCode: p.code, errorMessage: p.message, errorHint: p.hint ?? null, errorField: p.field ?? null };
}
