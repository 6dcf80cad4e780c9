// Database reads and writes of the exports: the records an export is built from, export runs and the
// files they produced. SQL written once for both engines (agent/db/pg/README.md §3), run on the tenant's
// runner (a transaction's `tx` or the runner itself); callers own the transactions.
import type { Customer, ExpenseClaim, InvoiceLike, Project, TimeRecord, User } from "../model.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { problem, type Problem } from "../problem.ts";

async function recordMap<T>(db: SqlRunner, entity: string): Promise<Map<string, T>> {
  const rows = await db.all<{ key: string; payload: string }>(`SELECT key, payload FROM records WHERE entity = ?1`, entity);
  return new Map(rows.map((r) => [r.key, JSON.parse(r.payload) as T]));
}

export const loadCustomers = (db: SqlRunner) => recordMap<Customer>(db, "customer");
export const loadProjects = (db: SqlRunner) => recordMap<Project>(db, "project");
export const loadUsers = (db: SqlRunner) => recordMap<User>(db, "user");

/** Invoices and credit notes whose status is "to transfer", optionally only those dated from…to. */
export async function loadInvoicesToTransfer(
  db: SqlRunner,
  period: { from?: string; to?: string } = {},
): Promise<{ doc: InvoiceLike; status: string }[]> {
  const rows = await db.all<{ payload: string; status: string }>(
    `SELECT r.payload, s.status FROM invoice_export_status s JOIN records r ON r.entity = 'invoice' AND r.key = s.invoice_key
      WHERE s.status = 'to_transfer' AND (CAST(?1 AS TEXT) IS NULL OR json_extract(r.payload, '$.date') >= ?1)
        AND (CAST(?2 AS TEXT) IS NULL OR json_extract(r.payload, '$.date') <= ?2)`,
    period.from ?? null,
    period.to ?? null,
  );
  return rows.map((r) => ({ doc: JSON.parse(r.payload) as InvoiceLike, status: r.status }));
}

async function datedRecords<T>(db: SqlRunner, entity: string, from: string, to: string): Promise<T[]> {
  const rows = await db.all<{ payload: string }>(
    `SELECT payload FROM records WHERE entity = ?1 AND json_extract(payload, '$.date') BETWEEN ?2 AND ?3`,
    entity,
    from,
    to,
  );
  return rows.map((r) => JSON.parse(r.payload) as T);
}

export const loadTimeRecords = (db: SqlRunner, from: string, to: string) => datedRecords<TimeRecord>(db, "time_record", from, to);
/** Claims by the claim's date: a claim's lines always travel together. */
export const loadClaims = (db: SqlRunner, from: string, to: string) => datedRecords<ExpenseClaim>(db, "expense_claim", from, to);

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
  /** Retention removed its content (pruneExportFileBytes): the row stays, the download answers 410. */
  contentPruned: boolean;
  kind: string;
  template: string | null;
  dataType: string;
}

const RUN_COLUMNS = `id, kind, template, data_type AS dataType, period_from AS periodFrom, period_to AS periodTo, row_count AS rowCount,
  invoice_count AS invoiceCount, warnings, requested_by AS requestedBy, created_at AS createdAt`;
const FILE_COLUMNS = `f.id, f.run_id AS runId, f.file_name AS fileName, f.format, f.encoding, f.period_from AS periodFrom, f.period_to AS periodTo,
  f.size, f.sha256, f.row_count AS rowCount, f.created_at AS createdAt, f.delivered_at AS deliveredAt, CASE WHEN length(f.bytes) < f.size THEN 1 ELSE 0 END AS contentPruned,
  r.kind, r.template, r.data_type AS dataType`;
const toFile = (r: any): FileRow => ({ ...r, contentPruned: Boolean(r.contentPruned) });

const toRun = (r: any): RunRow => ({ ...r, warnings: JSON.parse(r.warnings) });

export async function insertRun(db: SqlRunner, run: Omit<RunRow, "id">): Promise<number> {
  const row = await db.get<{ id: number }>(
    `INSERT INTO export_runs (kind, template, data_type, period_from, period_to, row_count, invoice_count, warnings, requested_by, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id`,
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
  );
  return row!.id;
}

