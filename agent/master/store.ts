// Master per entity, what is stored: master_records (a record as kontobro last saw it at a target), master_reports
// (what a person is told, once per record and kind until resolved), and the two things it reads or writes
// elsewhere: the PSA's records (what the PSA holds) and links (so the PSA's echo of a record the target made is
// recognised as linked). Its SQL is written once and runs through a SqlRunner (agent/db/pg/runner.ts): the SQLite
// agent's, or a hosted tenant's on PostgreSQL. Every method is one statement: on the runner itself its own
// transaction, on a transaction's runner (inside(tx)) part of that transaction.
import type { MasterEntity, MasterSide } from "../../connectors/contract.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { parseStored } from "../model.ts";
import { normaliseName, type ReportKind } from "./policy.ts";

export interface MasterRow {
  target: string;
  entity: MasterEntity;
  key: string;
  remoteId: string;
  name: string | null;
  fingerprint: string | null;
  pending: string | null;
  modifiedAt: string | null;
}

export interface MasterReport {
  target: string;
  entity: MasterEntity;
  key: string;
  kind: ReportKind;
  side: MasterSide;
  message: string;
  hint: string | null;
  count: number;
  firstAt: number;
  lastAt: number;
  resolvedAt: number | null;
}

const ROW = `target, entity, key, remote_id AS remoteId, name, fingerprint, pending_fingerprint AS pending, modified_at AS modifiedAt`;
const REPORT = `target, entity, key, kind, side, message, hint, count, first_at AS firstAt, last_at AS lastAt, resolved_at AS resolvedAt`;
/** Attention reports (an article's coding to check) leave the status page after this long. */
export const ATTENTION_DAYS = 14;

/** Master data's statements, written once for both engines. */
const SQL = {
  byKey: `SELECT ${ROW} FROM master_records WHERE target = ?1 AND entity = ?2 AND key = ?3`,
  byRemote: `SELECT ${ROW} FROM master_records WHERE target = ?1 AND entity = ?2 AND remote_id = ?3`,
  // PostgreSQL only (lockForUpdate runs nothing on SQLite, whose write transaction holds the database): the record's
  // row as a pull's page reads it stays locked until the page commits, so a push's write of it on another worker
  // (its pending fingerprint, its answer) lands before the page's decision or after its commit, never in between.
  lockByRemote: `SELECT key FROM master_records WHERE target = ?1 AND entity = ?2 AND remote_id = ?3 FOR UPDATE`,
  all: `SELECT ${ROW} FROM master_records WHERE target = ?1 AND entity = ?2`,
  otherTargets: `SELECT ${ROW} FROM master_records WHERE entity = ?2 AND key = ?3 AND target <> ?1 ORDER BY target`,
  upsert: `INSERT INTO master_records (target, entity, key, remote_id, name, fingerprint, pending_fingerprint, modified_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)
        ON CONFLICT (target, entity, key) DO UPDATE SET remote_id = ?4, name = ?5, fingerprint = ?6, pending_fingerprint = NULL, modified_at = coalesce(?7, master_records.modified_at), updated_at = ?8`,
  pending: `UPDATE master_records SET pending_fingerprint = ?4, updated_at = ?5 WHERE target = ?1 AND entity = ?2 AND key = ?3`,
  report: `INSERT INTO master_reports (target, entity, key, kind, side, message, hint, count, first_at, last_at, resolved_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8, NULL)
        ON CONFLICT (target, entity, key, kind) DO UPDATE SET side = ?5, message = ?6, hint = ?7, last_at = ?8,
          count = CASE WHEN master_reports.resolved_at IS NULL THEN master_reports.count + 1 ELSE 1 END,
          first_at = CASE WHEN master_reports.resolved_at IS NULL THEN master_reports.first_at ELSE ?8 END, resolved_at = NULL
        RETURNING count`,
  openReport: `SELECT ${REPORT} FROM master_reports WHERE target = ?1 AND entity = ?2 AND key = ?3 AND kind = ?4 AND resolved_at IS NULL`,
  resolve: `UPDATE master_reports SET resolved_at = ?5 WHERE target = ?1 AND entity = ?2 AND key = ?3 AND resolved_at IS NULL AND (CAST(?4 AS TEXT) IS NULL OR kind = ?4) AND kind <> 'attention'`,
  openOfSide: `SELECT key FROM master_reports WHERE target = ?1 AND entity = ?2 AND kind = ?3 AND side = ?4 AND resolved_at IS NULL ORDER BY key LIMIT ?5`,
  open: `SELECT ${REPORT} FROM master_reports WHERE resolved_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR target = ?1) AND (kind <> 'attention' OR last_at > ?2) ORDER BY last_at DESC LIMIT ?3`,
  psa: `SELECT payload FROM records WHERE entity = ?1 AND key = ?2`,
  link: `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES (?1, ?2, ?3, ?4, '', ?5) ON CONFLICT (target, entity, key) DO NOTHING`,
};

