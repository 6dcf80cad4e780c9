// POST /api/v1/events is answered by Bun's own router, before the Hono app (agent/http/api.ts apiNativeRoutes,
// issue 16). The agent's real app and routes, on a real SQLite file, over loopback: the native route is taken (the app
// sees none of those requests, and still sees every other), and every answer, errors included, is the one the app's
// route gives: status, headers, body and the counters it keeps.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { listen } from "../agent/http/listen.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent } from "./helpers.ts";

const TOKEN = "test-token-0123456789";
const MAX_BODY = 4096;

let stack: Stack;
/** Requests that reached the Hono app. */
let appSaw = 0;
let native: ReturnType<typeof Bun.serve>;
let appOnly: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  stack = await startStack({ http: { max_body_bytes: MAX_BODY }, agent: { busy_timeout_ms: 100 } });
  const { app, routes } = stack.agent.http;
  const counted = {
    fetch: (req: Request, ...rest: unknown[]) => {
      appSaw += 1;
      return (app.fetch as (req: Request, ...rest: unknown[]) => Response | Promise<Response>)(req, ...rest);
    },
  };
  const http = { host: "127.0.0.1", port: 0, max_body_bytes: MAX_BODY };
  // The agent's server as it listens (the routes, then the app), and the app alone: how it answered before.
  native = listen(counted, http, "", routes);
  appOnly = listen(counted, http);
});
afterAll(async () => {
  native?.stop(true);
  appOnly?.stop(true);
  await stack?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string | null>;
  body: unknown;
  rejected: number;
  conflict: number;
}

const good = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };

async function send(server: ReturnType<typeof Bun.serve>, init: RequestInit, path = "/api/v1/events"): Promise<Answer> {
  const { eventsRejected, eventsConflict } = stack.agent.metrics;
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { method: "POST", ...init });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return {
    status: res.status,
    headers: Object.fromEntries(["content-type", "retry-after", "www-authenticate"].map((h) => [h, res.headers.get(h)])),
    body,
    rejected: stack.agent.metrics.eventsRejected - eventsRejected,
    conflict: stack.agent.metrics.eventsConflict - eventsConflict,
  };
}

/** The same request to the native route and to the app alone; the app sees only the second. */
async function both(init: () => RequestInit): Promise<[Answer, Answer]> {
  const saw = appSaw;
  const viaNative = await send(native, init());
  expect(appSaw).toBe(saw);
  const viaApp = await send(appOnly, init());
  expect(appSaw).toBe(saw + 1);
  return [viaNative, viaApp];
}

const eventCount = () => (stack.agent.db.$client.query("SELECT count(*) AS n FROM events").get() as { n: number }).n;