/** `delivered`: false for a file made while no output folder is set (delivered_at 0: never written there later). */
export async function insertFile(
  db: SqlRunner,
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
    toDeliver: boolean;
  },
): Promise<number> {
  const row = await db.get<{ id: number }>(
    `INSERT INTO export_files (run_id, file_name, format, encoding, period_from, period_to, bytes, size, sha256, row_count, created_at, delivered_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, CASE WHEN ?12 = 1 THEN NULL ELSE 0 END) RETURNING id`,
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
    file.toDeliver ? 1 : 0,
  );
  return row!.id;
}

/** Completes a run inserted at the start of its export's transaction. */
export async function finishRun(
  db: SqlRunner,
  id: number,
  done: { rowCount: number; invoiceCount: number; warnings: Problem[] },
): Promise<void> {
  await db.run(
    `UPDATE export_runs SET row_count = ?2, invoice_count = ?3, warnings = ?4 WHERE id = ?1`,
    id,
    done.rowCount,
    done.invoiceCount,
    JSON.stringify(done.warnings),
  );
}

/** How many SIE files exist: their serial numbers run 1, 2, 3, … without gaps (PayEx naming), unless the database went back in time. */
export async function sieFileCount(db: SqlRunner): Promise<number> {
  return (await db.get<{ n: number }>(`SELECT count(*) AS n FROM export_files WHERE format = 'sie4i'`))!.n;
}

/** The names of the files (SIE and template) the database holds. */
export async function exportFileNames(db: SqlRunner): Promise<Set<string>> {
  const rows = await db.all<{ name: string }>(`SELECT file_name AS name FROM export_files`);
  return new Set(rows.map((r) => r.name));
}

export async function listRuns(db: SqlRunner, limit = 50): Promise<RunRow[]> {
  return (await db.all(`SELECT ${RUN_COLUMNS} FROM export_runs ORDER BY id DESC LIMIT ?1`, Math.min(limit, 1000))).map(toRun);
}

export async function getRun(db: SqlRunner, id: number): Promise<RunRow | null> {
  const r = await db.get(`SELECT ${RUN_COLUMNS} FROM export_runs WHERE id = ?1`, id);
  return r ? toRun(r) : null;
}

export async function listFiles(db: SqlRunner, filter: { limit?: number; beforeId?: number; runId?: number } = {}): Promise<FileRow[]> {
  const rows = await db.all(
    `SELECT ${FILE_COLUMNS} FROM export_files f JOIN export_runs r ON r.id = f.run_id
      WHERE (CAST(?1 AS BIGINT) IS NULL OR f.id < ?1) AND (CAST(?2 AS BIGINT) IS NULL OR f.run_id = ?2) ORDER BY f.id DESC LIMIT ?3`,
    filter.beforeId ?? null,
    filter.runId ?? null,
    Math.min(filter.limit ?? 100, 1000),
  );
  return rows.map(toFile);
}

export async function getFile(db: SqlRunner, id: number): Promise<FileRow | null> {
  const r = await db.get(`SELECT ${FILE_COLUMNS} FROM export_files f JOIN export_runs r ON r.id = f.run_id WHERE f.id = ?1`, id);
  return r ? toFile(r) : null;
}

/** A file's content; `pruned`: retention removed it (the row, its invoices' statuses and its SHA-256 stay), `bytes` is then empty. */
export async function getFileBytes(
  db: SqlRunner,
  id: number,
): Promise<{ fileName: string; format: string; bytes: Uint8Array; pruned: boolean } | null> {
  const r = await db.get<{ fileName: string; format: string; bytes: Uint8Array; size: number }>(
    `SELECT file_name AS fileName, format, bytes, size FROM export_files WHERE id = ?1`,
    id,
  );
  if (!r) return null;
  const bytes = new Uint8Array(r.bytes);
  return { fileName: r.fileName, format: r.format, bytes, pruned: bytes.length < Number(r.size) };
}

/** What to tell someone downloading a file whose content retention removed. */
export function prunedFileProblem(file: { fileName: string }, id: number): Problem {
  return problem(
    "exports.file_pruned",
    `Export file ${id} (${file.fileName}) is older than the retention period (retention_days): its content was removed from the database; its row, SHA-256 and the export statuses of its invoices stay.`,
    "Take the copy in exports.output_dir (or wherever it was downloaded to). To make the invoices' file again, set them to transfer (kontobro export set-status FROM..TO to_transfer) and export again; only do that if the accounting system has not imported the old file.",
  );
}

