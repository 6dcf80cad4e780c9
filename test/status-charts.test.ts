// The status page's charts as pure functions: per-hour statistics into hourly and daily buckets (UTC,
// boundaries included at the start and excluded at the end), bars whose data and heights match the counts,
// the latency percentiles from the histogram, the empty state, the text alternatives, and ?refresh=.
import { describe, expect, test } from "bun:test";
import { emptyHour, HOUR_MS, DAY_MS, LATENCY_BUCKETS, latencyBucket, type HourStats } from "../agent/delivery-stats.ts";
import {
  barHeight,
  bucketLabel,
  bucketStats,
  chartsFrom,
  deliveriesChart,
  latencyChart,
  latencyLabel,
  niceMax,
  percentileBucket,
  RANGES,
  targetCharts,
} from "../agent/http/status-charts.ts";
import { DEFAULT_REFRESH_SECONDS, refreshSeconds } from "../agent/http/status-refresh.ts";

const [HOURLY, DAILY] = RANGES as [(typeof RANGES)[0], (typeof RANGES)[0]];
const NOW = Date.UTC(2026, 5, 1, 14, 30); // 2026-06-01 14:30 UTC
const THIS_HOUR = Date.UTC(2026, 5, 1, 14);

function hour(at: number, counts: Partial<Omit<HourStats, "latency">> = {}, latencies: number[] = []): HourStats {
  const h = { ...emptyHour("eco", at), ...counts };
  for (const ms of latencies) h.latency[latencyBucket(ms)]! += 1;
  return h;
}
const text = async (x: unknown) => String(await x);
/** Every element with `class="<cls>…"` and its attributes. */
function elements(markup: string, cls: string): Record<string, string>[] {
  return [...markup.matchAll(new RegExp(`<(?:g|rect|tr)[^>]*class="${cls}[^"]*"[^>]*>`, "g"))].map((m) =>
    Object.fromEntries([...m[0].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!])),
  );
}

describe("buckets", () => {
  test("24 hourly buckets end with the hour that holds now; the first hour is in, the hour before it and the future are out", () => {
    const first = THIS_HOUR - 23 * HOUR_MS;
    const b = bucketStats(
      [
        hour(first - HOUR_MS, { delivered: 100 }),
        hour(first, { delivered: 1 }),
        hour(THIS_HOUR - HOUR_MS, { delivered: 2, retried: 1 }),
        hour(THIS_HOUR, { delivered: 3, needsAction: 2 }),
        hour(THIS_HOUR + HOUR_MS, { delivered: 100 }),
      ],
      HOURLY,
      NOW,
    );
    expect(b).toHaveLength(24);
    expect(b[0]!.start).toBe(first);
    expect(b[23]!.start).toBe(THIS_HOUR);
    expect(b[23]!.end).toBe(THIS_HOUR + HOUR_MS);
    expect(b.map((x) => x.delivered)).toEqual([1, ...Array(21).fill(0), 2, 3]);
    expect([b[22]!.retried, b[23]!.needsAction]).toEqual([1, 2]);
  });

  test("an hour exactly on a bucket's start belongs to it (now on the hour too)", () => {
    const b = bucketStats([hour(THIS_HOUR, { delivered: 5 })], HOURLY, THIS_HOUR);
    expect(b[23]!.start).toBe(THIS_HOUR);
    expect(b[23]!.delivered).toBe(5);
  });

  test("30 daily buckets are UTC days: the hours of a day add up, midnight starts the next day", () => {
    const today = Date.UTC(2026, 5, 1);
    const firstDay = today - 29 * DAY_MS;
    const b = bucketStats(
      [
        hour(firstDay - HOUR_MS, { delivered: 100 }), // 23:00 the day before the first: out
        hour(firstDay, { delivered: 1 }),
        hour(today - HOUR_MS, { delivered: 2 }, [30, 30]), // yesterday 23:00
        hour(today, { delivered: 3 }, [30]), // today 00:00
        hour(THIS_HOUR, { delivered: 4, retried: 1 }, [3_000]),
      ],
      DAILY,
      NOW,
    );
    expect(b).toHaveLength(30);
    expect(b[0]!.start).toBe(firstDay);
    expect(b.map((x) => x.delivered)).toEqual([1, ...Array(27).fill(0), 2, 7]);
    expect(b[29]!.latency[latencyBucket(30)]).toBe(1);
    expect(b[29]!.latency[latencyBucket(3_000)]).toBe(1);
    expect(chartsFrom(NOW)).toBe(firstDay);
    expect(bucketLabel(b[29]!, DAILY)).toBe("2026-06-01 (UTC)");
    expect(bucketLabel(bucketStats([], HOURLY, NOW)[23]!, HOURLY)).toBe("2026-06-01 14:00–15:00 UTC");
  });
});

