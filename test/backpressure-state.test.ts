// The per-target pause and circuit breaker as pure functions, and their store (table target_state).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { validateConfig } from "../agent/config.ts";
import { openDatabase } from "../agent/db/index.ts";
import {
  admission,
  applySignal,
  BREAKER_DEFAULTS,
  breakerPolicy,
  releaseProbe,
  rescheduleAhead,
  describeTargetState,
  initialState,
  readTargetState,
  signalOf,
  takeProbe,
  TargetStateStore,
  type BreakerPolicy,
  type TargetSignal,
  type TargetState,
} from "../agent/target-state.ts";
import { MAX_PAUSE_MS, notSentError, TargetError } from "../connectors/http.ts";
import { tempDir } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

const P: BreakerPolicy = { failures: 3, baseMs: 1000, maxMs: 4000 };
const fail = { kind: "failed", reason: "500: boom" } as const;
const ok = { kind: "ok" } as const;
const T0 = 1_000_000;

describe("signalOf: what a push's error says about the target", () => {
  const err = (status: number | undefined, code = "x", retryAfterMs?: number) =>
    new TargetError("retryable", { code, message: "m", status, retryAfterMs });
  test("429 and 503 with Retry-After pause the target; other 5xx and network failures count for the breaker", () => {
    expect(signalOf(err(429, "rate_limited", 600_000))).toMatchObject({ kind: "throttled", retryAfterMs: 600_000 });
    expect(signalOf(err(429, "rate_limited"))).toMatchObject({ kind: "throttled", retryAfterMs: undefined });
    expect(signalOf(err(503, "x", 2000))).toMatchObject({ kind: "throttled", retryAfterMs: 2000 });
    expect(signalOf(err(503))).toMatchObject({ kind: "failed" });
    expect(signalOf(err(500))).toMatchObject({ kind: "failed" });
    for (const code of ["timeout", "connection_lost", "unreachable"])
      expect(signalOf(err(undefined, code))).toMatchObject({ kind: "failed" });
  });
  test("a 4xx refusal means the target is up; a local pause or a bug of ours says nothing about it", () => {
    expect(signalOf(err(400))).toEqual({ kind: "ok" });
    expect(signalOf(err(undefined, "target_paused", 5000))).toEqual({ kind: "none" });
    expect(signalOf(new Error("bug"))).toEqual({ kind: "none" });
  });

  test("a request held back by the push's fence was never sent: it says nothing about the target (not a success)", () => {
    expect(signalOf(notSentError("fenced", "POST /invoices/drafts", false))).toEqual({ kind: "none" });
    expect(signalOf(notSentError("fenced", "POST /invoices/booked", true))).toEqual({ kind: "none" });
  });
});

