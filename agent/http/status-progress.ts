// The status page's "In progress" section: a queue catching up after a burst, and exports and pulls under way (in
// this agent or in a `kontobro export` / `kontobro pull` of its own; a hosted tenant's on any of its workers), each
// with a <progress> bar labelled by its text. Rendered from one line in status-page.ts; while something runs, a few
// lines of script fetch the section again every two seconds (<base>/ui/progress). Without script the page shows it
// as of its last load.
import { html, raw } from "hono/html";
import { progressItems, type ProgressItem } from "../in-progress.ts";
import type { StatusContext } from "./context.ts";

/** The section, or "" when nothing is in progress (or the page has no progress to show: StatusContext.inProgress). */
export async function renderProgressSection(s: StatusContext, now = Date.now()) {
  if (!s.inProgress) return "";
  const items = await progressItems({ runner: s.runner, work: s.inProgress.work, targets: s.targets.map((t) => t.name) }, now);
  if (items.length === 0) return "";
  const live = items.some((i) => i.state === "running");
  return html`<section class="card progress" id="progress" aria-labelledby="progress-title" data-live="${live ? "1" : "0"}" data-src="${s.base}/ui/progress">
<style>${raw(CSS)}</style>
<h2 id="progress-title">In progress</h2>
${items.map((item, i) => itemRow(item, i))}
</section>${live ? html`<script>${raw(REFRESH)}</script>` : ""}`;
}

function itemRow(item: ProgressItem, i: number) {
  const id = `progress-${i}`;
  // A bar without value is indeterminate: work whose total is unknown.
  const value = item.total === null ? "" : html` value="${Math.min(item.done, item.total)}" max="${Math.max(item.total, 1)}"`;
  const percent = item.total ? `${Math.floor((Math.min(item.done, item.total) / item.total) * 100)}%` : "";
  return html`<div class="progress-item" data-progress="${item.key}" data-state="${item.state}">
<div><strong id="${id}-label">${item.title}</strong> <span id="${id}-text">${item.text}</span></div>
<progress aria-labelledby="${id}-label" aria-describedby="${id}-text"${value}>${percent}</progress>
</div>`;
}

// Replaces the section's content with a fresh copy every 2 s, and stops once nothing runs any more; not when the
// page's automatic updates are off (?refresh=0, status-refresh.ts).
const REFRESH = `(() => {
  if (document.body.dataset.refreshSeconds === "0") return;
  const timer = setInterval(async () => {
    const section = document.getElementById("progress");
    if (!section) return clearInterval(timer);
    try {
      const res = await fetch(section.dataset.src, { headers: { accept: "text/html" }, credentials: "same-origin" });
      const box = document.createElement("div");
      box.innerHTML = await res.text();
      const fresh = box.querySelector("#progress");
      if (!fresh) return clearInterval(timer);
      section.replaceChildren(...fresh.childNodes);
      if (fresh.dataset.live !== "1") clearInterval(timer);
    } catch {}
  }, 2000);
})();`;

const CSS = `
.progress .progress-item{margin:8px 0} .progress progress{width:100%;height:14px;margin-top:4px}
.progress [data-state="finished"] strong{color:#067647} .progress [data-state="failed"] strong{color:#b42318}
.progress [data-state="stale"] strong{color:#b54708}`;