describe("latency percentiles", () => {
  test("the bucket holding the p-quantile; none without deliveries", () => {
    const h = LATENCY_BUCKETS.map(() => 0);
    expect(percentileBucket(h, 0.5)).toBeNull();
    h[0] = 90; // ≤ 50 ms
    h[5] = 10; // ≤ 2.5 s
    expect(percentileBucket(h, 0.5)).toBe(0);
    expect(percentileBucket(h, 0.9)).toBe(0);
    expect(percentileBucket(h, 0.95)).toBe(5);
    expect(latencyLabel(0)).toBe("≤ 50 ms");
    expect(latencyLabel(5)).toBe("≤ 2.5 s");
    expect(latencyLabel(LATENCY_BUCKETS.length - 1)).toBe("> 30 min");
  });

  test("the latency chart has a point per bucket with deliveries, with its median and 95th percentile", async () => {
    const rows = [hour(THIS_HOUR - 2 * HOUR_MS, { delivered: 3 }, [10, 20, 4_000]), hour(THIS_HOUR, { delivered: 1 }, [2 * 3_600_000])];
    const svg = await text(latencyChart("eco", HOURLY, bucketStats(rows, HOURLY, NOW)));
    const points = elements(svg, "point");
    expect(points.map((p) => [p["data-start"], p["data-count"], p["data-p50-ms"], p["data-p95-ms"]])).toEqual([
      [new Date(THIS_HOUR - 2 * HOUR_MS).toISOString(), "3", "50", "5000"],
      [new Date(THIS_HOUR).toISOString(), "1", "-1", "-1"],
    ]);
    // Two lone points: no line joins buckets that are not next to each other.
    expect(svg).toMatch(/class="line median" d="M[\d. ]+ M[\d. ]+"/);
    expect(svg).toContain("stroke-dasharray"); // the 95th percentile is dashed, not only another colour
  });
});