describe("the breaker: closed -> open after N failures -> half-open probe -> closed", () => {
  test("opens after N failures in a row, not before; a success in between resets the count", () => {
    let s = initialState("t");
    s = applySignal(s, fail, T0, P);
    s = applySignal(s, fail, T0, P);
    expect(s.breaker).toBe("closed");
    s = applySignal(s, ok, T0, P);
    expect(s.failures).toBe(0);
    for (let i = 0; i < 3; i++) s = applySignal(s, fail, T0, P);
    expect(s).toMatchObject({ breaker: "open", failures: 3, probeDelayMs: 1000, nextProbeAt: T0 + 1000 });
    expect(admission(s, T0 + 999)).toEqual({ kind: "none", until: T0 + 1000 });
    expect(admission(s, T0 + 1000)).toEqual({ kind: "probe" });
  });

  test("one probe at a time; a failed probe re-opens with the delay doubled up to the cap; a good one closes", () => {
    let s: TargetState = { ...initialState("t"), breaker: "open", failures: 3, probeDelayMs: 1000, nextProbeAt: T0 };
    let now = T0;
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(admission(s, now).kind).toBe("probe");
      s = takeProbe(s, now, 60_000, null);
      expect(s.breaker).toBe("half_open");
      expect(admission(s, now + 10).kind).toBe("none"); // the probe is out: nobody else goes
      s = applySignal(s, fail, now + 10, P, true);
      expect(s.breaker).toBe("open");
      delays.push(s.probeDelayMs!);
      now = s.nextProbeAt!;
    }
    expect(delays).toEqual([2000, 4000, 4000, 4000]);
    s = applySignal(takeProbe(s, now, 60_000, null), ok, now + 5, P, true);
    expect(s).toMatchObject({ breaker: "closed", failures: 0, probeDelayMs: null, nextProbeAt: null });
    expect(admission(s, now + 5)).toEqual({ kind: "all" });
  });

  test("the probe names its worker while it is out; every answer that ends it, and a release, clear the name", () => {
    const open: TargetState = { ...initialState("t"), breaker: "open", failures: 3, probeDelayMs: 1000, nextProbeAt: T0 };
    const out = takeProbe(open, T0, 60_000, 7);
    expect(out).toMatchObject({ breaker: "half_open", probeOwner: 7, nextProbeAt: T0 + 60_000 });
    // Answers of pushes sent before the breaker opened leave the probe out, and its worker named.
    expect(applySignal(out, fail, T0 + 1, P, false).probeOwner).toBe(7);
    expect(applySignal(out, { kind: "throttled", retryAfterMs: 1000, reason: "429" }, T0 + 1, P, false).probeOwner).toBe(7);
    // The probe's own answer ends it, whatever it says.
    const ends: TargetSignal[] = [ok, fail, { kind: "none" }, { kind: "throttled", retryAfterMs: 1000, reason: "429" }];
    for (const sig of ends) expect(applySignal(out, sig, T0 + 1, P, true).probeOwner).toBeNull();
    // Released (its worker is gone): the next probe may go now, and nobody owns one.
    expect(releaseProbe(out, T0 + 10)).toMatchObject({ probeOwner: null, nextProbeAt: T0 + 10 });
    // A release never postpones a probe that is already due; it only clears the owner.
    expect(releaseProbe({ ...out, nextProbeAt: T0 + 5 }, T0 + 10)).toMatchObject({ probeOwner: null, nextProbeAt: T0 + 5 });
  });

  test("answers of pushes sent before the breaker opened do not move it; a probe that sent nothing frees the slot", () => {
    let s = takeProbe({ ...initialState("t"), breaker: "open", failures: 3, probeDelayMs: 1000, nextProbeAt: T0 }, T0, 60_000, null);
    expect(applySignal(s, ok, T0 + 1, P, false)).toBe(s);
    expect(applySignal(s, fail, T0 + 1, P, false)).toMatchObject({ breaker: "half_open", failures: 4 });
    s = applySignal(s, { kind: "none" }, T0 + 2, P, true);
    expect(admission(s, T0 + 2)).toEqual({ kind: "probe" });
  });
});

describe("the pause the target asks for", () => {
  test("a 429 with Retry-After stops every claim until then, then one request goes first", () => {
    let s = applySignal(initialState("t"), { kind: "throttled", retryAfterMs: 600_000, reason: "429: slow down" }, T0, P);
    expect(s).toMatchObject({ pausedUntil: T0 + 600_000, pauseReason: "429: slow down", breaker: "half_open" });
    expect(admission(s, T0 + 599_999)).toEqual({ kind: "none", until: T0 + 600_000 });
    expect(admission(s, T0 + 600_000)).toEqual({ kind: "probe" });
    // A shorter Retry-After from a push still in flight never shortens the pause.
    s = applySignal(s, { kind: "throttled", retryAfterMs: 1000, reason: "429" }, T0 + 10, P);
    expect(s.pausedUntil).toBe(T0 + 600_000);
  });

  test("a probe answered with a pause ends the probe: the next one goes when the pause ends, not after the probe's lease", () => {
    let s = takeProbe(
      applySignal(initialState("t"), { kind: "throttled", retryAfterMs: 1000, reason: "503" }, T0, P),
      T0 + 1000,
      60_000,
      null,
    );
    s = applySignal(s, { kind: "throttled", retryAfterMs: 1000, reason: "503" }, T0 + 1010, P, true);
    expect(s).toMatchObject({ breaker: "half_open", pausedUntil: T0 + 2010, nextProbeAt: T0 + 2010 });
    expect(admission(s, T0 + 2010)).toEqual({ kind: "probe" });
  });

  test("a 429 without Retry-After pauses for the breaker's base delay; an absurd one is capped at a day", () => {
    expect(applySignal(initialState("t"), { kind: "throttled", retryAfterMs: undefined, reason: "429" }, T0, P).pausedUntil).toBe(
      T0 + 1000,
    );
    expect(applySignal(initialState("t"), { kind: "throttled", retryAfterMs: 1e12, reason: "429" }, T0, P).pausedUntil).toBe(
      T0 + MAX_PAUSE_MS,
    );
  });

  test("the status line says who paused and until when, and the breaker's state", () => {
    const paused = applySignal(
      initialState("t"),
      { kind: "throttled", retryAfterMs: 600_000, reason: "429: slow down" },
      Date.UTC(2026, 0, 1),
      P,
    );
    expect(describeTargetState(paused, Date.UTC(2026, 0, 1))).toContain(
      "Paused by the target until 2026-01-01 00:10:00 UTC (429: slow down)",
    );
    const open = { ...initialState("t"), breaker: "open" as const, failures: 5, nextProbeAt: Date.UTC(2026, 0, 1, 0, 0, 5) };
    expect(describeTargetState(open, Date.UTC(2026, 0, 1))).toContain(
      "Circuit breaker open after 5 failure(s) in a row: the next probe goes at 2026-01-01 00:00:05 UTC",
    );
    expect(describeTargetState(initialState("t"), 0)).toContain("closed");
  });
});