export class MasterStore {
  constructor(
    readonly storage: SqlRunner,
    private readonly now: () => number = Date.now,
  ) {}

  /** The same store on a transaction's runner: its statements are part of that transaction. */
  inside(tx: SqlRunner): MasterStore {
    return new MasterStore(tx, this.now);
  }

  byKey(target: string, entity: MasterEntity, key: string): Promise<MasterRow | null> {
    return this.storage.get<MasterRow>(SQL.byKey, target, entity, key);
  }

  byRemote(target: string, entity: MasterEntity, remoteId: string): Promise<MasterRow | null> {
    return this.storage.get<MasterRow>(SQL.byRemote, target, entity, remoteId);
  }

  /**
   * Inside a transaction: the target's record (if kontobro has it) is locked until the transaction ends, then read.
   * PostgreSQL: a write of the row by another worker waits for the transaction; SQLite: its transaction holds the file.
   */
  async byRemoteLocked(target: string, entity: MasterEntity, remoteId: string): Promise<MasterRow | null> {
    await this.storage.lockForUpdate(SQL.lockByRemote, target, entity, remoteId);
    return this.byRemote(target, entity, remoteId);
  }

  /** The record of this number at the other targets (each may have given the number to a customer of its own). */
  otherTargets(target: string, entity: MasterEntity, key: string): Promise<MasterRow[]> {
    return this.storage.all<MasterRow>(SQL.otherTargets, target, entity, key);
  }

  /** Linked records of another key whose name at the target is this one (a renumbering in one system?). */
  async sameName(target: string, entity: MasterEntity, name: unknown, notKey: string): Promise<MasterRow[]> {
    const n = normaliseName(name);
    return (await this.storage.all<MasterRow>(SQL.all, target, entity)).filter((r) => r.key !== notKey && normaliseName(r.name) === n);
  }

  async save(
    target: string,
    entity: MasterEntity,
    key: string,
    v: { remoteId: string; name: unknown; fingerprint: string | null; modifiedAt?: string | null },
  ): Promise<void> {
    await this.storage.run(
      SQL.upsert,
      target,
      entity,
      key,
      v.remoteId,
      v.name === undefined || v.name === null ? null : String(v.name),
      v.fingerprint,
      v.modifiedAt ?? null,
      this.now(),
    );
  }

  /** What a push under way will make the record: its coming back in a pull is ours, not a change. */
  async setPending(target: string, entity: MasterEntity, key: string, fingerprint: string): Promise<void> {
    await this.storage.run(SQL.pending, target, entity, key, fingerprint, this.now());
  }

  /** Records the report (once per record and kind while open: later ones count up); returns how often it was seen. */
  async report(
    target: string,
    entity: MasterEntity,
    key: string,
    kind: ReportKind,
    side: MasterSide,
    message: string,
    hint?: string,
  ): Promise<number> {
    return (await this.storage.get<{ count: number }>(SQL.report, target, entity, key, kind, side, message, hint ?? null, this.now()))!
      .count;
  }

  openReport(target: string, entity: MasterEntity, key: string, kind: ReportKind): Promise<MasterReport | null> {
    return this.storage.get<MasterReport>(SQL.openReport, target, entity, key, kind);
  }

  /** The systems agree again (or a person accepted it): reports of the record (of `kind`) are resolved. */
  async resolve(target: string, entity: MasterEntity, key: string, kind: ReportKind | null = null): Promise<void> {
    await this.storage.run(SQL.resolve, target, entity, key, kind, this.now());
  }

  /** Keys of the target's open reports of `kind` made on `side`. */
  async openKeys(target: string, entity: MasterEntity, kind: ReportKind, side: MasterSide, limit: number): Promise<string[]> {
    return (await this.storage.all<{ key: string }>(SQL.openOfSide, target, entity, kind, side, limit)).map((r) => r.key);
  }

  openReports(target?: string, limit = 100): Promise<MasterReport[]> {
    return this.storage.all<MasterReport>(SQL.open, target ?? null, this.now() - ATTENTION_DAYS * 86_400_000, limit);
  }

  /** The PSA's record, as today's model reads it, or null when the PSA never sent it. */
  async psaRecord(entity: MasterEntity, key: string): Promise<any | null> {
    const row = await this.storage.get<{ payload: string }>(SQL.psa, entity, key);
    if (!row) return null;
    const parsed = parseStored(entity, JSON.parse(row.payload));
    return parsed.success ? parsed.data : null;
  }

  /** Links the PSA's key to the target's record, unless it is linked already (the outbox keeps links it made). */
  async link(target: string, entity: MasterEntity, key: string, remoteId: string): Promise<void> {
    await this.storage.run(SQL.link, target, entity, key, remoteId, this.now());
  }
}
