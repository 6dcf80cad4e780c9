// What a request through connectors/http.ts no longer does each time (issue 16, goal 3: the agent's main thread per
// delivery): keep a timer of its own for its timeout (requests started within TIMEOUT_SLACK_MS share one, which fires no
// sooner than the timeout of each), parse its URL for the proxy (kept per origin, for the proxy settings in force), and
// parse a JSON answer no one reads (parsed when read). Real HTTP on loopback: a server that never answers, and one that
// echoes.
import { afterAll, expect, test } from "bun:test";
import { HttpClient, proxyOptionOf, proxySettings, TIMEOUT_SLACK_MS, TargetError, timeoutSignal, useProxy } from "../connectors/http.ts";

const silent = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });
// Answers /broken with a complete body that is not JSON, anything else with its JSON echo.
const echo = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch: async (req) =>
    new URL(req.url).pathname === "/broken"
      ? new Response("{not json", { status: 201, headers: { "content-type": "application/json" } })
      : Response.json({ got: await req.json() }, { status: 201 }),
});
afterAll(() => {
  silent.stop(true);
  echo.stop(true);
});

test("requests started close together share one timeout signal; later ones get another", () => {
  // Timeouts no other test uses, and a clock of the test's own.
  const a = timeoutSignal(31_001, 1_000);
  expect(timeoutSignal(31_001, 1_000 + TIMEOUT_SLACK_MS - 1)).toBe(a);
  // Another timeout, or past the slack: a signal of its own.
  expect(timeoutSignal(31_002, 1_000)).not.toBe(a);
  expect(timeoutSignal(31_001, 1_000 + TIMEOUT_SLACK_MS)).not.toBe(a);
});

test("a request times out no sooner than its timeout, and at most the slack later, as a timeout", async () => {
  const timeoutMs = 300;
  const client = new HttpClient({
    baseHeaders: () => ({}),
    timeoutMs,
    describeError: () => ({ code: "x", message: "x" }),
    targetTitle: "silent",
  });
  const url = `http://127.0.0.1:${silent.port}/customers`;
  const timed = async (delayMs: number) => {
    await Bun.sleep(delayMs);
    const t0 = performance.now();
    const e = await client.request("POST", url, { json: { n: 1 }, headers: { "Idempotency-Key": "k" } }).then(
      () => null,
      (err) => err,
    );
    return { e, ms: performance.now() - t0 };
  };
  // Three requests a few ms apart: the later ones share the first one's signal.
  const results = await Promise.all([timed(0), timed(15), timed(30)]);
  for (const { e, ms } of results) {
    expect(e).toBeInstanceOf(TargetError);
    expect((e as TargetError).code).toBe("timeout");
    expect((e as TargetError).kind).toBe("uncertain");
    expect(ms).toBeGreaterThanOrEqual(timeoutMs - 2);
    expect(ms).toBeLessThan(timeoutMs + TIMEOUT_SLACK_MS + 150);
  }
});

test("the proxy option is kept per origin and follows a change of the proxy settings", () => {
  const env = { HTTPS_PROXY: "http://corp:3128", NO_PROXY: "direct.example" };
  try {
    useProxy(proxySettings({}, env));
    expect(proxyOptionOf("https://restapi.example/customers/1")).toEqual({ proxy: "http://corp:3128" });
    expect(proxyOptionOf("https://restapi.example/customers/2")).toBe(proxyOptionOf("https://restapi.example/customers/1"));
    expect(proxyOptionOf("https://direct.example/x")).toEqual({ proxy: false } as never);
    expect(proxyOptionOf("http://restapi.example/customers/1")).toEqual({ proxy: false } as never);
    // Another host on the same scheme, and another port: looked up for themselves.
    expect(proxyOptionOf("https://api.direct.example:8443?q=/x")).toEqual({ proxy: false } as never);
    useProxy(proxySettings({ from_environment: false }, env));
    expect(proxyOptionOf("https://restapi.example/customers/1")).toEqual({ proxy: false } as never);
  } finally {
    useProxy(proxySettings());
  }
});

test("a JSON answer is parsed when read; one that is not JSON fails where it is read, as a lost answer", async () => {
  const client = new HttpClient({
    baseHeaders: () => ({}),
    timeoutMs: 5_000,
    describeError: () => ({ code: "x", message: "x" }),
    targetTitle: "echo",
  });
  const ok = await client.request("POST", `http://127.0.0.1:${echo.port}/customers`, {
    json: { n: 1 },
    headers: { "Idempotency-Key": "k" },
  });
  expect(ok.status).toBe(201);
  expect(ok.body).toEqual({ got: { n: 1 } });
  expect(ok.body).toBe(ok.body);
  // The write took effect (201); its answer is not needed, so the request itself does not fail.
  const broken = await client.request("POST", `http://127.0.0.1:${echo.port}/broken`, { json: {}, headers: { "Idempotency-Key": "k" } });
  expect(broken.status).toBe(201);
  let read: unknown = null;
  try {
    void broken.body;
  } catch (e) {
    read = e;
  }
  expect(read).toBeInstanceOf(TargetError);
  expect((read as TargetError).code).toBe("connection_lost");
  expect((read as TargetError).kind).toBe("uncertain");
});
