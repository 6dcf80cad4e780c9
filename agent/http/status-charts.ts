// The status page's charts per target (status-page.ts's targetCard): deliveries and failures per hour over
// the last 24 hours and per day over the last 30 days, and how long deliveries took from the event's
// arrival. Pure functions from the per-hour statistics (agent/delivery-stats.ts) to inline SVG: no script,
// no library. Each chart has a title and a description, failures are hatched as well as red, and the same
// numbers are in a table beside it.
import { html } from "hono/html";
import { DAY_MS, HOUR_MS, LATENCY_BUCKETS, type HourStats } from "../delivery-stats.ts";

export interface ChartRange {
  key: "24h" | "30d";
  sizeMs: number;
  count: number;
  title: string;
  /** "hour" or "day": what one bar is. */
  per: string;
  /** Every how many buckets the time axis is labelled (counted back from the newest). */
  labelEvery: number;
}

export const RANGES: ChartRange[] = [
  { key: "24h", sizeMs: HOUR_MS, count: 24, title: "Last 24 hours", per: "hour", labelEvery: 6 },
  { key: "30d", sizeMs: DAY_MS, count: 30, title: "Last 30 days", per: "day", labelEvery: 7 },
];

/** One bar: the pushes from `start` (inclusive) to `end` (exclusive). */
export interface Bucket {
  start: number;
  end: number;
  delivered: number;
  retried: number;
  needsAction: number;
  /** Counts per LATENCY_BUCKETS entry. */
  latency: number[];
}

export const failedIn = (b: { retried: number; needsAction: number }) => b.retried + b.needsAction;

/** The range's buckets, oldest first; the newest holds `now` (UTC hours and days). Rows outside are left out. */
export function bucketStats(rows: HourStats[], range: ChartRange, now: number): Bucket[] {
  const newest = Math.floor(now / range.sizeMs) * range.sizeMs;
  const first = newest - (range.count - 1) * range.sizeMs;
  const buckets: Bucket[] = Array.from({ length: range.count }, (_, i) => ({
    start: first + i * range.sizeMs,
    end: first + (i + 1) * range.sizeMs,
    delivered: 0,
    retried: 0,
    needsAction: 0,
    latency: LATENCY_BUCKETS.map(() => 0),
  }));
  for (const r of rows) {
    const b = buckets[Math.floor((r.hour - first) / range.sizeMs)];
    if (!b) continue;
    b.delivered += r.delivered;
    b.retried += r.retried;
    b.needsAction += r.needsAction;
    r.latency.forEach((n, i) => {
      b.latency[i]! += n;
    });
  }
  return buckets;
}

/** The histogram bucket (index into LATENCY_BUCKETS) holding the p-quantile, or null without deliveries. */
export function percentileBucket(histogram: number[], p: number): number | null {
  const total = histogram.reduce((s, n) => s + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i]!;
    if (seen >= rank) return i;
  }
  return histogram.length - 1;
}

const bucketBound = (i: number) => LATENCY_BUCKETS[i]!.upToMs;

/** "≤ 250 ms", "≤ 2.5 s", "≤ 5 min", "> 30 min": what a histogram bucket says about a latency. */
export function latencyLabel(i: number): string {
  const ms = bucketBound(i);
  if (ms === Number.POSITIVE_INFINITY) return `> ${duration(bucketBound(i - 1))}`;
  return `≤ ${duration(ms)}`;
}
const duration = (ms: number) => (ms < 1_000 ? `${ms} ms` : ms < 60_000 ? `${ms / 1_000} s` : `${ms / 60_000} min`);

