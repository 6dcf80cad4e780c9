// Export status per invoice and credit note: "to transfer" when finalized (set by intake in the same
// transaction that stores the invoice), "transferred" by an export or by hand, "do not transfer" by hand.
// The rules are pure; changes for one invoice or a range of numbers are one transaction each, in turn with the
// tenant's exports (takeExportTurn). SQL written once for both engines, on the tenant's runner.
import type { SqlRunner } from "../db/pg/runner.ts";
import { takeExportTurn } from "./store.ts";
import { problem, type Problem } from "../problem.ts";

export const EXPORT_STATUSES = ["to_transfer", "transferred", "do_not_transfer"] as const;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];
export const STATUS_LABELS: Record<ExportStatus, string> = {
  to_transfer: "To transfer",
  transferred: "Transferred",
  do_not_transfer: "Do not transfer",
};

/** Who changed a status: intake (finalized), an export, or a person through the API, CLI or status page. */
export type ChangedBy = "finalized" | "export" | "api" | "cli" | "ui";

/** Null when `from` → `to` is allowed; otherwise why not and what to do. Pure. */
export function transitionProblem(number: string, from: ExportStatus | null, to: ExportStatus): Problem | null {
  if (from === "transferred" && to === "do_not_transfer") {
    return problem(
      "exports.invalid_transition",
      `Invoice ${number} has already been transferred, so it cannot be marked "do not transfer".`,
      'It is in an export file already. To export it again, set it to "to transfer"; if it must never be exported again, set it to "to transfer" first and then "do not transfer".',
      "status",
    );
  }
  if (from === "do_not_transfer" && to === "transferred") {
    return problem(
      "exports.invalid_transition",
      `Invoice ${number} is marked "do not transfer", so no export has transferred it.`,
      'Set it to "to transfer" to include it in the next export (or, if it was booked by hand, to "to transfer" and then "transferred").',
      "status",
    );
  }
  return null;
}

// ?1: a JSON array of invoice keys. `WHERE true`: SQLite's grammar for an upsert from a SELECT.
const TO_TRANSFER_ON_STORE = `INSERT INTO invoice_export_status (invoice_key, status, changed_at, changed_by)
  SELECT value, 'to_transfer', CAST(?2 AS BIGINT), 'finalized' FROM json_each(?1) WHERE true
  ON CONFLICT (invoice_key) DO NOTHING`;

/**
 * The intake hook: the invoices of a group stored (their keys), in one INSERT in intake's transaction `tx` (one per
 * invoice was a statement each on the intake writer's thread, issue 16). A later update keeps the status.
 */
export async function exportStatusOnStore(tx: SqlRunner, invoiceKeys: string[], now: number): Promise<void> {
  if (invoiceKeys.length > 0) await tx.run(TO_TRANSFER_ON_STORE, JSON.stringify(invoiceKeys), now);
}

export interface InvoiceStatusRow {
  number: string;
  kind: string;
  date: string;
  customerNumber: string;
  status: ExportStatus | null;
  changedAt: number | null;
  changedBy: string | null;
  exportFileId: number | null;
}

const STATUS_SELECT = `SELECT r.key AS number, json_extract(r.payload, '$.kind') AS kind, json_extract(r.payload, '$.date') AS date,
    json_extract(r.payload, '$.customerNumber') AS customerNumber, s.status, s.changed_at AS changedAt, s.changed_by AS changedBy,
    s.export_file_id AS exportFileId
  FROM records r LEFT JOIN invoice_export_status s ON s.invoice_key = r.key WHERE r.entity = 'invoice'`;

/** Digits only: the numbers a range can select (trim(x, chars) is btrim on PostgreSQL). */
const NUMERIC_KEY = `r.key <> '' AND trim(r.key, '0123456789') = ''`;

export function invoiceStatus(db: SqlRunner, number: string): Promise<InvoiceStatusRow | null> {
  return db.get<InvoiceStatusRow>(`${STATUS_SELECT} AND r.key = ?1`, number);
}

export function listInvoiceStatuses(
  db: SqlRunner,
  filter: { status?: ExportStatus; limit?: number; offset?: number } = {},
): Promise<InvoiceStatusRow[]> {
  return db.all<InvoiceStatusRow>(
    `${STATUS_SELECT} AND (CAST(?1 AS TEXT) IS NULL OR s.status = ?1)
      ORDER BY (${NUMERIC_KEY}) DESC, CASE WHEN ${NUMERIC_KEY} THEN CAST(r.key AS BIGINT) END DESC, r.key DESC LIMIT ?2 OFFSET ?3`,
    filter.status ?? null,
    Math.min(filter.limit ?? 100, 1000),
    filter.offset ?? 0,
  );
}

export async function statusCounts(db: SqlRunner): Promise<Record<ExportStatus, number>> {
  const counts: Record<ExportStatus, number> = { to_transfer: 0, transferred: 0, do_not_transfer: 0 };
  const rows = await db.all<{ status: ExportStatus; n: number }>(`SELECT status, count(*) AS n FROM invoice_export_status GROUP BY status`);
  for (const r of rows) counts[r.status] = r.n;
  return counts;
}

