// The status page's storage card: the database's size on disk, the free space on its disk (and the export folder's,
// agent/disk-space.ts) and what the last prune of finished work removed (agent/retention.ts). Rendered from one line in status-page.ts.
import { html } from "hono/html";
import { databaseSize, formatBytes, lastPrune } from "../retention.ts";
import { showTime } from "../time.ts";
import type { AppContext } from "./context.ts";

export function renderStorageSection(ctx: AppContext) {
  const size = databaseSize(ctx.db);
  const last = lastPrune(ctx.db);
  return html`<section class="card storage"><h2>Storage</h2>
<p>Database: <strong class="database-bytes" data-bytes="${size.bytes}">${formatBytes(size.bytes)}</strong>
<span class="muted">(write-ahead log ${formatBytes(size.walBytes)}; ${formatBytes(size.freeBytes)} freed by pruning, reused before the file grows)</span></p>
${(ctx.disk?.current() ?? []).map(
  (r) =>
    html`<p class="disk-free${ctx.disk!.low().some((l) => l.holds === r.holds) ? " paused" : ""}" data-holds="${r.holds}" data-free-bytes="${r.freeBytes}">Free on the disk of ${r.holds === "database" ? "the database" : "the export output folder"}: <strong>${formatBytes(r.freeBytes)}</strong> of ${formatBytes(r.sizeBytes)} <span class="muted">(${r.path}; ${ctx.disk!.thresholdBytes > 0 ? `warned below ${formatBytes(ctx.disk!.thresholdBytes)}` : "no warning"}: agent.disk_free_warn_bytes)</span></p>`,
)}
${
  last
    ? html`<p class="last-prune">Last prune ${showTime(last.at)}: finished work older than ${last.retentionDays} days —
<span data-pruned="events">${last.events}</span> event payload(s), <span data-pruned="deliveries">${last.deliveries}</span> deliveries,
<span data-pruned="inbox_items">${last.inboxItems}</span> inbox item(s), <span data-pruned="job_runs">${last.jobRuns}</span> pull run(s) removed${last.interrupted ? " (interrupted; continued at the next run)" : ""}.</p>`
    : html`<p class="last-prune muted">No prune has run yet: it runs at start and then every hour (agent.retention_days = 0 keeps everything).</p>`
}
</section>`;
}
