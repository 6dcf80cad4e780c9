// Child process for progress-e2e.test.ts: a SIE export in a process of its own (as `kontobro export run` is) that
// holds still part way, once its progress file shows how far it is, until the parent has looked at the status page.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { ExportsConfig, exportSettings } from "../agent/exports/config.ts";
import { runExport } from "../agent/exports/service.ts";
import { progressDirOf } from "../agent/running-work.ts";

const [dbPath, marker, go] = process.argv.slice(2) as [string, string, string];
const db = openDatabase(dbPath);
const settings = exportSettings(ExportsConfig.parse({ company_name: "Framsteg AS", currency: "NOK" }));
let step: "first" | "written" | "held" = "first";
const onDisk = (id: string) =>
  JSON.parse(readFileSync(join(progressDirOf(db)!, `${id}.json`), "utf8")) as { done: number; total: number | null };
const r = await runExport(
  sqliteRunner(db.$client),
  settings,
  { format: "sie4" },
  {
    by: "cli",
    progressIn: db,
    onProgress: (w) => {
      if (w.finishedAt !== undefined || w.total === null || w.done === 0) return;
      if (step === "first") {
        // The file is rewritten at most once a second: the next update after this writes it.
        Bun.sleepSync(1100);
        step = "written";
      } else if (step === "written" && onDisk(w.id).done > 0) {
        step = "held";
        writeFileSync(marker, String(onDisk(w.id).done));
        for (let i = 0; i < 3000 && !existsSync(go); i++) Bun.sleepSync(20);
      }
    },
  },
);
console.log(JSON.stringify(r.ok ? { exported: r.invoices.exported.length } : r.problems));