describe("deliveries chart", () => {
  test("one group per bucket with its counts; bar heights follow the counts on a 1-2-5 axis", async () => {
    const rows = [
      hour(THIS_HOUR - 3 * HOUR_MS, { delivered: 40 }),
      hour(THIS_HOUR - HOUR_MS, { delivered: 10, retried: 3, needsAction: 1 }),
      hour(THIS_HOUR, { delivered: 20 }),
    ];
    const svg = await text(deliveriesChart("eco", HOURLY, bucketStats(rows, HOURLY, NOW)));
    const groups = elements(svg, "bucket");
    expect(groups).toHaveLength(24);
    expect(groups.slice(-4).map((g) => [g["data-delivered"], g["data-failed"]])).toEqual([
      ["40", "0"],
      ["0", "0"],
      ["10", "4"],
      ["20", "0"],
    ]);
    expect(niceMax(40)).toBe(50);
    const bars = elements(svg, "bar delivered");
    expect(bars.map((b) => b["data-count"])).toEqual(["40", "10", "20"]);
    expect(bars.map((b) => Number(b.height))).toEqual([barHeight(40, 50), barHeight(10, 50), barHeight(20, 50)]);
    expect(Number(bars[0]!.height) / Number(bars[2]!.height)).toBeCloseTo(2, 1);
    const failed = elements(svg, "bar failed");
    expect(failed.map((b) => b["data-count"])).toEqual(["4"]);
    // Stacked: the failure sits on top of that hour's deliveries.
    expect(Number(failed[0]!.y) + Number(failed[0]!.height)).toBeCloseTo(Number(bars[1]!.y), 1);
    expect(svg).toContain("<title>2026-06-01 13:00–14:00 UTC: 10 delivered, 4 failed</title>");
  });

  test("one failure among thousands still shows", () => {
    expect(niceMax(5_001)).toBe(10_000);
    expect(barHeight(1, 10_000)).toBeGreaterThanOrEqual(2);
    expect(barHeight(0, 10_000)).toBe(0);
  });

  test("accessible: role img, a title and description it points to, failures hatched, the numbers in a table", async () => {
    const rows = [hour(THIS_HOUR, { delivered: 2, needsAction: 1 }, [30, 40])];
    const markup = await text(targetCharts("eco", rows, NOW));
    const svgs = [...markup.matchAll(/<svg[^>]*>/g)].map((m) => m[0]);
    expect(svgs).toHaveLength(4); // deliveries and latency, per range
    for (const svg of svgs) {
      expect(svg).toContain('role="img"');
      const [, title] = svg.match(/aria-labelledby="([^"]+)"/)!;
      const [, desc] = svg.match(/aria-describedby="([^"]+)"/)!;
      expect(markup).toContain(`<title id="${title}">`);
      expect(markup).toContain(`<desc id="${desc}">`);
    }
    expect(markup).toContain("2 delivered and 1 failed attempts (0 retried, 1 needing action)");
    expect(markup).toContain('fill="url(#chart-eco-24h-deliveries-hatch)"');
    expect(markup).toContain("Failed (hatched)");
    const tables = [...markup.matchAll(/<details class="chart-numbers"[\s\S]*?<\/details>/g)].map((m) => m[0]);
    expect(tables).toHaveLength(2);
    expect(tables[0]).toContain("<caption>Deliveries to eco per hour, last 24 hours (UTC)</caption>");
    expect(tables[0]).toContain('<th scope="col">Median time to deliver</th>');
    const rowsOfTable = [...tables[0]!.matchAll(/<tr data-start="([^"]+)"><th scope="row">([^<]+)<\/th>((?:<td>[^<]*<\/td>)+)/g)];
    expect(rowsOfTable).toHaveLength(24);
    expect(rowsOfTable[23]![3]).toBe("<td>2</td><td>0</td><td>1</td><td>≤ 50 ms</td><td>≤ 50 ms</td>");
    expect(markup).toContain("median <strong>≤ 50 ms</strong>, 95% within <strong>≤ 50 ms</strong> (2 delivered)");
  });

  test("no data: a 'no deliveries yet' state instead of empty axes", async () => {
    const markup = await text(targetCharts("eco", [], NOW));
    expect(markup).not.toContain("<svg");
    expect(markup).toContain("No deliveries yet in the last 24 hours.");
    expect(markup).toContain("No deliveries yet in the last 30 days.");
    // Older than 30 days counts as nothing too.
    expect(await text(targetCharts("eco", [hour(chartsFrom(NOW) - HOUR_MS, { delivered: 9 })], NOW))).not.toContain("<svg");
  });

  test("failures without any delivery: bars, and the latency chart says there are no times", async () => {
    const markup = await text(targetCharts("eco", [hour(THIS_HOUR, { retried: 2 })], NOW));
    expect(elements(markup, "bar failed").map((b) => b["data-count"])).toEqual(["2", "2"]);
    expect(markup).toContain("No deliveries yet in the last 24 hours, so no times to show.");
  });

  test("a target's name is escaped", async () => {
    const markup = await text(targetCharts('<b x="1">', [hour(THIS_HOUR, { delivered: 1 }, [1])], NOW));
    expect(markup).not.toContain('<b x="1">');
    expect(markup).toContain("&lt;b x=&quot;1&quot;&gt;");
  });
});

describe("?refresh=", () => {
  test("whole seconds from 0 (off) to 3600; anything else is the default", () => {
    expect(refreshSeconds(undefined)).toBe(DEFAULT_REFRESH_SECONDS);
    expect(refreshSeconds("1")).toBe(1);
    expect(refreshSeconds("0")).toBe(0);
    expect(refreshSeconds("3600")).toBe(3600);
    for (const bad of ["3601", "-1", "1.5", "abc", ""]) expect(refreshSeconds(bad)).toBe(DEFAULT_REFRESH_SECONDS);
  });
});
