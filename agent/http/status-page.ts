// The status page: server-rendered HTML, no front-end build. hono/html escapes every interpolated value.
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
// The same code renders the SQLite agent's page and a hosted tenant's (StatusContext: its runner, its links' base).
import { connectionLine } from "../credentials.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { deliveryCounts, lastSuccessAt, listDeliveries, recentEvents, type DeliveryRow } from "../queries.ts";
import { RESTORE_SETTING_SQL, type RestoreInfo } from "../restore.ts";
import { DELIVERY_STATUS_LABELS, DELIVERY_STATUSES } from "../states.ts";
import { describeTargetState, TargetStateStore } from "../target-state.ts";
import { type DiskLow, lowHint, lowMessage } from "../disk-space.ts";
import { type DurabilityFault, durabilityFault } from "../durability.ts";
import { dispatchChecks, intakeStoring, type ReadinessCheck } from "./health.ts";
import { showTime } from "../time.ts";
import type { StatusContext, StatusTarget } from "./context.ts";
import { demoMailLink } from "./demo-mail.ts";
import { renderExportsSection } from "./status-exports.ts";
import { renderNotificationsSection } from "./status-notify.ts";
import { renderPullsSection } from "./status-pulls.ts";
import { renderProgressSection } from "./status-progress.ts";
import { renderMasterSection } from "../master/status.ts";
import { renderStorageSection } from "./status-storage.ts";
import { CHART_CSS, chartsFrom, targetCharts } from "./status-charts.ts";
import { REFRESH_CSS, refreshNote, refreshSeconds } from "./status-refresh.ts";
import { readDeliveryStats } from "../delivery-stats.ts";
import type { Problem } from "../notify/alerts.ts";
import { creditsSentUnchecked } from "../notify/credited-after-push.ts";
import { recordHref, recordSearchSection, retryForm } from "./status-record.ts";
import { isEntity, kindOfEvent, recordName } from "../record-story.ts";
import type { Entity } from "../model.ts";