/** Export files emptied per statement by retention: each may hold megabytes, so a few at a time. */
export const EXPORT_FILES_PER_STATEMENT = 10;

/**
 * Retention: the content of files created before `cutoff` that were written to the output folder or offered
 * for download since (delivered_at set) goes, at most `batch` of them; a file still waiting for the folder keeps
 * its bytes. The row stays (size, SHA-256, the invoices it transferred), so nothing is ever exported twice.
 * Written once for both engines; returns how many files it emptied.
 */
export async function pruneExportFileBytes(db: SqlRunner, cutoff: number, batch: number): Promise<number> {
  const r = await db.run(
    `UPDATE export_files SET bytes = substr(bytes, 1, 0) WHERE id IN (
       SELECT id FROM export_files WHERE created_at < ?1 AND delivered_at IS NOT NULL AND length(bytes) > 0 ORDER BY id LIMIT ?2)`,
    cutoff,
    batch,
  );
  return r.changes;
}

/** Earlier runs over the same records whose period overlaps from…to. */
export async function overlappingRuns(db: SqlRunner, dataTypes: string[], from: string, to: string): Promise<RunRow[]> {
  const marks = dataTypes.map((_, i) => `?${i + 3}`).join(", ");
  return (
    await db.all(
      `SELECT ${RUN_COLUMNS} FROM export_runs WHERE data_type IN (${marks}) AND period_from <= ?2 AND period_to >= ?1 AND row_count > 0 ORDER BY id`,
      from,
      to,
      ...dataTypes,
    )
  ).map(toRun);
}

/** The invoices an export file transferred (still marked with it). */
export async function invoicesOfFile(db: SqlRunner, fileId: number): Promise<string[]> {
  const rows = await db.all<{ k: string }>(
    `SELECT invoice_key AS k FROM invoice_export_status WHERE export_file_id = ?1 ORDER BY invoice_key`,
    fileId,
  );
  return rows.map((r) => r.k);
}

// An export decides what it takes (the invoices still "to transfer", the next SIE serial number) from what it reads,
// then writes: right only if no other export or status change of the same tenant commits in between. On SQLite the
// write transaction holds the database. On PostgreSQL, where an export can run on any worker, they take turns on the
// tenant's `export_writer` settings row, locked until commit (created by the first). SQLite runs nothing here.
const EXPORT_TURN = `SELECT name FROM settings WHERE name = 'export_writer' FOR UPDATE`;
const EXPORT_TURN_ROW = `INSERT INTO settings (name, value) VALUES ('export_writer', '') ON CONFLICT (name) DO NOTHING`;

// PostgreSQL ends a transaction left idle longer than idle_in_transaction_session_timeout, which a hosted worker sets to
// dead_after / 2 (agent/hosted/worker.ts): a worker frozen mid-transaction must not hold row locks the others need to
// take back its leases. An export reads what it takes, then builds its files in JavaScript with no statement sent: idle
// for the server, for 5 s at 20,000 invoices (SIE 4; 3 s more turning the rows read into invoices), so a large export
// outlasted that timeout, lost its connection and rolled back. While it reads and builds, the transaction holds only
// the tenant's export turn (the tenant's other exports and export status changes wait for it, as they would for the
// build anyway) and its snapshot: nothing intake, the deliveries or the recovery of a dead worker's leases wait for.
// So that part may idle up to EXPORT_BUILD_IDLE_MS (a frozen worker holds the turn that long at most); the worker's
// own timeout is back before the export writes: its files, and the invoices it marks, which intake's hook
// (exportStatusOnStore) of an invoice sent again would wait for while the tenant's intake turn is held.
export const EXPORT_BUILD_IDLE_MS = 10 * 60_000;
const IDLE_TIMEOUT = `SELECT current_setting('idle_in_transaction_session_timeout') AS value`;
const SET_IDLE_TIMEOUT = `SELECT set_config('idle_in_transaction_session_timeout', ?1, true) AS value`;

/** The turn an export holds (takeExportTurn): `built()` ends the build's idle allowance before the export writes. */
export interface ExportTurn {
  built(): Promise<void>;
}

