// The status page's exports section: invoices by export status, "export now", changing the status of one
// invoice or a range, and every file produced, downloadable again. Rendered from one line in status-page.ts over a
// StatusContext (the SQLite agent's, or a hosted tenant's: its runner, its [exports] settings); its forms post to
// `${base}/ui/exports/*` (registered by status-routes.ts), which answer with a small result page.
import type { Context, Env, Hono } from "hono";
import { html, raw } from "hono/html";
import { DATA_TYPE_TITLES } from "../../formats/templates/fields.ts";
import { runExport, type ExportResult } from "../exports/service.ts";
import { changeExportStatus, EXPORT_STATUSES, STATUS_LABELS, statusCounts, type ExportStatus } from "../exports/status.ts";
import { getFileBytes, listFiles, listRuns, prunedFileProblem } from "../exports/store.ts";
import { listTemplates } from "../exports/templates-store.ts";
import type { Problem } from "../problem.ts";
import { showTime } from "../time.ts";
import type { StatusContext } from "./context.ts";

const size = (n: number) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KB`);

export async function renderExportsSection(s: StatusContext) {
  const db = s.runner;
  const base = s.base;
  const counts = await statusCounts(db);
  const files = await listFiles(db, { limit: 20 });
  const last = (await listRuns(db, 1))[0];
  const actions = s.exports?.uiActions ?? false;
  const templates = await listTemplates(db);
  // Saved by an earlier version and refused by this one's checks: shown with what is wrong, not left out.
  const broken = templates.filter((t) => t.problems);
  return html`<section class="card exports" id="exports"><style>${raw(CSS)}</style>