const iso = (ms: number) => new Date(ms).toISOString();
/** The axis label of a bucket: "14:00" (hours) or "06-01" (days). */
const shortLabel = (b: Bucket, range: ChartRange) => (range.per === "hour" ? iso(b.start).slice(11, 16) : iso(b.start).slice(5, 10));
/** A bucket in words: "2026-06-01 14:00–15:00 UTC" or "2026-06-01 (UTC)". */
export function bucketLabel(b: Bucket, range: ChartRange): string {
  if (range.per === "hour") return `${iso(b.start).slice(0, 16).replace("T", " ")}–${iso(b.end).slice(11, 16)} UTC`;
  return `${iso(b.start).slice(0, 10)} (UTC)`;
}

const sum = (buckets: Bucket[], f: (b: Bucket) => number) => buckets.reduce((s, b) => s + f(b), 0);
const mergedLatency = (buckets: Bucket[]) => LATENCY_BUCKETS.map((_, i) => sum(buckets, (b) => b.latency[i]!));
const isEmpty = (buckets: Bucket[]) => sum(buckets, (b) => b.delivered + failedIn(b)) === 0;

/** The smallest 1, 2 or 5 × 10^k at or above n (the top of the count axis). */
export function niceMax(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= n)!;
}

export const CHART_COLORS = {
  delivered: "#079455",
  failed: "#d92d20",
  median: "#1849a9",
  p95: "#b54708",
  axis: "#667085",
  text: "#344054",
};
/** The drawing area inside each chart's viewBox. */
const G = { width: 480, height: 172, left: 44, right: 472, top: 28, bottom: 132 };
const PLOT_H = G.bottom - G.top;
/** A count above zero is always at least this tall, so one failure among thousands still shows. */
const MIN_BAR = 2;

/** Height of a bar for `count` on an axis that ends at `top`. */
export const barHeight = (count: number, top: number) => (count <= 0 ? 0 : Math.max(MIN_BAR, (count / top) * PLOT_H));

const idFor = (target: string, range: ChartRange, what: string) => `chart-${target.replace(/[^A-Za-z0-9_-]/g, "_")}-${range.key}-${what}`;
const n1 = (x: number) => Math.round(x * 10) / 10;

/** Labels along the time axis: the newest bucket and every labelEvery-th before it. */
function timeAxis(buckets: Bucket[], range: ChartRange, slot: number) {
  return html`${buckets.map((b, i) =>
    (buckets.length - 1 - i) % range.labelEvery === 0
      ? html`<text x="${n1(G.left + (i + 0.5) * slot)}" y="${G.bottom + 14}" text-anchor="middle">${shortLabel(b, range)}</text>`
      : "",
  )}<text x="${G.right}" y="${G.height - 4}" text-anchor="end">${range.per} (UTC)</text>`;
}

/**
 * Deliveries (green) and failed attempts (red, hatched) per bucket, stacked. Each bucket is a group with
 * data-start, data-delivered and data-failed and a tooltip; each bar says its count in data-count.
 */
