// Rate and time left of long work (agent/progress.ts): pure functions.
import { describe, expect, test } from "bun:test";
import {
  addSample,
  describeAmount,
  describePace,
  estimate,
  formatDuration,
  formatRate,
  RATE_WINDOW_MS,
  ratePerSecond,
  type Sample,
} from "../agent/progress.ts";

const samples = (...pairs: [number, number][]): Sample[] => pairs.map(([at, done]) => ({ at, done }));

describe("estimate", () => {
  test("rate over the samples and time left at that rate", () => {
    const e = estimate(300, 1000, samples([0, 0], [1000, 100], [3000, 300]));
    expect(e.perSecond).toBe(100);
    expect(e.fraction).toBe(0.3);
    expect(e.etaMs).toBe(7000);
    expect(e.finished).toBe(false);
  });

  test("nothing moving: rate 0 and no time left to give", () => {
    const e = estimate(50, 1000, samples([0, 50], [10_000, 50]));
    expect(e.perSecond).toBe(0);
    expect(e.etaMs).toBeNull();
    expect(describePace(e, samples([0, 50], [10_000, 50]))).toBe("no progress in the last 10 s");
  });

  test("one sample, or samples at the same moment: no rate yet", () => {
    expect(estimate(10, 100, samples([5, 10])).perSecond).toBeNull();
    expect(estimate(10, 100, samples([5, 0], [5, 10])).perSecond).toBeNull();
    expect(estimate(10, 100, []).etaMs).toBeNull();
    expect(describePace(estimate(10, 100, []), [])).toBe("");
  });

  test("finished: nothing left, whatever the rate", () => {
    const e = estimate(1000, 1000, samples([0, 0], [1000, 0]));
    expect(e.finished).toBe(true);
    expect(e.etaMs).toBe(0);
    expect(e.fraction).toBe(1);
    expect(describePace(e, [])).toBe("");
    expect(estimate(0, 0, []).finished).toBe(true);
    expect(estimate(0, 0, []).fraction).toBe(1);
  });

  test("more done than the total (the total was counted earlier): finished, fraction capped", () => {
    const e = estimate(1010, 1000, samples([0, 900], [1000, 1010]));
    expect(e.finished).toBe(true);
    expect(e.fraction).toBe(1);
  });

  test("total unknown: a rate, but no fraction and no time left", () => {
    const e = estimate(1200, null, samples([0, 0], [4000, 1200]));
    expect(e.perSecond).toBe(300);
    expect(e.fraction).toBeNull();
    expect(e.etaMs).toBeNull();
    expect(e.finished).toBe(false);
    expect(describeAmount(e, "items")).toBe("1,200 items");
    expect(describePace(e, [])).toBe("300/s");
  });

  test("a count that went down (work dropped out) is no negative rate", () => {
    expect(ratePerSecond(samples([0, 100], [1000, 90]))).toBe(0);
  });
});

describe("addSample", () => {
  test("keeps the window and one sample before it, so the rate spans the whole window", () => {
    let s: Sample[] = [];
    for (let at = 0; at <= 60_000; at += 1000) s = addSample(s, { at, done: at / 10 });
    expect(s[s.length - 1]!.at).toBe(60_000);
    expect(s[0]!.at).toBeLessThan(60_000 - RATE_WINDOW_MS + 1);
    expect(s[1]!.at).toBeGreaterThanOrEqual(60_000 - RATE_WINDOW_MS);
    expect(s.length).toBeLessThanOrEqual(40);
    expect(ratePerSecond(s)).toBe(100);
  });

  test("follows a change of pace within the window", () => {
    let s: Sample[] = [];
    let done = 0;
    for (let at = 0; at <= 120_000; at += 1000) {
      done += at <= 60_000 ? 10 : 100;
      s = addSample(s, { at, done });
    }
    expect(ratePerSecond(s)).toBe(100);
  });

  test("a sample at the same moment replaces the last; an older one is dropped", () => {
    expect(addSample(samples([0, 0], [1000, 5]), { at: 1000, done: 7 })).toEqual(samples([0, 0], [1000, 7]));
    expect(addSample(samples([0, 0], [2000, 5]), { at: 1000, done: 7 })).toEqual(samples([0, 0], [1000, 7]));
  });

  test("never more than 40 samples, however often it is called", () => {
    let s: Sample[] = [];
    for (let at = 0; at < 10_000; at += 10) s = addSample(s, { at, done: at });
    expect(s.length).toBe(40);
  });
});

describe("words", () => {
  test("rates", () => {
    expect(formatRate(1234.4)).toBe("1,234/s");
    expect(formatRate(4.5)).toBe("4.5/s");
    expect(formatRate(1)).toBe("1/s");
    expect(formatRate(0.2)).toBe("12/min");
    expect(formatRate(1 / 600)).toBe("6/h");
    expect(formatRate(0.00001)).toBe("under 1/h");
  });

  test("durations", () => {
    expect(formatDuration(200)).toBe("under a second");
    expect(formatDuration(13_400)).toBe("13 s");
    expect(formatDuration(130_000)).toBe("2 min 10 s");
    expect(formatDuration(120_000)).toBe("2 min");
    expect(formatDuration(25 * 60_000)).toBe("25 min");
    expect(formatDuration(65 * 60_000)).toBe("1 h 5 min");
    expect(formatDuration(3 * 86_400_000)).toBe("3 days");
  });

  test("amount and pace together", () => {
    const s = samples([0, 0], [4000, 1200]);
    const e = estimate(1200, 5000, s);
    expect(`${describeAmount(e, "delivered")} · ${describePace(e, s)}`).toBe("1,200 of 5,000 delivered (24%) · 300/s · about 13 s left");
  });
});