/** `options.refresh`: the ?refresh= query (seconds between automatic updates; status-refresh.ts). */
export async function renderStatusPage(s: StatusContext, options: { refresh?: string } = {}): Promise<HtmlEscapedString> {
  const refresh = refreshSeconds(options.refresh);
  const counts = await deliveryCounts(s.runner);
  const events = await recentEvents(s.runner, 15);
  const local = s.local;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kontobro status${s.hosted ? `: ${s.hosted.tenant}` : ""}</title>
<style>${raw(CSS + CHART_CSS + REFRESH_CSS)}</style></head>
<body data-refresh-seconds="${refresh}">
${pageHeader(s)}
<main>
${refreshNote(refresh, s.base)}
${local ? durabilityBanner(durabilityFault(local.db)) : ""}
${local ? storageBanner([intakeStoring(local.intake.failing?.() ?? null), ...dispatchChecks(local.targets, Date.now())]) : ""}
${local?.disk ? diskBanner(local.disk.low()) : ""}
${s.hosted?.notRunning ? html`<p class="card paused" role="alert">This tenant does not run on the worker that answered: ${s.hosted.notRunning}. Its events are kept; the operator finds the cause in the worker's log.</p>` : ""}
${restoreBanner(await lastRestore(s.runner))}
${await renderProgressSection(s)}
${recordSearchSection(s.base)}
${s.targets.length === 0 ? html`<p class="card">No targets are configured. ${s.hosted ? "The operator adds them to the tenant's configuration." : "Add a [[targets]] table to kontobro.toml (see config/kontobro.example.toml)."}</p>` : ""}
${s.targets.map((t) =>
  targetCard(
    s,
    t,
    counts.filter((c) => c.target === t.name),
  ),
)}
${s.pulls ? renderPullsSection({ pulls: s.pulls, targets: s.targets, base: s.base }) : ""}
${s.exports ? renderExportsSection(s) : ""}
${await renderMasterSection(s.runner)}
${local ? renderStorageSection(local) : ""}
${await renderNotificationsSection(s.runner, s.notificationChannels)}
<section class="card"><h2>Recent events</h2>
${
  events.length === 0
    ? html`<p class="muted">No events received yet. The PSA sends them to POST /api/v1/events.</p>`
    : html`
<table class="events"><caption>Events from the PSA, newest first</caption>
<thead><tr><th scope="col">Received</th><th scope="col">Event id</th><th scope="col">Type</th><th scope="col">Record</th></tr></thead><tbody>
${events.map(
  (e) =>
    html`<tr data-event="${e.eventId}"><td>${showTime(e.receivedAt)}</td><th scope="row">${e.eventId}</th><td>${e.type}</td><td>${eventRecord(s.base, e)}</td></tr>`,
)}
</tbody></table>`
}
</section>
</main></body></html>`;
}

/** The SQLite agent's header links to its API reference and readiness; a hosted tenant's names the tenant and the worker. */
function pageHeader(s: StatusContext) {
  const about = html`version ${s.version} · up since ${showTime(s.startedAt)}`;
  if (s.hosted)
    return html`<header><h1>kontobro</h1><span class="muted">tenant <strong class="tenant">${s.hosted.tenant}</strong> · worker ${s.hosted.worker} · ${about}</span></header>`;
  return html`<header><h1>kontobro</h1><span class="muted">${about} · <a href="/ui/api">API reference</a> · <a href="/readyz">readiness</a>${s.local ? demoMailLink(s.local) : ""}</span></header>`;
}

/** The record an event is about: a link to its page; a record kept only for the exports (a time record, a user) by kind and number. */
function eventRecord(base: string, e: { entity: string; type: string; key: string }) {
  if (!isEntity(e.entity)) return `${e.entity.replace(/_/g, " ")} ${e.key}`;
  return html`<a href="${recordHref(e.entity, e.key, base)}">${recordName(kindOfEvent(e.entity, e.type), e.key)}</a>`;
}

/** The last restore noticed (agent/restore.ts's setting, on either engine), or null. */
async function lastRestore(runner: SqlRunner): Promise<RestoreInfo | null> {
  const v = (await runner.get<{ value: string }>(RESTORE_SETTING_SQL))?.value;
  return v ? (JSON.parse(v) as RestoreInfo) : null;
}

/** Shown, first, once an fsync of the WAL failed: dispatch and intake have stopped until kontobro is restarted. */
function durabilityBanner(fault: DurabilityFault | null) {
  if (!fault) return "";
  return html`<section class="card fault durability" role="alert"><h2>Nothing is sent: the database cannot be made durable</h2>
<p>${fault.message} Intake answers 503, so the PSA keeps its events and sends them again.</p>
<p><strong>What to do:</strong> ${fault.hint}</p></section>`;
}

/**
 * Shown, first, while intake refuses events for a lasting reason (a full disk, …) or a dispatcher's rounds fail: the
 * queues below look as usual meanwhile. The same checks as /readyz's, without its write.
 */
function storageBanner(checks: ReadinessCheck[]) {
  const failing = checks.filter((c) => !c.ok);
  if (failing.length === 0) return "";
  return html`<section class="card fault storage-fault" role="alert"><h2>kontobro cannot store or send now</h2>
${failing.map((c) => html`<p>${c.message}</p><p><strong>What to do:</strong> ${c.hint}</p>`)}</section>`;
}

/** Shown while a disk kontobro writes to has less free space than agent.disk_free_warn_bytes: before it is full. */
function diskBanner(low: DiskLow[]) {
  if (low.length === 0) return "";
  return html`<section class="card paused disk-low" role="alert"><h2>The disk is nearly full</h2>
${low.map((l) => html`<p data-holds="${l.holds}">${lowMessage(l)}</p><p><strong>What to do:</strong> ${lowHint(l.holds)}</p>`)}</section>`;
}

/** Shown once a restore was detected: what kontobro did and what the user should do. */
function restoreBanner(r: RestoreInfo | null) {
  if (!r) return "";
  return html`<section class="card paused" role="alert"><h2>A restore was detected</h2>
<p>At ${r.detectedAt} kontobro found that ${r.reason}. ${r.openDeliveries} open deliveries are looked up at each target before anything is created again, so nothing is booked twice.</p>
<p>Events the PSA sent after the backup${r.backupTakenAt ? ` (${r.backupTakenAt})` : ""} are not in this database${r.lostEvents ? ` (at least ${r.lostEvents})` : ""}: have the PSA send again what changed since then.${r.lookupsUntil ? ` Until ${r.lookupsUntil}, and for changes dated before then, a record kontobro has not linked at a target is looked up there before it is created, so what was pushed after the backup is not created twice.` : ""}</p></section>`;
}

async function targetCard(s: StatusContext, t: StatusTarget, counts: { status: string; n: number }[]) {
  const byStatus = new Map(counts.map((c) => [c.status, c.n]));
  const now = Date.now();
  const failures = await listDeliveries(s.runner, { target: t.name, status: "needs_action", limit: 50 });
  const wrongCredits = await creditsSentUnchecked(s.runner, [t.name]);
  const waiting = await listDeliveries(s.runner, { target: t.name, status: "waiting", limit: 10 });
  const retrying = (await listDeliveries(s.runner, { target: t.name, status: "pending", limit: 10 })).filter((d) => d.errorMessage);
  const lastSuccess = await lastSuccessAt(s.runner, t.name);
  const stats = await readDeliveryStats(s.runner, t.name, chartsFrom(now));
  return html`<section class="card target" data-target="${t.name}">
<h2>${t.name} <span class="muted">${t.title}</span></h2>
${t.held ? html`<p class="paused held">Held: events are queued for this target but not sent, because ${t.held}.</p>` : t.paused ? html`<p class="paused">Paused: events are queued for this target but not sent. ${s.hosted ? "The operator sets paused = false in the tenant's configuration to send them." : "Set paused = false in kontobro.toml and restart to send them."}</p>` : ""}
${await targetStateLine(s.runner, t.name)}
${connectionLine(s.runner, t.name, s.hosted ? `kontobro tenant connect ${s.hosted.tenant} ${t.name}` : undefined)}
${budgetLines(t)}
<p>Last successful delivery: <strong class="last-success">${showTime(lastSuccess)}</strong></p>
<ul class="counts">${DELIVERY_STATUSES.map((st) => html`<li class="status-${st}"><span>${DELIVERY_STATUS_LABELS[st]}</span><strong data-status="${st}">${byStatus.get(st) ?? 0}</strong></li>`)}</ul>
${targetCharts(t.name, stats, now)}
${failures.length > 0 ? html`<h3>Needs action</h3>${failures.map((d) => problemRow(s.base, d, true))}` : wrongCredits.length > 0 ? "" : html`<p class="ok">Nothing needs action.</p>`}
${wrongCredits.length > 0 ? html`<h3>Credit notes booked against the wrong document</h3>${wrongCredits.map((p) => wrongCreditRow(s.base, p))}` : ""}
${retrying.length > 0 ? html`<h3>Retrying</h3>${retrying.map((d) => problemRow(s.base, d, false))}` : ""}
${waiting.length > 0 ? html`<h3>Waiting</h3>${waiting.map((d) => problemRow(s.base, d, false))}` : ""}
</section>`;
}

/** The target's own backpressure: a pause it asked for, and the circuit breaker (agent/target-state.ts). */
async function targetStateLine(runner: SqlRunner, target: string) {
  const now = Date.now();
  const s = await new TargetStateStore(runner).get(target);
  const paused = s.pausedUntil !== null && s.pausedUntil > now;
  return html`<p class="target-state${paused || s.breaker !== "closed" ? " paused" : ""}" data-breaker="${s.breaker}" data-paused-until="${paused ? s.pausedUntil : ""}">${describeTargetState(s, now)}</p>`;
}

/** A quota the target counts against us (e.g. server calls per day), as its connector counts it. */
function budgetLines(t: StatusTarget) {
  let budgets: ReturnType<NonNullable<typeof t.budgets>> = [];
  try {
    budgets = t.budgets?.() ?? [];
  } catch {
    return "";
  }
  return budgets.map(
    (b) =>
      html`<p class="budget${b.used >= b.limit ? " paused" : ""}" data-budget="${b.name}" data-used="${b.used}" data-limit="${b.limit}">${b.title}: <strong>${b.used} of ${b.limit}</strong> (${b.period})${b.note ? ` · ${b.note}` : ""}</p>`,
  );
}

/** A credit note at the target crediting what turned out the wrong document (agent/notify/credited-after-push.ts). */
function wrongCreditRow(base: string, p: Problem) {
  const key = String(p.detail.key);
  return html`<div class="problem credited-after-push" data-credit-note="${key}" data-code="${p.code ?? ""}">
<div><strong><a href="${recordHref("invoice", key, base)}">credit note ${key}</a></strong> <span class="muted">at ${p.target}</span></div>
<div class="message">${p.message}</div>
<div class="hint">How to fix: ${p.hint}</div>
</div>`;
}

function problemRow(base: string, d: DeliveryRow, withRetry: boolean) {
  return html`<div class="problem" data-delivery="${d.id}">
<div><strong><a href="${recordHref(d.entity, d.key, base)}">${recordName(kindOfEvent(d.entity as Entity, d.eventType), d.key)}</a></strong> <span class="muted">delivery ${d.id} · ${d.attempts} attempt(s)${d.uncertain ? " · checked before resend" : ""}${d.status === "pending" ? ` · next attempt at ${showTime(d.nextAttemptAt)}` : ""}</span></div>
<div class="message">${d.errorMessage ?? ""}</div>
${d.errorHint ? html`<div class="hint">How to fix: ${d.errorHint}</div>` : ""}
${withRetry ? retryForm(base, d, kindOfEvent(d.entity as Entity, d.eventType), d.key) : ""}
</div>`;
}

const CSS = `
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;gap:16px;align-items:baseline}
header h1{margin:0;font-size:20px} header .muted,header a{color:#b8c0cc}
main{max-width:1100px;margin:0 auto;padding:16px}
.card{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{margin:0 0 8px;font-size:18px} h3{font-size:15px;margin:16px 0 8px}
.muted{color:#4b5563;font-weight:normal;font-size:13px}
.counts{display:flex;flex-wrap:wrap;gap:8px;list-style:none;padding:0;margin:8px 0}
.counts li{background:#f0f2f5;border-radius:6px;padding:6px 12px;display:flex;gap:8px}
.counts .status-needs_action strong{color:#b42318} .counts .status-done strong{color:#067647}
.problem{border-left:4px solid #f04438;background:#fff6f5;padding:8px 12px;margin:6px 0;border-radius:4px}
.problem .hint{color:#344054;margin-top:4px} .problem form{margin-top:6px}
button{background:#1d2330;color:#fff;border:0;border-radius:4px;padding:4px 12px;cursor:pointer}
button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #2e90fa;outline-offset:2px}
caption{text-align:left;font-weight:600;padding:4px 0} tbody th{font-weight:normal}
.fault{border-left:6px solid #b42318;background:#fef3f2} .fault h2{color:#b42318}
.ok{color:#067647} .paused{background:#fffaeb;border-left:4px solid #f79009;padding:6px 10px;border-radius:4px} table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaecf0}`;