export function deliveriesChart(target: string, range: ChartRange, buckets: Bucket[]) {
  const id = idFor(target, range, "deliveries");
  const delivered = sum(buckets, (b) => b.delivered);
  const failed = sum(buckets, failedIn);
  if (delivered + failed === 0)
    return html`<p class="chart-empty" data-chart="deliveries" data-range="${range.key}">No deliveries yet in the ${range.title.toLowerCase()}.</p>`;
  const top = niceMax(Math.max(...buckets.map((b) => b.delivered + failedIn(b))));
  const slot = (G.right - G.left) / buckets.length;
  const barW = n1(slot * 0.72);
  const busiest = buckets.reduce((a, b) => (b.delivered + failedIn(b) > a.delivered + failedIn(a) ? b : a));
  const ticks = top % 2 === 0 ? [0, top / 2, top] : [0, top];
  const y = (v: number) => n1(G.bottom - (v / top) * PLOT_H);
  return html`<svg class="chart" data-chart="deliveries" data-range="${range.key}" role="img" aria-labelledby="${id}-title" aria-describedby="${id}-desc" viewBox="0 0 ${G.width} ${G.height}" width="${G.width}" height="${G.height}" font-size="10" fill="${CHART_COLORS.text}">
<title id="${id}-title">Deliveries and failures at ${target}, ${range.title.toLowerCase()}, per ${range.per}</title>
<desc id="${id}-desc">${delivered} delivered and ${failed} failed attempts (${sum(buckets, (b) => b.retried)} retried, ${sum(buckets, (b) => b.needsAction)} needing action). Busiest ${range.per}: ${bucketLabel(busiest, range)} with ${busiest.delivered} delivered and ${failedIn(busiest)} failed. The table below has every ${range.per}'s numbers.</desc>
<defs><pattern id="${id}-hatch" patternUnits="userSpaceOnUse" width="5" height="5" patternTransform="rotate(45)"><rect width="5" height="5" fill="${CHART_COLORS.failed}"/><rect width="1.5" height="5" fill="#fff"/></pattern></defs>
<g class="legend"><rect x="${G.left}" y="6" width="10" height="10" fill="${CHART_COLORS.delivered}"/><text x="${G.left + 14}" y="15">Delivered</text>
<rect x="${G.left + 80}" y="6" width="10" height="10" fill="url(#${id}-hatch)" stroke="${CHART_COLORS.failed}"/><text x="${G.left + 94}" y="15">Failed (hatched)</text></g>
<g class="axis" stroke="${CHART_COLORS.axis}">${ticks.map((t) => html`<line x1="${G.left}" x2="${G.right}" y1="${y(t)}" y2="${y(t)}" stroke-opacity="${t === 0 ? 1 : 0.25}"/>`)}</g>
<g class="axis-labels">${ticks.map((t) => html`<text x="${G.left - 4}" y="${y(t) + 3}" text-anchor="end">${t}</text>`)}
<text transform="translate(10 ${G.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle">per ${range.per}</text>${timeAxis(buckets, range, slot)}</g>
${buckets.map((b, i) => {
  const x = n1(G.left + i * slot + (slot - barW) / 2);
  const dh = barHeight(b.delivered, top);
  const fh = barHeight(failedIn(b), top);
  return html`<g class="bucket" data-start="${iso(b.start)}" data-delivered="${b.delivered}" data-failed="${failedIn(b)}"><title>${bucketLabel(b, range)}: ${b.delivered} delivered, ${failedIn(b)} failed</title><rect class="hit" x="${n1(G.left + i * slot)}" y="${G.top}" width="${n1(slot)}" height="${PLOT_H}" fill="transparent"/>${
    dh > 0
      ? html`<rect class="bar delivered" data-count="${b.delivered}" x="${x}" y="${n1(G.bottom - dh)}" width="${barW}" height="${n1(dh)}" fill="${CHART_COLORS.delivered}"/>`
      : ""
  }${
    fh > 0
      ? html`<rect class="bar failed" data-count="${failedIn(b)}" x="${x}" y="${n1(G.bottom - dh - fh)}" width="${barW}" height="${n1(fh)}" fill="url(#${id}-hatch)" stroke="${CHART_COLORS.failed}" stroke-width="0.75"/>`
      : ""
  }</g>`;
})}
</svg>`;
}

/**
 * Median (solid line, circles) and 95th percentile (dashed line, squares) of the time from an event's
 * arrival to its delivery, per bucket with deliveries, on the histogram's steps. Each point is a group with
 * data-start, data-p50-ms, data-p95-ms (the bucket's upper bound; -1 for "over the last bound") and data-count.
 */
