// A pause the target asks for (429 with Retry-After) stops the pushes already under way too: once one push
// has the 429's status line, no other push sends its next request (a lookup's follow-up create here), even
// while the 429's body is still arriving. The real dispatcher, outbox and SQLite file, the shared HTTP client
// (connectors/http.ts), and a loopback target that answers when the test lets it.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Connector } from "../connectors/contract.ts";
import { HttpClient } from "../connectors/http.ts";
import { openDatabase } from "../agent/db/index.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { TargetStateStore } from "../agent/target-state.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

/** A loopback target answering with `answer`, and every request it saw as "METHOD /path", in order. */
function recordingTarget(answer: (req: Request, path: string) => Response | Promise<Response>) {
  const seen: string[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const path = new URL(req.url).pathname;
      seen.push(`${req.method} ${path}`);
      return answer(req, path);
    },
  });
  return { server, seen, url: `http://127.0.0.1:${server.port}` };
}

/**
 * The target: customer 1's lookup is answered 429 (Retry-After 600) at once, its body sent whole or held
 * until `releaseBody`; customer 2's lookup waits for `answerLookup` and then finds nothing. Creates book.
 */
function startTarget(body: "whole" | "held") {
  let releaseBody = () => {};
  let answerLookup = () => {};
  const bodyReleased = new Promise<void>((r) => (releaseBody = r));
  const lookupAnswered = new Promise<void>((r) => (answerLookup = r));
  const { server, seen } = recordingTarget(async (req, path) => {
    if (path === "/customers/lookup/1") {
      const headers = { "content-type": "application/json", "retry-after": "600" };
      const message = JSON.stringify({ message: "Too many requests, slow down" });
      if (body === "whole") return new Response(message, { status: 429, headers });
      const stream = new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode(message.slice(0, 10)));
          await bodyReleased;
          controller.enqueue(new TextEncoder().encode(message.slice(10)));
          controller.close();
        },
      });
      return new Response(stream, { status: 429, headers });
    }
    if (path === "/customers/lookup/2") {
      await lookupAnswered;
      return Response.json([]);
    }
    await req.text();
    return Response.json({ id: seen.length }, { status: 201 });
  });
  return { server, seen, releaseBody, answerLookup };
}

/** Target "t"'s connector for customers, pushing with `push` (and `extra`'s members). */
function customerConnector(push: Connector["push"], extra: Partial<Connector> = {}): Connector {
  return {
    name: "t",
    kind: "test",
    supports: (e) => e === "customer",
    check: async () => [],
    validate: () => [],
    push,
    find: async () => null,
    ...extra,
  };
}

/** A push that looks the customer up, then creates it: two requests through the target's one client. */
function lookupThenCreate(url: string, http: HttpClient): Connector {
  return customerConnector(async (_entity, payload) => {
    await http.request("GET", `${url}/customers/lookup/${payload.number}`);
    const res = await http.request("POST", `${url}/customers`, { json: payload });
    return { remoteId: String(res.body.id) };
  });
}

/** The target's one HTTP client, as a connector holds it. */
function testClient(): HttpClient {
  return new HttpClient({
    baseHeaders: () => ({}),
    timeoutMs: 10_000,
    targetTitle: "Test target",
    describeError: (res) => ({ code: `http_${res.status}`, message: `HTTP ${res.status}` }),
  });
}

/** The real outbox, stored target state and dispatcher of target "t" on a new SQLite file (not started). */
function dispatching(connector: Connector) {
  const db = openDatabase(join(tempDir(), "k.db"));
  const outbox = new Outbox(sqliteRunner(db.$client));
  const store = new TargetStateStore(sqliteRunner(db.$client));
  const dispatcher = new Dispatcher(
    "t",
    connector,
    outbox,
    { concurrency: 2, leaseMs: 30_000, backoff: { baseMs: 10, maxMs: 50 }, idlePollMs: 20, keyPrefix: "k", targetState: store },
    silentLogger,
    new Metrics(),
    recordSource(outbox.runner),
  );
  return { db, outbox, store, dispatcher };
}

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

