// The one rule for requests past request_timeout_ms (connectors/http.ts): a write of a push fails the attempt at the
// deadline but is listened to until it answers, and the push ends only then; a read, a write outside a push and a POST
// that changes nothing are cut off at the deadline. A late 429 still pauses the target. Real HTTP over loopback to a
// small server that answers after a delay.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HttpClient, pushUnder, TargetError } from "../connectors/http.ts";

const LATE_MS = 600;
const TIMEOUT_MS = 150;

let server: ReturnType<typeof Bun.serve>;
/** Requests the server has answered, by "METHOD /path". */
const answered: string[] = [];

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const path = new URL(req.url).pathname;
      await Bun.sleep(LATE_MS);
      answered.push(`${req.method} ${path}`);
      if (path === "/busy") return new Response("slow down", { status: 429, headers: { "retry-after": "30" } });
      return Response.json({ ok: true });
    },
  });
});
afterAll(() => server.stop(true));

const client = () =>
  new HttpClient({
    baseHeaders: () => ({}),
    timeoutMs: TIMEOUT_MS,
    targetTitle: "Test target",
    describeError: (res) => ({ code: `http_${res.status}`, message: `HTTP ${res.status}` }),
  });
const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
const open = () => null;

/**
 * Runs `push` under pushUnder; returns its error, when the push failed, when the whole push ended, and how many late
 * writes pushUnder said it waits for (the dispatcher logs it).
 */
async function timed(
  push: () => Promise<unknown>,
): Promise<{ error: unknown; failedAfterMs: number; endedAfterMs: number; waitedFor: number }> {
  const started = performance.now();
  let failedAfterMs = Number.NaN;
  let waitedFor = 0;
  const error = await pushUnder(
    open,
    () =>
      push().catch((e) => {
        failedAfterMs = performance.now() - started;
        throw e;
      }),
    (writes) => {
      waitedFor = writes;
    },
  ).catch((e) => e);
  return { error, failedAfterMs, endedAfterMs: performance.now() - started, waitedFor };
}

describe("requests past request_timeout_ms", () => {
  test("a write of a push fails at the deadline (uncertain, timeout) and the push ends once it has answered", async () => {
    const r = await timed(() => client().request("PUT", url("/customers/1"), { json: { name: "v1" } }));
    expect(r.error).toBeInstanceOf(TargetError);
    expect(r.error).toMatchObject({ kind: "uncertain", code: "timeout", message: "Test target did not answer PUT /customers/1 in time" });
    expect(r.failedAfterMs).toBeLessThan(LATE_MS - 100);
    expect(r.endedAfterMs).toBeGreaterThanOrEqual(LATE_MS - 20);
    expect(r.waitedFor).toBe(1);
    expect(answered).toContain("PUT /customers/1");
  });

  test("the push waits for its late write even when the connector swallowed the error", async () => {
    const http = client();
    const r = await timed(async () => {
      await http.request("DELETE", url("/drafts/7")).catch(() => undefined);
      return "done";
    });
    expect(r.error).toBe("done");
    expect(r.endedAfterMs).toBeGreaterThanOrEqual(LATE_MS - 20);
  });

  test("a late 429 with Retry-After pauses the target", async () => {
    const http = client();
    const r = await timed(() => http.request("POST", url("/busy"), { json: {} }));
    expect(r.error).toMatchObject({ kind: "uncertain", code: "timeout" });
    expect(http.gate.remainingMs()).toBeGreaterThan(20_000);
  });

  test("a read, a write outside a push and a POST that changes nothing are cut off at the deadline", async () => {
    const http = client();
    for (const send of [
      () => http.request("GET", url("/customers/2")),
      () => http.request("POST", url("/token"), { changesNothing: true }),
    ]) {
      const r = await timed(send);
      expect(r.error).toMatchObject({ code: "timeout" });
      expect(r.endedAfterMs).toBeLessThan(LATE_MS - 100);
      expect(r.waitedFor).toBe(0);
    }
    const started = performance.now();
    expect(await http.request("PUT", url("/customers/3")).catch((e) => e)).toMatchObject({ kind: "uncertain", code: "timeout" });
    expect(performance.now() - started).toBeLessThan(LATE_MS - 100);
  });
});
