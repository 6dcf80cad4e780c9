// The status page's pull section: jobs with their last runs and a "run now" button, each target's
// webhook address, and the inbox with every item's state. Rendered from one line in status-page.ts.
import type { Context, Env, Hono } from "hono";
import { html, raw } from "hono/html";
import type { PullsRuntime } from "../pulls/index.ts";
import type { InboxRow } from "../pulls/inbox.ts";
import { recentRuns, type JobRunRow } from "../pulls/runner.ts";
import { jobKey } from "../pulls/scheduler.ts";
import { INBOX_STATE_LABELS, INBOX_STATES, RUN_STATUS_LABELS } from "../states.ts";
import { showTime } from "../time.ts";
import type { StatusContext } from "./context.ts";
import { connectorKinds } from "../../connectors/registry.ts";

/** `base`: where the pages live ("" on SQLite, "/t/<slug>" for a hosted tenant); the buttons and addresses start with it. */
export async function renderPullsSection(ctx: { pulls: PullsRuntime; targets: { name: string; kind: string }[]; base: string }) {
  const { pulls, base } = ctx;
  const jobs = pulls.scheduler.describe();
  const targets = [...new Set([...jobs.map((j) => j.target), ...pulls.webhooks.map((w) => w.name)])];
  if (targets.length === 0) return "";
  const counts = await pulls.inbox.counts();
  const recent = new Map<string, InboxRow[]>();
  for (const t of targets) recent.set(t, await pulls.inbox.recent(t, 15));
  const lastRuns = new Map<string, JobRunRow | undefined>();
  for (const j of jobs) lastRuns.set(jobKey(j.target, j.stream), (await recentRuns(pulls.storage, j.target, j.stream, 1))[0]);
  return html`<style>${raw(CSS)}</style>${targets.map((t) => {
    const hook = pulls.webhooks.find((w) => w.name === t);
    const byState = new Map(counts.filter((c) => c.target === t).map((c) => [c.state, c.n]));
    const items = recent.get(t)!;
    const kind = ctx.targets.find((x) => x.name === t)?.kind ?? hook?.kind;
    const describe = (kind && connectorKinds[kind]?.describePulled) || (() => "");
    return html`<section class="card pulls" data-pulls="${t}">
<h2>${t} <span class="muted">pulls to the PSA</span></h2>
<table class="jobs"><caption>What kontobro pulls from ${t}: each stream's schedule, next and last run</caption>
<thead><tr><th scope="col">Stream</th><th scope="col">Schedule</th><th scope="col">Next run</th><th scope="col">Last run</th><th scope="col">Run it now</th></tr></thead><tbody>
${jobs.filter((j) => j.target === t).map((j) => jobRow(base, j, lastRuns.get(jobKey(j.target, j.stream))))}
</tbody></table>
${hook ? webhookLine(base, hook) : ""}
<h3>Inbox</h3>
<ul class="counts">${INBOX_STATES.map((s) => html`<li><span>${INBOX_STATE_LABELS[s]}</span><strong data-inbox-state="${s}">${byState.get(s) ?? 0}</strong></li>`)}</ul>
${
  items.length === 0
    ? html`<p class="muted">Nothing pulled yet.</p>`
    : html`<table class="inbox"><caption>Items pulled from ${t}, newest first</caption>
<thead><tr><th scope="col">Pulled</th><th scope="col">Type</th><th scope="col">Entry at ${t}</th><th scope="col">Details</th><th scope="col">State</th></tr></thead><tbody>
${items.map((r) => itemRow(r, describe))}</tbody></table>`
}
</section>`;
  })}`;
}