export function latencyChart(target: string, range: ChartRange, buckets: Bucket[]) {
  const id = idFor(target, range, "latency");
  const points = buckets
    .map((b, i) => ({ b, i, count: b.delivered, p50: percentileBucket(b.latency, 0.5), p95: percentileBucket(b.latency, 0.95) }))
    .filter((p): p is typeof p & { p50: number; p95: number } => p.p50 !== null && p.p95 !== null);
  if (points.length === 0)
    return html`<p class="chart-empty" data-chart="latency" data-range="${range.key}">No deliveries yet in the ${range.title.toLowerCase()}, so no times to show.</p>`;
  const all = mergedLatency(buckets);
  // The axis goes at least to 1 s (the promise to the PSA's users) and to the slowest 95th percentile.
  const topLevel = Math.max(
    LATENCY_BUCKETS.findIndex((b) => b.upToMs === 1_000),
    ...points.map((p) => p.p95),
  );
  const slot = (G.right - G.left) / buckets.length;
  const x = (i: number) => n1(G.left + (i + 0.5) * slot);
  const y = (level: number) => n1(G.bottom - (level / topLevel) * PLOT_H);
  const line = (pick: (p: (typeof points)[number]) => number) =>
    points.map((p, k) => `${k > 0 && points[k - 1]!.i === p.i - 1 ? "L" : "M"}${x(p.i)} ${y(pick(p))}`).join(" ");
  const levels = Array.from({ length: topLevel + 1 }, (_, l) => l).filter((l) => topLevel <= 6 || l % 2 === topLevel % 2);
  const boundMs = (level: number) => (bucketBound(level) === Number.POSITIVE_INFINITY ? -1 : bucketBound(level));
  return html`<svg class="chart" data-chart="latency" data-range="${range.key}" role="img" aria-labelledby="${id}-title" aria-describedby="${id}-desc" viewBox="0 0 ${G.width} ${G.height}" width="${G.width}" height="${G.height}" font-size="10" fill="${CHART_COLORS.text}">
<title id="${id}-title">Time from an event's arrival to its delivery at ${target}, ${range.title.toLowerCase()}, per ${range.per}</title>
<desc id="${id}-desc">Over the ${range.title.toLowerCase()}: median ${latencyLabel(percentileBucket(all, 0.5)!)}, 95% delivered within ${latencyLabel(percentileBucket(all, 0.95)!)}. Times are shown as the step of a histogram they fall in. The table below has every ${range.per}'s numbers.</desc>
<g class="legend"><line x1="${G.left}" x2="${G.left + 16}" y1="11" y2="11" stroke="${CHART_COLORS.median}" stroke-width="2"/><circle cx="${G.left + 8}" cy="11" r="3" fill="${CHART_COLORS.median}"/><text x="${G.left + 20}" y="15">Median</text>
<line x1="${G.left + 80}" x2="${G.left + 96}" y1="11" y2="11" stroke="${CHART_COLORS.p95}" stroke-width="2" stroke-dasharray="4 2"/><rect x="${G.left + 85}" y="8" width="6" height="6" fill="${CHART_COLORS.p95}"/><text x="${G.left + 100}" y="15">95% within (dashed)</text></g>
<g class="axis" stroke="${CHART_COLORS.axis}">${levels.map((l) => html`<line x1="${G.left}" x2="${G.right}" y1="${y(l)}" y2="${y(l)}" stroke-opacity="${l === 0 ? 1 : 0.25}"/>`)}</g>
<g class="axis-labels">${levels.map((l) => html`<text x="${G.left - 4}" y="${y(l) + 3}" text-anchor="end">${latencyLabel(l).replace("≤ ", "")}</text>`)}${timeAxis(buckets, range, slot)}</g>
<path class="line p95" d="${line((p) => p.p95)}" fill="none" stroke="${CHART_COLORS.p95}" stroke-width="2" stroke-dasharray="4 2"/>
<path class="line median" d="${line((p) => p.p50)}" fill="none" stroke="${CHART_COLORS.median}" stroke-width="2"/>
${points.map(
  (p) =>
    html`<g class="point" data-start="${iso(p.b.start)}" data-count="${p.count}" data-p50-ms="${boundMs(p.p50)}" data-p95-ms="${boundMs(p.p95)}"><title>${bucketLabel(p.b, range)}: ${p.count} delivered; median ${latencyLabel(p.p50)}, 95% ${latencyLabel(p.p95)}</title><rect x="${n1(x(p.i) - 3)}" y="${n1(y(p.p95) - 3)}" width="6" height="6" fill="${CHART_COLORS.p95}"/><circle cx="${x(p.i)}" cy="${y(p.p50)}" r="3" fill="${CHART_COLORS.median}"/></g>`,
)}
</svg>`;
}

