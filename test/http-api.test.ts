// The HTTP surface over loopback: auth, bad input, limits, health, metrics, deliveries API.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent } from "./helpers.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ dispatch: {} });
});
afterAll(async () => {
  await stack.stop();
});

const eventCount = () => (stack.agent.db.$client.query("SELECT count(*) AS n FROM events").get() as any).n;

describe("HTTP API", () => {
  test("no token or a wrong token is 401 and stores nothing", async () => {
    const before = eventCount();
    for (const auth of [undefined, "Bearer wrong-token", "Basic abc", "Bearer "]) {
      const res = await fetch(`${stack.agent.url}/api/v1/events`, {
        method: "POST",
        body: JSON.stringify(customerEvent(1)),
        headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).hint).toContain("Authorization: Bearer");
    }
    expect(eventCount()).toBe(before);
  });

  test("malformed JSON is 400, the wrong content type 415, invalid events 422 with fields", async () => {
    const before = eventCount();
    expect((await stack.post('{"id": "x", "type": ')).status).toBe(400);
    expect((await stack.post(JSON.stringify(customerEvent(1)), { "content-type": "text/plain" })).status).toBe(415);
    const res = await stack.post([
      customerEvent(2),
      { id: "bad", type: "customer.upserted", data: { number: 3, name: "", currency: "kroner" } },
    ]);
    expect(res.status).toBe(422);
    expect(res.body.events[0].index).toBe(1);
    expect(res.body.events[0].problems.map((p: any) => p.field).sort()).toEqual(["data.currency", "data.name"]);
    expect(res.body.message).toContain("nothing in this request was stored");
    expect(eventCount()).toBe(before);
  });

  // A body in Latin-1 or UTF-16, declared as such, was told only "The body is not valid UTF-8.": the PSA's developer,
  // who had declared the encoding, was not told that the declaration is not read.
  test("a body in another encoding, declared in Content-Type, is told that JSON is read as UTF-8 only", async () => {
    const before = eventCount();
    const text = JSON.stringify(customerEvent(5, { name: "Ålesund Bygg" }));
    const latin1 = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
    for (const [charset, body] of [
      ["iso-8859-1", latin1],
      ["utf-16", new Uint8Array(Buffer.from(`\ufeff${text}`, "utf16le"))],
    ] as const) {
      const res = await fetch(`${stack.agent.url}/api/v1/events`, {
        method: "POST",
        body,
        headers: { authorization: "Bearer test-token-0123456789", "content-type": `application/json; charset=${charset}` },
      });
      expect(res.status).toBe(400);
      const answer = (await res.json()) as { error: string; message: string; hint: string };
      expect(answer.error).toBe("invalid_utf8");
      expect(answer.message).toBe(`The body is not valid UTF-8 (the Content-Type says charset=${charset}).`);
      expect(answer.hint).toContain("UTF-8 only");
    }
    expect(eventCount()).toBe(before);
  });

  // A type naming what every object has (constructor, toString, __proto__) was looked up as an event type and found,
  // and the request failed with 500 "Try again": the PSA would resend it for ever.
  test.each(["constructor", "toString", "__proto__", "hasOwnProperty"])("event type %s is 422 unknown event type", async (type) => {
    const res = await stack.post({ ...customerEvent(6), type });
    expect(res.status).toBe(422);
    expect(res.body.events[0].problems).toMatchObject([{ code: "invalid.event_type", field: "type" }]);
  });

  test("a body over the limit is 413", async () => {
    const huge = JSON.stringify({ id: "big", type: "customer.upserted", data: { number: 1, name: "x".repeat(40 * 1024 * 1024) } });
    const res = await stack.post(huge);
    expect(res.status).toBe(413);
    expect(res.body.hint).toContain("max_body_bytes");
  });

  test("accepted events are acknowledged once; repeats are counted as duplicates", async () => {
    const e = customerEvent(4, {}, "dup-id-1");
    expect((await stack.post(e)).body).toMatchObject({ accepted: 1, duplicates: 0 });
    expect((await stack.post([e, e])).body).toMatchObject({ accepted: 0, duplicates: 2 });
  });

  test("/healthz, /metrics and the deliveries API", async () => {
    await stack.waitDelivered(1);
    expect(((await (await fetch(`${stack.agent.url}/healthz`)).json()) as any).status).toBe("ok");
    const metrics = await (await fetch(`${stack.agent.url}/metrics`)).text();
    expect(metrics).toContain('kontobro_deliveries{target="eco",status="done"}');
    expect(metrics).toContain("kontobro_push_duration_seconds_bucket");
    expect(metrics).toMatch(/kontobro_events_received_total [1-9]/);
    const auth = { authorization: "Bearer test-token-0123456789" };
    expect((await fetch(`${stack.agent.url}/api/v1/deliveries?status=bogus`, { headers: auth })).status).toBe(400);
    const list: any = await (await fetch(`${stack.agent.url}/api/v1/deliveries?status=done`, { headers: auth })).json();
    expect(list.deliveries.every((d: any) => d.status === "done")).toBe(true);
    expect(
      (await fetch(`${stack.agent.url}/api/v1/deliveries/${list.deliveries[0].id}/retry`, { method: "POST", headers: auth })).status,
    ).toBe(409);
    expect((await fetch(`${stack.agent.url}/api/v1/deliveries/999999/retry`, { method: "POST", headers: auth })).status).toBe(404);
    // Every one that needs action, of a target: none here.
    const all = await fetch(`${stack.agent.url}/api/v1/deliveries/retry?target=eco`, { method: "POST", headers: auth });
    expect([all.status, await all.json()]).toEqual([200, { retried: 0, target: "eco" }]);
    // A name no delivery went to (a typo) is said to be one, not answered "none needed action".
    const typo = await fetch(`${stack.agent.url}/api/v1/deliveries/retry?target=ecoo`, { method: "POST", headers: auth });
    expect(typo.status).toBe(404);
    expect(((await typo.json()) as { message: string }).message).toContain('No delivery has gone to a target named "ecoo"');
    expect((await fetch(`${stack.agent.url}/api/v1/deliveries/retry`, { method: "POST" })).status).toBe(401);
  });

  test("the status page's retry button refuses cross-site posts", async () => {
    const res = await fetch(`${stack.agent.url}/ui/deliveries/1/retry`, {
      method: "POST",
      headers: { origin: "http://evil.example" },
      redirect: "manual",
    });
    expect(res.status).toBe(403);
  });
});
