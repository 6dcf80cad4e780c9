// Hosted workers share each target's request rate: with a share of 1/N a process's token bucket allows 1/N of
// the configured burst and rate (agent/hosted/rate-share.ts sets the share from the live workers).
import { afterEach, expect, test } from "bun:test";
import { setRateShare, TokenBucket } from "../connectors/http.ts";

afterEach(() => setRateShare(1));

/** How many of `n` takes are granted before `waitMs` passes. */
async function grantedWithin(bucket: TokenBucket, n: number, waitMs: number): Promise<number> {
  let granted = 0;
  for (let i = 0; i < n; i++) void bucket.take().then(() => granted++);
  await Bun.sleep(waitMs);
  return granted;
}

// A rate of one request per 100 s: nothing beyond the burst is granted while the test looks.
test("alone, a process gets the whole burst", async () => {
  expect(await grantedWithin(new TokenBucket(0.01, 4), 6, 100)).toBe(4);
});

test("one of two live workers gets half the burst and half the rate", async () => {
  setRateShare(1 / 2);
  expect(await grantedWithin(new TokenBucket(0.01, 4), 6, 100)).toBe(2);
});

test("a share never leaves less than one request of burst", async () => {
  setRateShare(1 / 8);
  expect(await grantedWithin(new TokenBucket(0.01, 4), 3, 100)).toBe(1);
});

test("a share is more than 0 and at most 1", () => {
  expect(() => setRateShare(0)).toThrow(/more than 0 and at most 1/);
  expect(() => setRateShare(2)).toThrow(/more than 0 and at most 1/);
});