/**
 * Waits for the tenant's export turn, held by `tx` until it ends. Call it first in the transaction. `building`: an
 * export's, whose reading and building that follow may idle up to EXPORT_BUILD_IDLE_MS until `built()` (PostgreSQL;
 * see above). Status changes and templates, which write at once, keep the worker's timeout.
 */
export async function takeExportTurn(tx: SqlRunner, options: { building?: boolean } = {}): Promise<ExportTurn> {
  const locked = await tx.lockForUpdate(EXPORT_TURN);
  const turn = { built: async () => {} };
  if (locked === null) return turn; // SQLite: its write transaction holds the database, and no timeout ends it
  if (locked === 0) {
    await tx.run(EXPORT_TURN_ROW);
    await tx.lockForUpdate(EXPORT_TURN);
  }
  if (!options.building) return turn;
  const own = (await tx.get<{ value: string }>(IDLE_TIMEOUT))!.value;
  await tx.get(SET_IDLE_TIMEOUT, `${EXPORT_BUILD_IDLE_MS}ms`);
  return {
    built: async () => {
      await tx.get(SET_IDLE_TIMEOUT, own);
    },
  };
}

// Writing the files waiting for the output folder (deliver.ts) happens outside any transaction, so a slow or hung folder
// holds no lock (on SQLite the whole database, intake included). Two deliverers never write at once: each first claims
// the tenant's `export_delivery` settings row for a lease (value "<claimant> <lease end in ms>") in a short transaction,
// and gives it back in the transaction that marks its files written. A claim whose lease ran out is taken over.
const DELIVERY_ROW = `INSERT INTO settings (name, value) VALUES ('export_delivery', '') ON CONFLICT (name) DO NOTHING`;
const DELIVERY_LOCK = `SELECT name FROM settings WHERE name = 'export_delivery' FOR UPDATE`;
const DELIVERY_CLAIM = `SELECT value FROM settings WHERE name = 'export_delivery'`;
const SET_DELIVERY_CLAIM = `UPDATE settings SET value = ?1 WHERE name = 'export_delivery'`;
const RELEASE_DELIVERY_CLAIM = `UPDATE settings SET value = '' WHERE name = 'export_delivery' AND value = ?1`;
const PENDING_FILES = `SELECT id, file_name AS fileName, bytes FROM export_files WHERE delivered_at IS NULL ORDER BY id`;
const MARK_DELIVERED = `UPDATE export_files SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL`;

export interface PendingFile {
  id: number;
  fileName: string;
  bytes: Uint8Array;
}

/** Who holds the delivery claim until when, from its settings value; null when free. Pure. */
export function parseDeliveryClaim(value: string | null | undefined): { claimant: string; until: number } | null {
  const m = /^(\S+) (\d+)$/.exec(value ?? "");
  return m ? { claimant: m[1]!, until: Number(m[2]) } : null;
}

/**
 * One short transaction: when no other claimant's lease runs past `now`, claims the tenant's delivery for `claimant`
 * until `until` and returns the files waiting; else `busy` with the other lease's end.
 */
export function claimPendingFiles(
  db: SqlRunner,
  claimant: string,
  now: number,
  until: number,
): Promise<{ files: PendingFile[] } | { busyUntil: number }> {
  return db.transaction(async (tx) => {
    await tx.run(DELIVERY_ROW);
    await tx.lockForUpdate(DELIVERY_LOCK);
    const held = parseDeliveryClaim((await tx.get<{ value: string }>(DELIVERY_CLAIM))?.value);
    if (held && held.claimant !== claimant && held.until > now) return { busyUntil: held.until };
    await tx.run(SET_DELIVERY_CLAIM, `${claimant} ${until}`);
    const files = await tx.all<PendingFile>(PENDING_FILES);
    return { files: files.map((f) => ({ ...f, bytes: new Uint8Array(f.bytes) })) };
  });
}

/** The second short transaction: the files written marked so, and the claim given back if it is still this claimant's. */
export function markFilesDelivered(db: SqlRunner, claimant: string, until: number, ids: number[], now: number): Promise<void> {
  return db.transaction(async (tx) => {
    for (const id of ids) await tx.run(MARK_DELIVERED, id, now);
    await tx.run(RELEASE_DELIVERY_CLAIM, `${claimant} ${until}`);
  });
}
