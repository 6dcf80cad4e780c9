// Database reads and writes of the exports: the records an export is built from, export runs and the
// files they produced. Plain SQL on the shared connection; callers own the transactions.
import type { Customer, ExpenseClaim, InvoiceLike, Project, TimeRecord, User } from "../model.ts";
import type { Db } from "../db/index.ts";
import type { Problem } from "../problem.ts";

function recordMap<T>(db: Db, entity: string): Map<string, T> {
  const rows = db.$client.query(`SELECT key, payload FROM records WHERE entity = ?1`).all(entity) as { key: string; payload: string }[];
  return new Map(rows.map((r) => [r.key, JSON.parse(r.payload) as T]));
}

export const loadCustomers = (db: Db) => recordMap<Customer>(db, "customer");
export const loadProjects = (db: Db) => recordMap<Project>(db, "project");
export const loadUsers = (db: Db) => recordMap<User>(db, "user");

/** Invoices and credit notes whose status is "to transfer", optionally only those dated from…to. */
export function loadInvoicesToTransfer(db: Db, period: { from?: string; to?: string } = {}): { doc: InvoiceLike; status: string }[] {
  const rows = db.$client
    .query(
      `SELECT r.payload, s.status FROM invoice_export_status s JOIN records r ON r.entity = 'invoice' AND r.key = s.invoice_key
      WHERE s.status = 'to_transfer' AND (CAST(?1 AS TEXT) IS NULL OR json_extract(r.payload, '$.date') >= ?1)
        AND (CAST(?2 AS TEXT) IS NULL OR json_extract(r.payload, '$.date') <= ?2)`,
    )
    .all(period.from ?? null, period.to ?? null) as { payload: string; status: string }[];
  return rows.map((r) => ({ doc: JSON.parse(r.payload) as InvoiceLike, status: r.status }));
}

function datedRecords<T>(db: Db, entity: string, from: string, to: string): T[] {
  const rows = db.$client
    .query(`SELECT payload FROM records WHERE entity = ?1 AND json_extract(payload, '$.date') BETWEEN ?2 AND ?3`)
    .all(entity, from, to) as { payload: string }[];
  return rows.map((r) => JSON.parse(r.payload) as T);
}

export const loadTimeRecords = (db: Db, from: string, to: string) => datedRecords<TimeRecord>(db, "time_record", from, to);
/** Claims by the claim's date: a claim's lines always travel together. */
export const loadClaims = (db: Db, from: string, to: string) => datedRecords<ExpenseClaim>(db, "expense_claim", from, to);

export interface RunRow {
  id: number;
  kind: string;
  template: string | null;
  dataType: string;
  periodFrom: string | null;
  periodTo: string | null;
  rowCount: number;
  invoiceCount: number;
  warnings: Problem[];
  requestedBy: string;
  createdAt: number;
}

export interface FileRow {
  id: number;
  runId: number;
  fileName: string;
  format: string;
  encoding: string;
  periodFrom: string | null;
  periodTo: string | null;
  size: number;
  sha256: string;
  rowCount: number;
  createdAt: number;
  deliveredAt: number | null;
  kind: string;
  template: string | null;
  dataType: string;
}

const RUN_COLUMNS = `id, kind, template, data_type AS dataType, period_from AS periodFrom, period_to AS periodTo, row_count AS rowCount,
  invoice_count AS invoiceCount, warnings, requested_by AS requestedBy, created_at AS createdAt`;
const FILE_COLUMNS = `f.id, f.run_id AS runId, f.file_name AS fileName, f.format, f.encoding, f.period_from AS periodFrom, f.period_to AS periodTo,
  f.size, f.sha256, f.row_count AS rowCount, f.created_at AS createdAt, f.delivered_at AS deliveredAt, r.kind, r.template, r.data_type AS dataType`;

const toRun = (r: any): RunRow => ({ ...r, warnings: JSON.parse(r.warnings) });

export function insertRun(db: Db, run: Omit<RunRow, "id">): number {
  const row = db.$client
    .query(
      `INSERT INTO export_runs (kind, template, data_type, period_from, period_to, row_count, invoice_count, warnings, requested_by, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id`,
    )
    .get(
      run.kind,
      run.template,
      run.dataType,
      run.periodFrom,
      run.periodTo,
      run.rowCount,
      run.invoiceCount,
      JSON.stringify(run.warnings),
      run.requestedBy,
      run.createdAt,
    ) as { id: number };
  return row.id;
}