describe("a 429 with Retry-After stops the pushes already under way", () => {
  for (const body of ["whole", "held"] as const) {
    test(`another push's follow-up request is not sent once the 429's status line is in (its body ${body === "whole" ? "sent whole" : "still arriving"})`, async () => {
      const target = startTarget(body);
      const url = `http://127.0.0.1:${target.server.port}`;
      const http = testClient();
      const { db, outbox, store, dispatcher } = dispatching(lookupThenCreate(url, http));
      cleanup = async () => {
        target.releaseBody();
        target.answerLookup();
        await dispatcher.stop(1000);
        target.server.stop(true);
        db.$client.close();
      };
      /** How each customer's push ended, by customer number (the code of its attempt; none while under way). */
      const ended = () =>
        new Map(
          (
            db.$client.query(`SELECT d.key, a.code FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id`).all() as {
              key: string;
              code: string | null;
            }[]
          ).map((a) => [a.key, a.code]),
        );

      const parsed = parseEvents([customerEvent(1), customerEvent(2)]);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed));
      await new IntakeWriter(outbox, () => ["t"]).submit(parsed.events);
      dispatcher.start();
      // Both pushes are under way: customer 1's lookup has its 429, customer 2's lookup waits for its answer.
      await waitFor("both lookups at the target", () => target.seen.length === 2);
      // The client has read the 429's status line (a bounded wait: without the early pause it never comes
      // while the body is held, and the check below then fails).
      for (let i = 0; i < 100 && http.gate.remainingMs() === 0; i++) await Bun.sleep(20);

      // Customer 2's lookup is answered: its push goes on to the create, which must stay unsent.
      target.answerLookup();
      await waitFor("customer 2's push to end", () => ended().has("2"));
      expect(target.seen.filter((r) => r.startsWith("POST"))).toEqual([]);
      expect(ended().get("2")).toBe("target_paused");

      // Customer 1's push ends with the 429: the pause is stored for every worker, and still nothing was created.
      target.releaseBody();
      await waitFor("customer 1's push to end", () => ended().has("1"));
      expect(ended().get("1")).toBe("http_429");
      expect((await store.get("t")).pausedUntil).toBeGreaterThan(Date.now() + 500_000);
      expect([...target.seen].sort()).toEqual(["GET /customers/lookup/1", "GET /customers/lookup/2"]);
    }, 30_000);
  }
});

describe("a 429 read outside any push", () => {
  test("pauses the target for every worker: the round stores the connector's pause (e-conomic's late draft removal)", async () => {
    const { server, seen, url } = recordingTarget((req) =>
      req.method === "DELETE"
        ? Response.json({ message: "Too many requests" }, { status: 429, headers: { "retry-after": "600" } })
        : Response.json({ id: 1 }, { status: 201 }),
    );
    const http = testClient();
    const connector = customerConnector(
      async (_entity, payload) => {
        const res = await http.request("POST", `${url}/customers`, { json: payload });
        return { remoteId: String(res.body.id) };
      },
      { pausedForMs: () => http.gate.remainingMs() },
    );
    const { db, outbox, store, dispatcher } = dispatching(connector);
    cleanup = async () => {
      await dispatcher.stop(1000);
      server.stop(true);
      db.$client.close();
    };
    // A request of the connector's own, after its push ended (a late draft's removal): answered 429, Retry-After 600 s.
    expect(await http.request("DELETE", `${url}/drafts/7`).catch((e) => e.status)).toBe(429);
    const parsed = parseEvents([customerEvent(1)]);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed));
    await new IntakeWriter(outbox, () => ["t"]).submit(parsed.events);
    dispatcher.start();
    // The round stores the pause, as for a push's 429: another worker reads it there and sends nothing either.
    await waitFor("the pause stored", async () => ((await store.get("t")).pausedUntil ?? 0) > Date.now() + 500_000);
    expect(seen).toEqual(["DELETE /drafts/7"]);
  }, 30_000);
});
