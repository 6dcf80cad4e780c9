// "Where is my invoice?": the status page's search by number and a page per record with its whole story
// (events and what each changed, every delivery attempt per target, what was pulled for it, its export
// status, the retry button). Server-rendered with hono/html (every interpolated value escaped), plain forms
// and links: it works without JavaScript and by keyboard. Routes under /ui/ (a hosted tenant's under /t/<slug>/ui/),
// so the UI guard covers them; the same code serves both engines (StatusContext).
import type { Context, Env, Hono } from "hono";
import { html, raw } from "hono/html";
import { connectorKinds } from "../../connectors/registry.ts";
import { invoiceStatus, STATUS_LABELS } from "../exports/status.ts";
import { ENTITIES, type Entity } from "../model.ts";
import {
  deliveryAttempts,
  findRecords,
  getRecord,
  pulledFor,
  pulledStatus,
  recordDeliveries,
  recordEvents,
  remoteIdAt,
  type AttemptRow,
  type PulledItem,
  type RecordDelivery,
  type StoredRecord,
} from "../record-queries.ts";
import {
  entityOfKind,
  eventStory,
  isEntity,
  kindOf,
  RECORD_KIND_LABELS,
  RECORD_KINDS,
  recordName,
  recordSummary,
  retryLabel,
  searchRequest,
  showValue,
  type RecordKind,
  type StoryEvent,
} from "../record-story.ts";
import { ATTEMPT_OUTCOME_LABELS, DELIVERY_STATUS_LABELS, INBOX_STATE_LABELS } from "../states.ts";
import { showTime } from "../time.ts";
import { type StatusContext, type StatusTarget, withReads } from "./context.ts";

/** The record page's address; `base`: where the pages live ("" on SQLite, "/t/<slug>" for a hosted tenant). */
export const recordHref = (entity: string, key: string, base = "") =>
  `${base}/ui/records/${encodeURIComponent(entity)}/${encodeURIComponent(key)}`;