describe("POST /api/v1/events on Bun's router", () => {
  test("the error answers are the app's, header for header and counter for counter; nothing is stored", async () => {
    const event = JSON.stringify(customerEvent(1));
    const cases: [string, number, () => RequestInit][] = [
      ["no token", 401, () => ({ body: event, headers: { "content-type": "application/json" } })],
      ["a wrong token", 401, () => ({ body: event, headers: { ...good, authorization: "Bearer wrong-token" } })],
      ["another scheme", 401, () => ({ body: event, headers: { ...good, authorization: "Basic abc" } })],
      ["a wrong token and a body over the limit", 401, () => ({ body: "x".repeat(MAX_BODY + 1), headers: { authorization: "Bearer x" } })],
      ["a body over the limit by Content-Length", 413, () => ({ body: "x".repeat(MAX_BODY + 1), headers: good })],
      [
        "a body over the limit, streamed",
        413,
        () => ({
          body: new ReadableStream({
            start(c) {
              for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode("y".repeat(1000)));
              c.close();
            },
          }),
          headers: good,
        }),
      ],
      ["another content type", 415, () => ({ body: event, headers: { ...good, "content-type": "text/plain" } })],
      ["no content type", 415, () => ({ body: new Uint8Array(Buffer.from(event)), headers: { authorization: good.authorization } })],
      ["not UTF-8", 400, () => ({ body: new Uint8Array([0x7b, 0xff, 0x7d]), headers: good })],
      ["not JSON", 400, () => ({ body: '{"id": "x", "type": ', headers: good })],
      ["an empty body", 400, () => ({ body: "", headers: good })],
      ["no event object", 400, () => ({ body: '"x"', headers: good })],
      ["an empty array", 400, () => ({ body: "[]", headers: good })],
      ["too many events", 400, () => ({ body: JSON.stringify(Array.from({ length: 1001 }, () => ({}))), headers: good })],
      [
        "invalid events",
        422,
        () => ({
          body: JSON.stringify([customerEvent(2), { id: "bad", type: "customer.upserted", data: { number: 3, name: "", currency: "kr" } }]),
          headers: good,
        }),
      ],
    ];
    for (const [what, status, init] of cases) {
      const [viaNative, viaApp] = await both(init);
      expect({ what, ...viaNative }).toEqual({ what, ...viaApp });
      expect({ what, status: viaNative.status }).toEqual({ what, status });
    }
    expect(eventCount()).toBe(0);
  });

  test("accepted, duplicate and conflicting events: the same answers", async () => {
    const first = await send(native, { body: JSON.stringify(customerEvent(10, {}, "n-1")), headers: good });
    const second = await send(appOnly, { body: JSON.stringify(customerEvent(11, {}, "n-2")), headers: good });
    expect(first.status).toBe(202);
    expect({ ...first, body: { ...(first.body as object), events: "-" } }).toEqual({
      ...second,
      body: { ...(second.body as object), events: "-" },
    });
    expect((first.body as any).events).toEqual([{ id: "n-1", status: "accepted" }]);
    expect(eventCount()).toBe(2);
    const [dupNative, dupApp] = await both(() => ({ body: JSON.stringify([customerEvent(10, {}, "n-1")]), headers: good }));
    expect(dupNative).toEqual(dupApp);
    expect(dupNative.body).toMatchObject({ accepted: 0, duplicates: 1 });
    const [conflictNative, conflictApp] = await both(() => ({
      body: JSON.stringify(customerEvent(10, { name: "Other content" }, "n-1")),
      headers: good,
    }));
    expect(conflictNative).toEqual(conflictApp);
    expect(conflictNative.status).toBe(409);
    expect(conflictNative.conflict).toBe(1);
    expect(eventCount()).toBe(2);
  });

  test("a busy database: 503 with Retry-After from both", async () => {
    const other = new Database(join(stack.dataDir, "kontobro.db"));
    other.exec("BEGIN IMMEDIATE");
    try {
      const [viaNative, viaApp] = await both(() => ({ body: JSON.stringify(customerEvent(20)), headers: good }));
      expect(viaNative).toEqual(viaApp);
      expect(viaNative.status).toBe(503);
      expect(viaNative.headers["retry-after"]).toBe("1");
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
  });

  test("other methods and paths go to the app as before", async () => {
    const saw = appSaw;
    const get = await send(native, { method: "GET", headers: good });
    expect(get.status).toBe(404);
    expect((await send(native, { method: "GET" })).status).toBe(401);
    expect((await send(native, { body: "{}", headers: good }, "/api/v1/events/")).status).toBe(404);
    expect(appSaw).toBe(saw + 3);
  });

  test("a failure inside kontobro: the app's 500, logged with the route", async () => {
    // The writer closed (as while the agent stops): submit fails with a plain error.
    await stack.agent.intake.close();
    const logged: string[] = [];
    const error = console.error;
    console.error = (line: unknown) => logged.push(String(line));
    try {
      const [viaNative, viaApp] = await both(() => ({ body: JSON.stringify(customerEvent(30)), headers: good }));
      expect(viaNative).toEqual(viaApp);
      expect(viaNative.status).toBe(500);
      expect((viaNative.body as any).error).toBe("internal_error");
    } finally {
      console.error = error;
    }
    expect(logged.map((l) => JSON.parse(l).route)).toEqual(["/api/v1/events", "/api/v1/events"]);
  });
});
