// Master per entity, what is stored: master_records (a record as kontobro last saw it at a target), master_reports
// (what a person is told, once per record and kind until resolved), and the two things it reads or writes
// elsewhere: the PSA's records (what the PSA holds) and links (so the PSA's echo of a record the target made is
// recognised as linked). Every method is one statement or runs inside the caller's transaction.
import type { Statement } from "bun:sqlite";
import type { MasterEntity, MasterSide } from "../../connectors/contract.ts";
import type { Db } from "../db/index.ts";
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

export class MasterStore {
  private readonly q: Record<string, Statement>;

  constructor(
    readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    const c = db.$client;
    this.q = {
      byKey: c.prepare(`SELECT ${ROW} FROM master_records WHERE target = ?1 AND entity = ?2 AND key = ?3`),
      byRemote: c.prepare(`SELECT ${ROW} FROM master_records WHERE target = ?1 AND entity = ?2 AND remote_id = ?3`),
      all: c.prepare(`SELECT ${ROW} FROM master_records WHERE target = ?1 AND entity = ?2`),
      upsert:
        c.prepare(`INSERT INTO master_records (target, entity, key, remote_id, name, fingerprint, pending_fingerprint, modified_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)
        ON CONFLICT (target, entity, key) DO UPDATE SET remote_id = ?4, name = ?5, fingerprint = ?6, pending_fingerprint = NULL, modified_at = coalesce(?7, master_records.modified_at), updated_at = ?8`),
      pending: c.prepare(
        `UPDATE master_records SET pending_fingerprint = ?4, updated_at = ?5 WHERE target = ?1 AND entity = ?2 AND key = ?3`,
      ),
      report: c.prepare(`INSERT INTO master_reports (target, entity, key, kind, side, message, hint, count, first_at, last_at, resolved_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8, NULL)
        ON CONFLICT (target, entity, key, kind) DO UPDATE SET side = ?5, message = ?6, hint = ?7, last_at = ?8,
          count = CASE WHEN master_reports.resolved_at IS NULL THEN master_reports.count + 1 ELSE 1 END,
          first_at = CASE WHEN master_reports.resolved_at IS NULL THEN master_reports.first_at ELSE ?8 END, resolved_at = NULL
        RETURNING count`),
      openReport: c.prepare(
        `SELECT ${REPORT} FROM master_reports WHERE target = ?1 AND entity = ?2 AND key = ?3 AND kind = ?4 AND resolved_at IS NULL`,
      ),
      resolve: c.prepare(
        `UPDATE master_reports SET resolved_at = ?5 WHERE target = ?1 AND entity = ?2 AND key = ?3 AND resolved_at IS NULL AND (CAST(?4 AS TEXT) IS NULL OR kind = ?4) AND kind <> 'attention'`,
      ),
      open: c.prepare(
        `SELECT ${REPORT} FROM master_reports WHERE resolved_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR target = ?1) AND (kind <> 'attention' OR last_at > ?2) ORDER BY last_at DESC LIMIT ?3`,
      ),
      psa: c.prepare(`SELECT payload FROM records WHERE entity = ?1 AND key = ?2`),
      link: c.prepare(
        `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES (?1, ?2, ?3, ?4, '', ?5) ON CONFLICT (target, entity, key) DO NOTHING`,
      ),
    };
  }

  byKey(target: string, entity: MasterEntity, key: string): MasterRow | null {
    return (this.q.byKey!.get(target, entity, key) as MasterRow | null) ?? null;
  }

  byRemote(target: string, entity: MasterEntity, remoteId: string): MasterRow | null {
    return (this.q.byRemote!.get(target, entity, remoteId) as MasterRow | null) ?? null;
  }

  /** Linked records of another key whose name at the target is this one (a renumbering in one system?). */
  sameName(target: string, entity: MasterEntity, name: unknown, notKey: string): MasterRow[] {
    const n = normaliseName(name);
    return (this.q.all!.all(target, entity) as MasterRow[]).filter((r) => r.key !== notKey && normaliseName(r.name) === n);
  }

  save(
    target: string,
    entity: MasterEntity,
    key: string,
    v: { remoteId: string; name: unknown; fingerprint: string | null; modifiedAt?: string | null },
  ): void {
    this.q.upsert!.run(
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
  setPending(target: string, entity: MasterEntity, key: string, fingerprint: string): void {
    this.q.pending!.run(target, entity, key, fingerprint, this.now());
  }

  /** Records the report (once per record and kind while open: later ones count up); returns how often it was seen. */
  report(target: string, entity: MasterEntity, key: string, kind: ReportKind, side: MasterSide, message: string, hint?: string): number {
    return (this.q.report!.get(target, entity, key, kind, side, message, hint ?? null, this.now()) as { count: number }).count;
  }

  openReport(target: string, entity: MasterEntity, key: string, kind: ReportKind): MasterReport | null {
    return (this.q.openReport!.get(target, entity, key, kind) as MasterReport | null) ?? null;
  }

  /** The systems agree again (or a person accepted it): reports of the record (of `kind`) are resolved. */
  resolve(target: string, entity: MasterEntity, key: string, kind: ReportKind | null = null): void {
    this.q.resolve!.run(target, entity, key, kind, this.now());
  }

  openReports(target?: string, limit = 100): MasterReport[] {
    try {
      return this.q.open!.all(target ?? null, this.now() - ATTENTION_DAYS * 86_400_000, limit) as MasterReport[];
    } catch {
      return [];
    }
  }

  /** The PSA's record, as today's model reads it, or null when the PSA never sent it. */
  psaRecord(entity: MasterEntity, key: string): any | null {
    const row = this.q.psa!.get(entity, key) as { payload: string } | null;
    if (!row) return null;
    const parsed = parseStored(entity, JSON.parse(row.payload));
    return parsed.success ? parsed.data : null;
  }

  /** Links the PSA's key to the target's record, unless it is linked already (the outbox keeps links it made). */
  link(target: string, entity: MasterEntity, key: string, remoteId: string): void {
    this.q.link!.run(target, entity, key, remoteId, this.now());
  }
}