export function insertFile(
  db: Db,
  file: {
    runId: number;
    fileName: string;
    format: string;
    encoding: string;
    periodFrom: string | null;
    periodTo: string | null;
    bytes: Uint8Array;
    sha256: string;
    rowCount: number;
    createdAt: number;
  },
): number {
  const row = db.$client
    .query(
      `INSERT INTO export_files (run_id, file_name, format, encoding, period_from, period_to, bytes, size, sha256, row_count, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id`,
    )
    .get(
      file.runId,
      file.fileName,
      file.format,
      file.encoding,
      file.periodFrom,
      file.periodTo,
      file.bytes,
      file.bytes.length,
      file.sha256,
      file.rowCount,
      file.createdAt,
    ) as { id: number };
  return row.id;
}

/** Completes a run inserted at the start of its export's transaction. */
export function finishRun(db: Db, id: number, done: { rowCount: number; invoiceCount: number; warnings: Problem[] }): void {
  db.$client.run(`UPDATE export_runs SET row_count = ?2, invoice_count = ?3, warnings = ?4 WHERE id = ?1`, [
    id,
    done.rowCount,
    done.invoiceCount,
    JSON.stringify(done.warnings),
  ]);
}

/** How many SIE files exist: their serial numbers run 1, 2, 3, … without gaps (PayEx naming). */
export function sieFileCount(db: Db): number {
  return (db.$client.query(`SELECT count(*) AS n FROM export_files WHERE format = 'sie4i'`).get() as { n: number }).n;
}

export function listRuns(db: Db, limit = 50): RunRow[] {
  return (db.$client.query(`SELECT ${RUN_COLUMNS} FROM export_runs ORDER BY id DESC LIMIT ?1`).all(Math.min(limit, 1000)) as any[]).map(
    toRun,
  );
}

export function getRun(db: Db, id: number): RunRow | null {
  const r = db.$client.query(`SELECT ${RUN_COLUMNS} FROM export_runs WHERE id = ?1`).get(id);
  return r ? toRun(r) : null;
}

export function listFiles(db: Db, filter: { limit?: number; beforeId?: number; runId?: number } = {}): FileRow[] {
  return db.$client
    .query(
      `SELECT ${FILE_COLUMNS} FROM export_files f JOIN export_runs r ON r.id = f.run_id
      WHERE (CAST(?1 AS BIGINT) IS NULL OR f.id < ?1) AND (CAST(?2 AS BIGINT) IS NULL OR f.run_id = ?2) ORDER BY f.id DESC LIMIT ?3`,
    )
    .all(filter.beforeId ?? null, filter.runId ?? null, Math.min(filter.limit ?? 100, 1000)) as FileRow[];
}

export function getFile(db: Db, id: number): FileRow | null {
  return db.$client
    .query(`SELECT ${FILE_COLUMNS} FROM export_files f JOIN export_runs r ON r.id = f.run_id WHERE f.id = ?1`)
    .get(id) as FileRow | null;
}

export function getFileBytes(db: Db, id: number): { fileName: string; format: string; bytes: Uint8Array } | null {
  const r = db.$client.query(`SELECT file_name AS fileName, format, bytes FROM export_files WHERE id = ?1`).get(id) as any;
  return r ? { fileName: r.fileName, format: r.format, bytes: new Uint8Array(r.bytes) } : null;
}

/** Earlier runs over the same records whose period overlaps from…to. */
export function overlappingRuns(db: Db, dataTypes: string[], from: string, to: string): RunRow[] {
  const marks = dataTypes.map((_, i) => `?${i + 3}`).join(", ");
  return (
    db.$client
      .query(
        `SELECT ${RUN_COLUMNS} FROM export_runs WHERE data_type IN (${marks}) AND period_from <= ?2 AND period_to >= ?1 AND row_count > 0 ORDER BY id`,
      )
      .all(from, to, ...dataTypes) as any[]
  ).map(toRun);
}

/** The invoices an export file transferred (still marked with it). */
export function invoicesOfFile(db: Db, fileId: number): string[] {
  return (
    db.$client.query(`SELECT invoice_key AS k FROM invoice_export_status WHERE export_file_id = ?1 ORDER BY invoice_key`).all(fileId) as {
      k: string;
    }[]
  ).map((r) => r.k);
}
