// The status page's master-data section: the open reports of master per entity, once per record and kind
// (changed in the non-master system, number matches but name does not, renumbered in one system, an article's
// coding to check), with how often it was seen and how to fix it. Rendered from one line in status-page.ts, on either
// engine: the SQLite agent's page and a hosted tenant's (its runner: row-level security holds it to its reports).
import { html } from "hono/html";
import type { SqlRunner } from "../db/pg/runner.ts";
import { showTime } from "../time.ts";
import { MasterStore, type MasterReport } from "./store.ts";

const KIND_LABELS: Record<string, string> = {
  changed_in_non_master: "Changed in the non-master system",
  number_name_mismatch: "Number matches, name does not",
  renumbered: "Renumbered in one system",
  attention: "To check in the target",
};

export async function renderMasterSection(runner: SqlRunner) {
  const reports: MasterReport[] = await new MasterStore(runner).openReports(undefined, 200);
  if (reports.length === 0) return "";
  // Notes to check a new record in the target (an article's coding) come one per record: shown once per target.
  const attention = reports.filter((r) => r.kind === "attention");
  const targets = [...new Set(attention.map((r) => r.target))];
  return html`<section class="card master" data-master-reports="${reports.length}">
<h2>Master data <span class="muted">customers and products: who is master, and what did not travel</span></h2>
${targets.map((t) => {
  const mine = attention.filter((r) => r.target === t);
  const keys =
    mine
      .slice(0, 30)
      .map((r) => r.key)
      .join(", ") + (mine.length > 30 ? `, … (${mine.length} in all)` : "");
  return html`<div class="problem" data-master-report="attention" data-target="${t}">
<div><strong>${KIND_LABELS.attention}</strong> · ${t} · ${mine.length} record(s): ${keys}</div>
<div class="message">${mine[0]!.message}</div>
${mine[0]!.hint ? html`<div class="hint">How to fix: ${mine[0]!.hint}</div>` : ""}
</div>`;
})}
${reports
  .filter((r) => r.kind !== "attention")
  .map(
    (r) => html`<div class="problem" data-master-report="${r.kind}" data-target="${r.target}" data-record="${r.entity}:${r.key}">
<div><strong>${KIND_LABELS[r.kind] ?? r.kind}</strong> · ${r.target} · ${r.entity} ${r.key} <span class="muted">(${r.side === "psa" ? "in the PSA" : "in the target"}; seen ${r.count} time(s), first ${showTime(r.firstAt)}, last ${showTime(r.lastAt)})</span></div>
<div class="message">${r.message}</div>
${r.hint ? html`<div class="hint">How to fix: ${r.hint}</div>` : ""}
</div>`,
  )}
</section>`;
}