export type InvoiceSelector = { number: string } | { from: string; to: string };

export type ChangeResult =
  | { ok: true; status: ExportStatus; changed: string[]; unchanged: string[]; skipped: { number: string; problem: Problem }[] }
  | { ok: false; httpStatus: 404 | 409 | 422; problems: Problem[] };

const MAX_LISTED = 20;

/**
 * Sets the export status of one invoice or of every invoice numbered from…to (digits only, inclusive).
 * All or nothing: if a transition is not allowed for any of them, nothing changes, unless skipInvalid,
 * which changes the others and reports the skipped ones.
 */
export async function changeExportStatus(
  db: SqlRunner,
  selector: InvoiceSelector,
  to: ExportStatus,
  by: ChangedBy,
  options: { skipInvalid?: boolean; now?: number } = {},
): Promise<ChangeResult> {
  if (!EXPORT_STATUSES.includes(to)) {
    return {
      ok: false,
      httpStatus: 422,
      problems: [
        problem(
          "exports.bad_status",
          `Unknown export status "${String(to).slice(0, 40)}".`,
          `Use one of: ${EXPORT_STATUSES.join(", ")}.`,
          "status",
        ),
      ],
    };
  }
  let what: string;
  if ("number" in selector) what = `invoice ${selector.number}`;
  else {
    const bad = (["from", "to"] as const).find((k) => !/^\d{1,15}$/.test(selector[k]));
    if (bad)
      return {
        ok: false,
        httpStatus: 422,
        problems: [
          problem(
            "exports.bad_range",
            `${bad}: "${String(selector[bad]).slice(0, 40)}" is not an invoice number made of digits.`,
            "A range selects invoices by number, e.g. from 10001 to 10050; set invoices with other numbers one at a time.",
            bad,
          ),
        ],
      };
    if (Number(selector.from) > Number(selector.to))
      return {
        ok: false,
        httpStatus: 422,
        problems: [
          problem(
            "exports.bad_range",
            `The range ${selector.from}–${selector.to} is empty: from is larger than to.`,
            "Swap the numbers.",
            "from",
          ),
        ],
      };
    what = `invoices ${selector.from}–${selector.to}`;
  }
  const now = options.now ?? Date.now();
  return db.transaction(async (tx): Promise<ChangeResult> => {
    await takeExportTurn(tx);
    const rows =
      "number" in selector
        ? await tx.all<InvoiceStatusRow>(`${STATUS_SELECT} AND r.key = ?1`, selector.number)
        : await tx.all<InvoiceStatusRow>(
            `${STATUS_SELECT} AND CASE WHEN ${NUMERIC_KEY} THEN CAST(r.key AS BIGINT) END BETWEEN ?1 AND ?2 ORDER BY CAST(r.key AS BIGINT)`,
            Number(selector.from),
            Number(selector.to),
          );
    if (rows.length === 0) {
      return {
        ok: false,
        httpStatus: 404,
        problems: [
          problem(
            "exports.invoice_not_found",
            `No ${what}: kontobro has received no such invoice or credit note.`,
            "Check the number; invoices arrive from the PSA when they are finalized.",
            "number" in selector ? "number" : "from",
          ),
        ],
      };
    }
    const skipped = rows.flatMap((r) => {
      const p = r.status === to ? null : transitionProblem(r.number, r.status, to);
      return p ? [{ number: r.number, problem: p }] : [];
    });
    if (skipped.length > 0 && !options.skipInvalid) {
      const listed = skipped.slice(0, MAX_LISTED).map((s) => s.problem);
      if (skipped.length > MAX_LISTED)
        listed.push(problem("exports.invalid_transition", `… and ${skipped.length - MAX_LISTED} more invoice(s) like these.`));
      if (rows.length > 1)
        listed.unshift(
          problem(
            "exports.invalid_transition",
            `Nothing was changed: ${skipped.length} of the ${rows.length} ${what} cannot be set to "${STATUS_LABELS[to]}".`,
            "Narrow the range, or ask to skip the invoices that cannot change (skipInvalid / --skip-invalid).",
            "status",
          ),
        );
      return { ok: false, httpStatus: 409, problems: listed };
    }
    const skip = new Set(skipped.map((s) => s.number));
    const changed: string[] = [];
    const unchanged: string[] = [];
    for (const r of rows) {
      if (skip.has(r.number)) continue;
      if (r.status === to) {
        unchanged.push(r.number);
        continue;
      }
      await tx.run(UPSERT_STATUS, r.number, to, now, by);
      changed.push(r.number);
    }
    return { ok: true, status: to, changed, unchanged, skipped };
  });
}

const UPSERT_STATUS = `INSERT INTO invoice_export_status (invoice_key, status, changed_at, changed_by, export_file_id) VALUES (?1, ?2, ?3, ?4, NULL)
  ON CONFLICT (invoice_key) DO UPDATE SET status = excluded.status, changed_at = excluded.changed_at, changed_by = excluded.changed_by, export_file_id = NULL`;
