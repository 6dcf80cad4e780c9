// Child process for exports-crash.test.ts: runs one SIE export on a data directory's SQLite file, or on a tenant
// (EXPORT_TENANT) of a PostgreSQL database given by its url, and, when told to, stops at a point inside (or just
// after) the export's transaction, so the parent can SIGKILL it there.
import { SQL } from "bun";
import { writeFileSync } from "node:fs";
import { openDatabase } from "../agent/db/index.ts";
import { postgresRunner, sqliteRunner } from "../agent/db/pg/runner.ts";
import { ExportsConfig, exportSettings } from "../agent/exports/config.ts";
import { runExport } from "../agent/exports/service.ts";

const [dbPath, stage, marker, outputDir] = process.argv.slice(2) as [string, string, string, string | undefined];
const storage = dbPath.startsWith("postgres://")
  ? postgresRunner(new SQL(dbPath), Number(process.env.EXPORT_TENANT))
  : sqliteRunner(openDatabase(dbPath).$client);
const settings = exportSettings(ExportsConfig.parse({ company_name: "Krasj AB", ...(outputDir ? { output_dir: outputDir } : {}) }));
const stop = () => {
  writeFileSync(marker, stage);
  Bun.sleepSync(60_000); // the parent kills us here
};
const r = await runExport(storage, settings, { format: "sie4" }, { by: "cli", faults: stage === "none" ? {} : { [stage]: stop } });
writeFileSync(marker, JSON.stringify(r.ok ? { files: r.files.map((f) => f.id), exported: r.invoices.exported.length } : r.problems));
process.exit(0);