<h2>Exports to accounting <span class="muted">SIE 4 and export templates</span></h2>
<ul class="counts">${EXPORT_STATUSES.map((s) => html`<li><span>${STATUS_LABELS[s]}</span><strong data-export-status="${s}">${counts[s]}</strong></li>`)}</ul>
${
  actions
    ? html`<form method="post" action="${base}/ui/exports/run" class="inline export-sie4"><fieldset><legend>SIE 4 file</legend>
<input type="hidden" name="what" value="sie4">
<label>invoices dated from <input type="date" name="from"></label> <label>to <input type="date" name="to"></label>
<button type="submit">${SIE4_BUTTON}</button>
<p class="muted">Every invoice to transfer (only those dated from–to, when given) is exported and marked transferred.</p></fieldset></form>
${
  templates.length === 0
    ? ""
    : html`<form method="post" action="${base}/ui/exports/run" class="inline export-template"><fieldset><legend>With an export template</legend>
<label>template <select name="what">${templates.map((t) => html`<option value="template:${t.name}">${t.title ?? t.name} (${DATA_TYPE_TITLES[t.dataType as keyof typeof DATA_TYPE_TITLES] ?? t.dataType})${t.guessedColumns ? ` · ${t.guessedColumns} guessed column(s)` : ""}${t.problems ? " · needs fixing" : ""}</option>`)}</select></label>
<label>from <input type="date" name="from"></label> <label>to <input type="date" name="to"></label>
<button type="submit">${TEMPLATE_BUTTON}</button>
<p class="muted">Invoices go as for SIE 4. Time records and expense claims: give the period; they carry no exported flag, so an overlapping period repeats rows.</p></fieldset></form>`
}
<form method="post" action="${base}/ui/exports/status" class="inline"><fieldset><legend>Change the export status</legend>
<label>invoice <input name="number" size="10" placeholder="10001"></label> or <label>from <input name="from" size="8"></label>
<label>to <input name="to" size="8"></label> <label>set to <select name="status">${EXPORT_STATUSES.map((s) => html`<option value="${s}">${STATUS_LABELS[s]}</option>`)}</select></label>
<label><input type="checkbox" name="skipInvalid" value="1"> skip those that cannot change</label> <button type="submit">${STATUS_BUTTON}</button></fieldset></form>`
    : html`<p class="muted">kontobro listens on a non-loopback address and this page has no login, so exports are run, changed and downloaded with the API (/api/v1/exports) or <code>kontobro export</code>.</p>`
}
${
  broken.length > 0
    ? html`<h3>Templates that need fixing</h3>${broken.map((t) => html`<div class="template-needs-fixing" data-template="${t.name}"><h4>${t.title ?? t.name} <span class="muted">(${t.name})</span></h4>${t.problems!.map(problemBox)}</div>`)}`
    : ""
}
${last && last.warnings.length > 0 ? html`<h3>Warnings of the last export (#${last.id})</h3>${last.warnings.map(problemBox)}` : ""}
<h3>Files</h3>
${
  files.length === 0
    ? html`<p class="muted">No files exported yet.</p>`
    : html`<table class="export-files"><caption>Files exported, newest first</caption>
<thead><tr><th scope="col">Id</th><th scope="col">Made</th><th scope="col">File</th><th scope="col">Export</th><th scope="col">Period</th><th scope="col">Rows</th><th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead><tbody>
${files.map(
  (f) => html`<tr data-file="${f.id}"><td>${f.id}</td><td>${showTime(f.createdAt)}</td>
<th scope="row">${f.contentPruned ? html`${f.fileName} <span class="muted">(content removed after retention_days${f.deliveredAt ? "; the copy is in the output folder" : ""})</span>` : actions ? html`<a href="${base}/ui/exports/files/${f.id}/download" download>${f.fileName}</a>` : html`${f.fileName} <span class="muted">(kontobro export download ${f.id})</span>`}${f.deliveredAt === null ? html` <span class="waiting">not yet in the output folder (written at the next export or start; see that export's warnings)</span>` : ""}</th>
<td>${f.kind === "sie4" ? "SIE 4" : f.template}</td><td>${f.periodFrom ?? ""}${f.periodFrom || f.periodTo ? " – " : ""}${f.periodTo ?? ""}</td>
<td>${f.rowCount}</td><td>${size(f.size)}</td><td><code title="${f.sha256}">${f.sha256.slice(0, 12)}</code></td></tr>`,
)}
</tbody></table>`
}
</section>`;
}

/** The forms' buttons, each naming what it acts on. */
export const SIE4_BUTTON = "Export invoices to transfer as SIE 4";
export const TEMPLATE_BUTTON = "Export with the chosen template";
export const STATUS_BUTTON = "Change the invoices' export status";

const CSS = `
.exports fieldset{border:0;padding:0;margin:8px 0 12px} .exports legend{font-weight:600;padding:0;margin-bottom:4px}
.exports fieldset p{margin:4px 0 0} .exports .waiting{display:block;font-weight:400;color:#b42318}`;

function problemBox(p: Problem) {
  return html`<div class="problem"><div class="message">${p.message}</div>${p.hint ? html`<div class="hint">How to fix: ${p.hint}</div>` : ""}</div>`;
}

function resultPage(base: string, title: string, body: unknown) {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>kontobro: ${title}</title>
<style>${raw("body{font-family:system-ui,sans-serif;max-width:900px;margin:24px auto;color:#1d2330}.problem{border-left:4px solid #f04438;background:#fff6f5;padding:8px 12px;margin:6px 0}.ok{color:#067647}")}</style></head>
<body><main><h1>${title}</h1>${body}<p><a href="${base}/#exports">Back to the status page</a></p></main></body></html>`;
}

function exportResultBody(base: string, r: ExportResult) {
  if (!r.ok) return html`<p>Nothing was exported or marked.</p>${r.problems.map(problemBox)}`;
  return html`<p class="ok">${r.message}</p>
${r.files.length > 0 ? html`<ul>${r.files.map((f) => html`<li><a href="${base}/ui/exports/files/${f.id}/download" download>${f.fileName}</a> (${f.rowCount} rows, ${size(f.size)})</li>`)}</ul>` : ""}
${r.warnings.length > 0 ? html`<h2>Warnings</h2>${r.warnings.map(problemBox)}` : ""}`;
}

const field = (body: Record<string, unknown>, name: string) =>
  typeof body[name] === "string" && (body[name] as string).trim() !== "" ? (body[name] as string).trim() : undefined;

/** The section's forms and downloads at `${prefix}/ui/exports/*`, over the page's StatusContext (status-routes.ts). */
export function registerExportUi<E extends Env>(
  app: Hono<E>,
  prefix: string,
  view: (c: Context<E>) => StatusContext | Promise<StatusContext>,
): void {
  // Same-origin is enforced for every /ui route by the guard (ui-guard.ts; the tenant's in agent/hosted/status-page.ts).
  const refused = (c: Context<E>) =>
    c.text(
      "Refused: cross-site request, or the status page's export actions are off because kontobro listens on a non-loopback address.",
      403,
    );

  app.post(`${prefix}/ui/exports/run`, async (c) => {
    const s = await view(c);
    if (!s.exports?.uiActions) return refused(c);
    const body = await c.req.parseBody();
    const what = field(body, "what") ?? "sie4";
    const period = { from: field(body, "from"), to: field(body, "to") };
    const request =
      what === "sie4"
        ? { format: "sie4" as const, ...period }
        : { format: "template" as const, template: what.replace(/^template:/, ""), ...period };
    const r = await runExport(s.runner, s.exports.settings, request, {
      by: "ui",
      progressIn: s.inProgress?.work ?? null,
      ...(s.exports.clock ? { clock: s.exports.clock } : {}),
    });
    return c.html(resultPage(s.base, r.ok ? "Export" : "Export refused", exportResultBody(s.base, r)), r.ok ? 200 : r.httpStatus);
  });

  app.post(`${prefix}/ui/exports/status`, async (c) => {
    const s = await view(c);
    if (!s.exports?.uiActions) return refused(c);
    const body = await c.req.parseBody();
    const number = field(body, "number");
    const from = field(body, "from");
    const to = field(body, "to") ?? from;
    const status = field(body, "status") as ExportStatus;
    if (!number && !from)
      return c.html(resultPage(s.base, "Nothing changed", html`<p>Give an invoice number, or a range from–to.</p>`), 422);
    const r = await changeExportStatus(s.runner, number ? { number } : { from: from!, to: to! }, status, "ui", {
      skipInvalid: body.skipInvalid === "1",
    });
    if (!r.ok) return c.html(resultPage(s.base, "Nothing changed", html`${r.problems.map(problemBox)}`), r.httpStatus);
    return c.html(
      resultPage(
        s.base,
        "Export status changed",
        html`<p class="ok">${r.changed.length} invoice(s) set to "${STATUS_LABELS[r.status]}"${r.changed.length ? `: ${r.changed.join(", ")}` : ""}.
${r.unchanged.length ? ` ${r.unchanged.length} already had that status.` : ""}</p>${r.skipped.map((x) => problemBox(x.problem))}`,
      ),
    );
  });

  app.get(`${prefix}/ui/exports/files/:id/download`, async (c) => {
    const s = await view(c);
    if (!s.exports?.uiActions) return refused(c);
    const f = await getFileBytes(s.runner, Number(c.req.param("id")));
    if (!f) return c.text(`No export file ${c.req.param("id")}.`, 404);
    if (f.pruned) {
      const p = prunedFileProblem(f, Number(c.req.param("id")));
      return c.text(`${p.message}\n${p.hint}`, 410);
    }
    c.header("Content-Type", "application/octet-stream");
    c.header("Content-Disposition", `attachment; filename="${f.fileName.replace(/[^A-Za-z0-9._-]/g, "_")}"`);
    return c.body(f.bytes as Uint8Array<ArrayBuffer>);
  });
}