function jobRow(
  base: string,
  j: { target: string; stream: string; cron: string | null; timezone: string; next: Date | null; running: boolean },
  last: JobRunRow | undefined,
) {
  return html`<tr data-job="${j.target}/${j.stream}">
<th scope="row"><strong>${j.stream}</strong></th>
<td>${j.cron ? html`<code>${j.cron}</code> <span class="muted">${j.timezone}</span>` : html`<span class="muted">on demand only</span>`}</td>
<td>${j.next ? showTime(j.next.getTime()) : "—"}</td>
<td>${
    last
      ? html`<span class="run-${last.status}">${RUN_STATUS_LABELS[last.status] ?? last.status}</span> <span class="muted">${showTime(last.startedAt)} (${last.trigger}) ·
fetched ${last.fetched}, imported ${last.imported}, already had ${last.duplicates}, ignored ${last.ignored}</span>
${last.errorMessage ? html`<div class="message">${last.errorMessage}</div>${last.errorHint ? html`<div class="hint">How to fix: ${last.errorHint}</div>` : ""}` : ""}`
      : html`<span class="muted">never</span>`
  }</td>
<td>${j.running ? html`<em>running…</em>` : html`<form method="post" action="${base}/ui/pulls/${j.target}/${j.stream}/run"><button type="submit">${runNowLabel(j.target, j.stream)}</button></form>`}</td>
</tr>`;
}

/** What a job's button says: the pull it starts, "Run pull expenses from eco now". */
export const runNowLabel = (target: string, stream: string) => `Run pull ${stream} from ${target} now`;

/** The target's webhook token and address, with the query strings its connector suggests. */
function webhookLine(base: string, hook: { kind: string; token: string }) {
  const templates = connectorKinds[hook.kind]?.webhookTemplates ?? [];
  const examples = templates.map((t, i) => html`${i === 0 ? "" : " or "}<code>${t}</code>`);
  return html`<p class="webhook">Webhook token (for the target's webhooks): <code class="webhook-token">${hook.token}</code><br>
<span class="muted">Address: <code>${base}/webhooks/${hook.kind}/${hook.token}</code> on this agent (behind your reverse proxy)${
    templates.length > 0
      ? html`, e.g. with
${examples}`
      : ""
  }</span></p>`;
}

/**
 * An inbox row, told by when it was pulled and the entry it came from at the target (the item's seq and feed id are
 * clock-based and hash-based: long numbers that mean nothing to a person; the id stays in data-inbox-item); the
 * details line is the connector's own (ConnectorFactory.describePulled).
 */
function itemRow(r: InboxRow, describe: (type: string, data: any) => string) {
  const details = describe(r.type, JSON.parse(r.payload));
  return html`<tr data-inbox-item="${r.id}" data-state="${r.state}"><td>${showTime(r.createdAt)}</td><td>${r.type}</td><th scope="row">${r.remoteId}</th>
<td>${details}${r.attachmentName ? html` · receipt ${r.attachmentName}` : ""}${r.state === "new" && r.errorMessage ? html`<div class="message">${r.errorMessage}</div>${r.errorHint ? html`<div class="hint">${r.errorHint}</div>` : ""}` : ""}</td>
<td>${INBOX_STATE_LABELS[r.state] ?? r.state}${r.deliveredAt ? html` <span class="muted">${showTime(r.deliveredAt)}</span>` : ""}</td></tr>`;
}

const CSS = `
.pulls table.jobs td,.pulls table.jobs th{vertical-align:top} .pulls tbody th{white-space:nowrap} .pulls .run-ok{color:#067647;font-weight:600}
.pulls .run-failed,.pulls .run-interrupted{color:#b42318;font-weight:600} .pulls .run-running{color:#b54708}
.pulls .message{color:#b42318;margin-top:4px} .pulls .hint{color:#344054}
.pulls code{background:#f0f2f5;padding:1px 4px;border-radius:3px;word-break:break-all}
.pulls tr[data-state="ignored_unknown_project"] td{color:#4b5563}`;

/** The "run now" button at `${prefix}/ui/pulls/…` (status-routes.ts): starts the job without waiting for it, then back to the page. */
export function registerPullUi<E extends Env>(
  app: Hono<E>,
  prefix: string,
  view: (c: Context<E>) => StatusContext | Promise<StatusContext>,
): void {
  app.post(`${prefix}/ui/pulls/:target/:stream/run`, async (c) => {
    const s = await view(c);
    void s.pulls?.runNow(c.req.param("target")!, c.req.param("stream")!, "manual");
    return c.redirect(`${s.base}/`, 303);
  });
}