/** Where the retry button sends the browser back to: a record page under `base` it came from, else the status page. */
export function retryReturnPath(back: unknown, base = ""): string {
  const ok =
    typeof back === "string" &&
    back.startsWith(`${base}/ui/records/`) &&
    /^\/ui\/records\/[a-z_]+\/[^/?#\\]+$/.test(back.slice(base.length));
  return ok ? back : `${base}/`;
}

/** The retry button, naming what it acts on: "Retry invoice 10042 at eco". */
export function retryForm(base: string, d: { id: number; target: string }, kind: RecordKind, key: string, back?: string) {
  return html`<form method="post" action="${base}/ui/deliveries/${d.id}/retry" class="retry">${back ? html`<input type="hidden" name="back" value="${back}">` : ""}<button type="submit">${retryLabel(kind, key, d.target)}</button></form>`;
}

/** The search form (on the status page, the results page, the record page and the not-found page). */
export function recordSearchForm(base: string, number = "", kind = "") {
  return html`<form method="get" action="${base}/ui/records" role="search" class="record-search">
<label for="record-number">Number</label> <input id="record-number" name="number" value="${number}" size="14" autocomplete="off" required>
<label for="record-kind">Kind</label> <select id="record-kind" name="kind"><option value="">Any</option>${RECORD_KINDS.map(
    (k) => html`<option value="${k}"${k === kind ? " selected" : ""}>${RECORD_KIND_LABELS[k]}</option>`,
  )}</select>
<button type="submit">Find record</button></form>`;
}

/** The status page's search card. */
export function recordSearchSection(base: string) {
  return html`<section class="card" aria-labelledby="find-record"><h2 id="find-record">Where is my invoice?</h2>
<p class="muted">Find a customer, project, product, invoice or credit note by its number in the PSA (an invoice also by its PSA id), and see its whole story.</p>
${recordSearchForm(base)}</section>`;
}

/**
 * The search and the record pages at `${prefix}/ui/records…` (a Hono path: "" on SQLite, "/t/:slug" on a hosted
 * worker); `view` gives the request's StatusContext (behind the UI guard).
 */
export function registerRecordUi<E extends Env>(
  app: Hono<E>,
  prefix: string,
  view: (c: Context<E>) => StatusContext | Promise<StatusContext>,
): void {
  app.get(`${prefix}/ui/records`, async (c) => withReads(await view(c), (ctx) => searchPage(c, ctx)));
  app.get(`${prefix}/ui/records/:entity/:key`, async (c) => withReads(await view(c), (ctx) => recordRoute(c, ctx)));
}

async function recordRoute(c: Context<any>, ctx: StatusContext) {
  const kindParam = c.req.param("entity") ?? "";
  const key = c.req.param("key") ?? "";
  const entity = (RECORD_KINDS as readonly string[]).includes(kindParam) ? entityOfKind(kindParam as RecordKind) : null;
  if (!entity || !isEntity(entity)) {
    return c.html(
      page(
        ctx.base,
        "No such kind of record",
        html`<h1>No such kind of record</h1><p>kontobro keeps no records of the kind "${kindParam}". It keeps customers, projects, products, invoices and credit notes: search for one by its number.</p>${recordSearchForm(ctx.base, key)}`,
      ),
      404,
    );
  }
  const record = await getRecord(ctx.runner, entity, key);
  if (!record) {
    const what = entity === "invoice" ? "invoice or credit note" : entity;
    return c.html(
      page(
        ctx.base,
        `No ${what} ${key}`,
        html`<h1>No ${what} ${key}</h1>
<p>kontobro has received no ${what} numbered "${key}" from the PSA. Check the number (the PSA's number, not the accounting system's), or search every kind of record for it.</p>
${recordSearchForm(ctx.base, key)}`,
      ),
      404,
    );
  }
  return c.html(page(ctx.base, recordName(kindOf(record.entity, record.payload), record.key), recordPage(ctx, record)));
}

async function searchPage(c: Context<any>, ctx: StatusContext) {
  const base = ctx.base;
  const number = c.req.query("number") ?? "";
  const kind = c.req.query("kind") ?? "";
  const read = searchRequest(number, kind);
  if (!read.ok) {
    return c.html(
      page(
        base,
        "Find a record",
        html`<h1>Find a record</h1><p class="problem" role="alert">${read.message}</p>${recordSearchForm(base, number, kind)}`,
      ),
      400,
    );
  }
  const found = await findRecords(ctx.runner, read.request, ENTITIES);
  if (found.length === 1) return c.redirect(recordHref(found[0]!.entity, found[0]!.key, base), 303);
  const typed = number.trim();
  if (found.length === 0) {
    return c.html(
      page(
        base,
        `Nothing numbered ${typed}`,
        html`<h1>Nothing numbered ${typed}</h1>
<p>kontobro has received no ${read.request.kind ? RECORD_KIND_LABELS[read.request.kind].toLowerCase() : "customer, project, product, invoice or credit note"} numbered "${typed}" from the PSA${read.request.kind ? "" : ", and no invoice with that PSA id"}.</p>
<p>Search by the PSA's number exactly as the PSA shows it (leading zeros do not matter: 0101 finds 101), with Kind set to Any to look through every kind of record. A record the PSA has not sent yet is not here.</p>
${recordSearchForm(base, typed, kind)}`,
      ),
    );
  }
  return c.html(
    page(
      base,
      `Records numbered ${typed}`,
      html`<h1>Records numbered ${typed}</h1>
<table class="results"><caption>${found.length} records match "${typed}"</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Number</th><th scope="col">Summary</th><th scope="col">Last changed</th></tr></thead><tbody>
${found.map((r) => {
  const k = kindOf(r.entity, r.payload);
  return html`<tr><td>${RECORD_KIND_LABELS[k]}</td><th scope="row"><a href="${recordHref(r.entity, r.key, base)}">${recordName(k, r.key)}</a></th><td>${recordSummary(r.entity, r.payload)}</td><td>${showTime(r.updatedAt)}</td></tr>`;
})}
</tbody></table>
${recordSearchForm(base, typed, kind)}`,
    ),
  );
}

// ── the record page ───────────────────────────────────────────────────────────────────────────────────

function recordPage(ctx: StatusContext, r: StoredRecord) {
  const kind = kindOf(r.entity, r.payload);
  const name = recordName(kind, r.key);
  const here = recordHref(r.entity, r.key, ctx.base);
  return html`<h1>${RECORD_KIND_LABELS[kind]} ${r.key}</h1>
<p class="summary">${recordSummary(r.entity, r.payload)}</p>
${facts(ctx.base, r, kind)}
<section aria-labelledby="deliveries"><h2 id="deliveries">Delivery to the accounting systems</h2>
${ctx.targets.length === 0 ? html`<p class="muted">No targets are configured.</p>` : ctx.targets.map((t) => targetStory(ctx, t, r, kind, name, here))}
</section>
${eventsSection(ctx, r, name)}
${pulledSection(ctx, r, name)}
${exportSection(ctx, r, kind, name)}
<section class="card" aria-labelledby="search-again"><h2 id="search-again">Find another record</h2>${recordSearchForm(ctx.base)}</section>`;
}

/** Number, PSA id, version, and links to the records it refers to. */
function facts(base: string, r: StoredRecord, kind: RecordKind) {
  const p = r.payload ?? {};
  const related: { entity: Entity; key: string; label: string }[] = [];
  if (p.customerNumber) related.push({ entity: "customer", key: String(p.customerNumber), label: `customer ${p.customerNumber}` });
  if (p.projectNumber) related.push({ entity: "project", key: String(p.projectNumber), label: `project ${p.projectNumber}` });
  if (kind === "credit_note" && p.creditedInvoiceNumber)
    related.push({ entity: "invoice", key: String(p.creditedInvoiceNumber), label: `invoice ${p.creditedInvoiceNumber} (credited)` });
  return html`<dl class="facts">
<dt>Number in the PSA</dt><dd>${r.key}</dd>
${r.entity === "invoice" && p.psaId ? html`<dt>PSA id</dt><dd>${p.psaId}</dd>` : ""}
<dt>Version</dt><dd>${r.version} <span class="muted">(last changed ${showTime(r.updatedAt)})</span></dd>
${related.length > 0 ? html`<dt>Refers to</dt><dd>${related.map((x, i) => html`${i > 0 ? ", " : ""}<a href="${recordHref(x.entity, x.key, base)}">${x.label}</a>`)}</dd>` : ""}
</dl>`;
}

async function targetStory(ctx: StatusContext, t: StatusTarget, r: StoredRecord, kind: RecordKind, name: string, here: string) {
  const deliveries = await recordDeliveries(ctx.runner, t.name, r.entity, r.key);
  const attempts = await deliveryAttempts(
    ctx.runner,
    deliveries.map((d) => d.id),
  );
  const remoteId = await remoteIdAt(ctx.runner, t.name, r.entity, r.key);
  const latest = deliveries[deliveries.length - 1];
  const eventOf = new Map(deliveries.map((d) => [d.id, d.eventId]));
  return html`<section class="card target-story" data-target="${t.name}" aria-labelledby="at-${t.name}">
<h3 id="at-${t.name}">${t.name} <span class="muted">${t.title}</span></h3>
${currentState(ctx.base, t.name, latest, remoteId, kind, r.key, here)}
${
  attempts.length === 0
    ? html`<p class="muted">No attempt to deliver ${name} to ${t.name} is recorded${deliveries.length === 0 ? ", and none is queued" : ""}.</p>`
    : html`<table class="attempts"><caption>Every attempt to deliver ${name} to ${t.name}</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Delivery (event)</th><th scope="col">Attempt</th><th scope="col">Outcome</th><th scope="col">Message</th><th scope="col">How to fix</th><th scope="col">Remote id</th></tr></thead><tbody>
${attempts.map((a) => attemptRow(a, eventOf.get(a.deliveryId)))}
</tbody></table>`
}
${
  deliveries.length === 0
    ? ""
    : html`<table class="deliveries"><caption>Deliveries of ${name} to ${t.name}, one per version received</caption>
<thead><tr><th scope="col">Delivery</th><th scope="col">Event</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last change</th></tr></thead><tbody>
${deliveries.map(
  (d) =>
    html`<tr data-delivery="${d.id}" data-status="${d.status}"><th scope="row">${d.id}</th><td>${d.eventId}</td><td>${DELIVERY_STATUS_LABELS[d.status]}</td><td>${d.attempts}</td><td>${showTime(d.updatedAt)}</td></tr>`,
)}
</tbody></table>`
}
</section>`;
}

/** Where the record stands at a target now: the newest delivery's state, with the retry button when it needs action or is retrying. */
function currentState(
  base: string,
  target: string,
  d: RecordDelivery | undefined,
  remoteId: string | null,
  kind: RecordKind,
  key: string,
  here: string,
) {
  const at = remoteId ? html` <span class="muted">Its id there: <code>${remoteId}</code>.</span>` : "";
  if (!d) return html`<p class="state">Not sent to ${target}.${at}</p>`;
  const label = DELIVERY_STATUS_LABELS[d.status];
  const retrying = d.status === "pending" && d.errorMessage !== null;
  const problem =
    d.errorMessage && d.status !== "done" && d.status !== "superseded"
      ? html`<div class="message">${d.errorMessage}</div>${d.errorHint ? html`<div class="hint">How to fix: ${d.errorHint}</div>` : ""}`
      : "";
  const when =
    d.status === "done"
      ? ` on ${showTime(d.doneAt)}`
      : retrying
        ? `: retrying, next attempt at ${showTime(d.nextAttemptAt)}`
        : d.status === "pending"
          ? ": queued"
          : "";
  return html`<div class="state status-${d.status}${d.status === "needs_action" || retrying ? " problem" : ""}" data-status="${d.status}">
<p><strong>${label}</strong>${when}.${at}${d.note ? html` <span class="muted">${d.note}</span>` : ""}</p>
${problem}
${d.status === "needs_action" || retrying ? retryForm(base, d, kind, key, here) : ""}
</div>`;
}

function attemptRow(a: AttemptRow, eventId: string | undefined) {
  return html`<tr data-attempt="${a.id}" data-outcome="${a.outcome}"><td>${showTime(a.at)}</td><td>${a.deliveryId}${eventId ? html` <span class="muted">(${eventId})</span>` : ""}</td>
<td>${a.attempt}</td><td class="outcome-${a.outcome}">${ATTEMPT_OUTCOME_LABELS[a.outcome]}</td><td class="message">${a.message ?? ""}</td>
<td class="hint">${a.hint ?? ""}</td><td>${a.remoteId ? html`<code>${a.remoteId}</code>` : ""}</td></tr>`;
}

async function eventsSection(ctx: StatusContext, r: StoredRecord, name: string) {
  const { events, before, total } = await recordEvents(ctx.runner, r.entity, r.key);
  const story = eventStory(events, before);
  return html`<section class="card" aria-labelledby="events"><h2 id="events">Events received</h2>
${total > events.length ? html`<p class="muted">The newest ${events.length} of ${total} events.</p>` : ""}
<table class="events"><caption>Every event the PSA sent for ${name}, oldest first, with what it changed</caption>
<thead><tr><th scope="col">Received</th><th scope="col">Event id</th><th scope="col">Type</th><th scope="col">What changed</th></tr></thead><tbody>
${story.map(
  (e) =>
    html`<tr data-event="${e.eventId}"><td>${showTime(e.receivedAt)}</td><th scope="row">${e.eventId}</th><td>${e.type}</td><td>${changeCell(e)}</td></tr>`,
)}
</tbody></table></section>`;
}

const MAX_CHANGES_SHOWN = 25;

function changeCell(e: StoryEvent) {
  const stale = e.stale
    ? html`<p class="stale">Stale: older (by the PSA's occurredAt) than the version already kept, so it was not sent on.</p>`
    : "";
  const c = e.change;
  switch (c.kind) {
    case "first":
      return html`${stale}First version received.`;
    case "same":
      return html`${stale}Nothing changed: the same content as the version before.`;
    case "pruned":
      return html`${stale}<span class="muted">Its content was pruned after the retention period; the event id and time are kept.</span>`;
    case "previous_pruned":
      return html`${stale}<span class="muted">The version before was pruned after the retention period, so what changed is not known.</span>`;
    case "changed":
      return html`${stale}<ul class="changes">${c.changes
        .slice(0, MAX_CHANGES_SHOWN)
        .map(
          (f) =>
            html`<li><code>${f.path}</code>: ${f.before === undefined ? html`added ${showValue(f.after)}` : f.after === undefined ? html`removed (was ${showValue(f.before)})` : html`${showValue(f.before)} → ${showValue(f.after)}`}</li>`,
        )}${c.changes.length > MAX_CHANGES_SHOWN ? html`<li>… and ${c.changes.length - MAX_CHANGES_SHOWN} more fields</li>` : ""}</ul>`;
  }
}

/** Payment status changes of an invoice, expenses of a project: what the pulls brought back for it. */
async function pulledSection(ctx: StatusContext, r: StoredRecord, name: string) {
  if (r.entity !== "invoice" && r.entity !== "project") return "";
  const items = await pulledFor(ctx.runner, r.entity, r.key);
  const statuses: { target: string; value: string; final: boolean; updatedAt: number }[] = [];
  if (r.entity === "invoice")
    for (const t of ctx.targets) {
      const s = await pulledStatus(ctx.runner, t.name, r.entity, r.key);
      if (s) statuses.push({ target: t.name, ...s });
    }
  const what = r.entity === "invoice" ? "payment status" : "expenses";
  return html`<section class="card" aria-labelledby="pulled"><h2 id="pulled">Pulled from the accounting systems</h2>
${statuses.map(
  (s) =>
    html`<p class="pulled-status" data-target="${s.target}">Payment status at ${s.target}: <strong>${s.value}</strong>${s.final ? " (final)" : ""} <span class="muted">as of ${showTime(s.updatedAt)}</span></p>`,
)}
${
  items.length === 0
    ? html`<p class="muted">No ${what} pulled for ${name} yet.</p>`
    : html`<table class="pulled"><caption>${r.entity === "invoice" ? "Payment status changes" : "Expenses"} pulled for ${name}, newest first</caption>
<thead><tr><th scope="col">Pulled</th><th scope="col">Target</th><th scope="col">Type</th><th scope="col">Details</th><th scope="col">State</th></tr></thead><tbody>
${items.map((i) => pulledRow(ctx, i))}
</tbody></table>`
}
</section>`;
}

function pulledRow(ctx: StatusContext, i: PulledItem) {
  const kind = ctx.targets.find((t) => t.name === i.target)?.kind;
  const describe = (kind && connectorKinds[kind]?.describePulled) || null;
  const details =
    i.payload === "{}" ? "content pruned after the retention period" : describe ? describe(i.type, JSON.parse(i.payload)) : i.remoteId;
  return html`<tr data-inbox-item="${i.id}"><td>${showTime(i.createdAt)}</td><td>${i.target}</td><th scope="row">${i.type}</th>
<td>${details}${i.attachmentName ? ` · receipt ${i.attachmentName}` : ""}</td><td>${INBOX_STATE_LABELS[i.state] ?? i.state}${i.deliveredAt ? html` <span class="muted">${showTime(i.deliveredAt)}</span>` : ""}</td></tr>`;
}

async function exportSection(ctx: StatusContext, r: StoredRecord, kind: RecordKind, name: string) {
  if (r.entity !== "invoice") return "";
  const s = await invoiceStatus(ctx.runner, r.key);
  // The files and the exports section are the SQLite agent's page's (a hosted tenant's page has none yet).
  const downloads = ctx.local?.exports?.uiActions ?? false;
  return html`<section class="card" aria-labelledby="export"><h2 id="export">Export status</h2>
${
  !s?.status
    ? html`<p>No export status: ${name} is not marked for the file exports.</p>`
    : html`<p class="export-status" data-export-status="${s.status}"><strong>${STATUS_LABELS[s.status]}</strong> <span class="muted">since ${showTime(s.changedAt)}, set by ${s.changedBy === "finalized" ? `the PSA finalizing the ${kind === "credit_note" ? "credit note" : "invoice"}` : s.changedBy}</span>
${s.exportFileId ? (downloads ? html` · in <a href="/ui/exports/files/${s.exportFileId}/download" download>export file ${s.exportFileId}</a>` : html` · in export file ${s.exportFileId}`) : ""}</p>`
}
${ctx.local ? html`<p><a href="/#exports">Exports on the status page</a></p>` : ""}</section>`;
}

function page(base: string, title: string, body: unknown) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kontobro: ${title}</title><style>${raw(CSS)}</style></head>
<body><header><a href="${base}/">kontobro status page</a></header>
<main>${body}</main></body></html>`;
}

const CSS = `
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;padding:12px 24px} header a{color:#fff}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:22px;margin:8px 0} h2{font-size:18px;margin:16px 0 8px} .card>h2:first-child{margin-top:0} h3{font-size:16px;margin:0 0 8px}
.card{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.muted{color:#4b5563;font-weight:normal;font-size:13px}
.summary{font-size:15px} .facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px} .facts dt{font-weight:600} .facts dd{margin:0}
.problem{border-left:4px solid #f04438;background:#fff6f5;padding:8px 12px;margin:6px 0;border-radius:4px}
.state{margin:8px 0} .state p{margin:0} .message{color:#912018;margin-top:4px} .hint{color:#344054;margin-top:4px} .stale{color:#93370d;margin:0}
.status-done strong{color:#067647}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0;background:#fff} caption{text-align:left;font-weight:600;padding:4px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaecf0;vertical-align:top} tbody th{font-weight:normal}
.changes{margin:0;padding-left:16px} code{background:#f0f2f5;padding:1px 4px;border-radius:3px;word-break:break-all}
button{background:#1d2330;color:#fff;border:0;border-radius:4px;padding:6px 12px;cursor:pointer}
button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #2e90fa;outline-offset:2px}
.record-search{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0} .retry{margin-top:8px}
td.outcome-delivered{color:#067647} td.outcome-needs_action,td.outcome-retry{color:#912018}`;
