// Tables of the file exports (SIE 4 and export templates): produced files, per-invoice export status,
// and the user's templates. drizzle-kit generates the migration from this file with the others.
import { blob, index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** One export the user asked for: SIE 4 or a template, with its period and what it warned about. */
export const exportRuns = sqliteTable(
  "export_runs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    /** "sie4" or "template". */
    kind: text("kind").notNull(),
    /** The template's name for kind = template. */
    template: text("template"),
    /** customers, invoices, time_records, … (sie4: invoices). */
    dataType: text("data_type").notNull(),
    periodFrom: text("period_from"),
    periodTo: text("period_to"),
    rowCount: integer("row_count").notNull(),
    invoiceCount: integer("invoice_count").notNull().default(0),
    /** JSON array of Problems: substitutions, left-out invoices, repeated periods. */
    warnings: text("warnings").notNull(),
    /** api, cli or ui. */
    requestedBy: text("requested_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("export_runs_created").on(t.createdAt), index("export_runs_period").on(t.dataType, t.periodFrom, t.periodTo)],
);

/** Every file an export produced, kept byte for byte so it can be downloaded again. */
export const exportFiles = sqliteTable(
  "export_files",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    runId: integer("run_id")
      .notNull()
      .references(() => exportRuns.id),
    fileName: text("file_name").notNull(),
    /** "sie4i" or "csv". */
    format: text("format").notNull(),
    encoding: text("encoding").notNull(),
    periodFrom: text("period_from"),
    periodTo: text("period_to"),
    bytes: blob("bytes", { mode: "buffer" }).notNull(),
    size: integer("size").notNull(),
    /** SHA-256 of the bytes, hex. */
    sha256: text("sha256").notNull(),
    rowCount: integer("row_count").notNull(),
    createdAt: integer("created_at").notNull(),
    /** When the file was written to exports.output_dir; null while waiting to be; 0 if no folder was set when it was made. */
    deliveredAt: integer("delivered_at"),
  },
  (t) => [index("export_files_run").on(t.runId), index("export_files_created").on(t.createdAt)],
);

/**
 * Export status per invoice or credit note (key = its number): to_transfer (set by intake when it is
 * finalized), transferred (by an export, or by hand), do_not_transfer (by hand).
 */
export const invoiceExportStatus = sqliteTable(
  "invoice_export_status",
  {
    invoiceKey: text("invoice_key").primaryKey(),
    status: text("status").notNull(),
    changedAt: integer("changed_at").notNull(),
    /** finalized, export, api, cli or ui. */
    changedBy: text("changed_by").notNull(),
    /** The file that transferred it, while status = transferred by an export. */
    exportFileId: integer("export_file_id").references(() => exportFiles.id),
  },
  (t) => [index("invoice_export_status_status").on(t.status, t.invoiceKey)],
);

/** The user's export templates (the built-in ones live in code). `definition` is the template as JSON. */
export const exportTemplates = sqliteTable("export_templates", {
  name: text("name").primaryKey(),
  dataType: text("data_type").notNull(),
  definition: text("definition").notNull(),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});