/** The charts' numbers as a table (caption, header cells), folded away under a summary. */
export function numbersTable(target: string, range: ChartRange, buckets: Bucket[]) {
  const cell = (h: number[]) => {
    const i = percentileBucket(h, 0.5);
    return i === null ? html`<td>–</td><td>–</td>` : html`<td>${latencyLabel(i)}</td><td>${latencyLabel(percentileBucket(h, 0.95)!)}</td>`;
  };
  return html`<details class="chart-numbers" data-range="${range.key}"><summary>Numbers per ${range.per} (table)</summary>
<table><caption>Deliveries to ${target} per ${range.per}, ${range.title.toLowerCase()} (UTC)</caption>
<thead><tr><th scope="col">${range.per === "hour" ? "Hour from (UTC)" : "Day (UTC)"}</th><th scope="col">Delivered</th><th scope="col">Failed, retried</th><th scope="col">Failed, needs action</th><th scope="col">Median time to deliver</th><th scope="col">95% delivered within</th></tr></thead>
<tbody>${buckets.map(
    (b) =>
      html`<tr data-start="${iso(b.start)}"><th scope="row">${iso(b.start)
        .slice(0, range.per === "hour" ? 16 : 10)
        .replace("T", " ")}</th><td>${b.delivered}</td><td>${b.retried}</td><td>${b.needsAction}</td>${cell(b.latency)}</tr>`,
  )}</tbody></table></details>`;
}

/** The sentence above the latency chart: the range's median and 95th percentile in words. */
function latencySummary(buckets: Bucket[]) {
  const all = mergedLatency(buckets);
  const p50 = percentileBucket(all, 0.5);
  if (p50 === null) return "";
  return html`<p class="latency-summary">Time from the event's arrival to delivery: median <strong>${latencyLabel(p50)}</strong>, 95% within <strong>${latencyLabel(percentileBucket(all, 0.95)!)}</strong> (${sum(buckets, (b) => b.delivered)} delivered).</p>`;
}

/** A target's charts: one panel per range, each with its deliveries, latency and numbers. */
export function targetCharts(target: string, rows: HourStats[], now: number) {
  return html`<div class="charts" data-charts="${target}">${RANGES.map((range) => {
    const buckets = bucketStats(rows, range, now);
    return html`<div class="chart-panel" data-range="${range.key}"><h3>${range.title} <span class="muted">per ${range.per}</span></h3>
${deliveriesChart(target, range, buckets)}
${isEmpty(buckets) ? "" : html`${latencySummary(buckets)}${latencyChart(target, range, buckets)}${numbersTable(target, range, buckets)}`}</div>`;
  })}</div>`;
}

/** The oldest hour the charts show at `now`: read the statistics from here on. */
export const chartsFrom = (now: number) => Math.floor(now / DAY_MS) * DAY_MS - (RANGES[1]!.count - 1) * DAY_MS;

/** The charts' styles, added to the status page's stylesheet. */
export const CHART_CSS = `
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:8px 24px;margin:8px 0}
.chart-panel h3{margin:8px 0 4px} .chart{display:block;width:100%;max-width:480px;height:auto}
.chart-empty{color:#6b7280;font-size:13px;border:1px dashed #d0d5dd;border-radius:6px;padding:16px;text-align:center}
.latency-summary{font-size:13px;margin:8px 0 0} .chart-numbers{font-size:13px;margin:4px 0}
.chart-numbers summary{cursor:pointer;color:#1849a9} .chart-numbers caption{text-align:left;font-weight:600;padding:4px 0}
.chart-numbers th[scope=row]{white-space:nowrap;font-weight:normal}`;
