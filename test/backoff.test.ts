import { describe, expect, test } from "bun:test";
import { retryDelayMs } from "../agent/backoff.ts";

const policy = { baseMs: 1000, maxMs: 60_000 };

describe("retry backoff", () => {
  test("grows exponentially with jitter in the upper half of the window", () => {
    expect(retryDelayMs(1, policy, undefined, () => 0)).toBe(500);
    expect(retryDelayMs(1, policy, undefined, () => 1)).toBe(1000);
    expect(retryDelayMs(4, policy, undefined, () => 0)).toBe(4000);
    expect(retryDelayMs(4, policy, undefined, () => 1)).toBe(8000);
  });

  test("is capped", () => {
    expect(retryDelayMs(50, policy, undefined, () => 1)).toBe(60_000);
  });

  test("never comes back before Retry-After, even when it exceeds the cap", () => {
    expect(retryDelayMs(1, policy, 3000, () => 0)).toBe(3000);
    expect(retryDelayMs(1, policy, 120_000, () => 0.5)).toBeGreaterThanOrEqual(120_000);
    expect(retryDelayMs(1, policy, 3000, () => 1)).toBeLessThanOrEqual(3000 + 1000);
  });
});