describe("TargetStateStore", () => {
  test("stores the state per target, survives reopening the database, reads nothing for an unknown target", async () => {
    const path = join(tempDir(), "k.db");
    let db = openDatabase(path);
    const store = new TargetStateStore(sqliteRunner(db.$client));
    expect(await store.get("eco")).toEqual(initialState("eco"));
    const s = applySignal(initialState("eco"), { kind: "throttled", retryAfterMs: 600_000, reason: "429" }, T0, P);
    await store.transaction((tx) => store.put(s, tx));
    db.$client.close();
    db = openDatabase(path);
    expect(await new TargetStateStore(sqliteRunner(db.$client)).get("eco")).toEqual(s);
    expect(readTargetState(db, "eco")).toEqual(s);
    expect(readTargetState(db, "other")).toBeNull();
    db.$client.close();
  });
});

describe("configuration and restarts", () => {
  test("[dispatch] breaker_* keys: defaults, own values, wrong values named", () => {
    expect(breakerPolicy(validateConfig({}, {}).config.dispatch)).toEqual(BREAKER_DEFAULTS);
    const own = validateConfig({ dispatch: { breaker_failures: 2, breaker_base_ms: 100, breaker_max_ms: 1000 } }, {}).config.dispatch;
    expect(breakerPolicy(own)).toEqual({ failures: 2, baseMs: 100, maxMs: 1000 });
    expect(() => validateConfig({ dispatch: { breaker_failures: 0 } }, {})).toThrow(/breaker_failures/);
  });

  test("a start releases a probe left out by a process that died, but keeps a pause and an open breaker's delay", () => {
    const probing = takeProbe(
      { ...initialState("t"), breaker: "open", failures: 5, probeDelayMs: 1000, nextProbeAt: T0 },
      T0,
      120_000,
      null,
    );
    expect(admission(releaseProbe(probing, T0 + 10), T0 + 10)).toEqual({ kind: "probe" });
    const paused = applySignal(initialState("t"), { kind: "throttled", retryAfterMs: 600_000, reason: "429" }, T0, P);
    expect(releaseProbe(paused, T0 + 10)).toBe(paused);
    const open = { ...initialState("t"), breaker: "open" as const, failures: 5, probeDelayMs: 1000, nextProbeAt: T0 + 1000 };
    expect(releaseProbe(open, T0 + 10)).toBe(open);
  });
});

describe("rescheduleAhead: the clock went back", () => {
  test("a state written ahead of now moves its pause and next probe back by as much; one written before now stays as it is", () => {
    const T0 = 1_700_000_000_000;
    const ahead = {
      ...initialState("t", T0 + 3_600_000),
      pausedUntil: T0 + 3_601_000,
      breaker: "half_open" as const,
      nextProbeAt: T0 + 3_601_000,
    };
    expect(rescheduleAhead(ahead, T0)).toMatchObject({ pausedUntil: T0 + 1000, nextProbeAt: T0 + 1000, updatedAt: T0 });
    // Idempotent: written now, a second run (another worker's) changes nothing.
    const once = rescheduleAhead(ahead, T0);
    expect(rescheduleAhead(once, T0)).toBe(once);
    const before = { ...ahead, updatedAt: T0 - 5 };
    expect(rescheduleAhead(before, T0)).toBe(before);
  });
});
