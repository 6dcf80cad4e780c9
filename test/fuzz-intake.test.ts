// Intake fuzzing over loopback: tens of thousands of malformed requests. Each must get a 4xx with a
// message, the agent must stay up, nothing of a rejected event may be stored, and memory stays bounded.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const REQUESTS = 20_000;
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ http: { max_body_bytes: 256 * 1024 } });
});
afterAll(async () => {
  await stack.stop();
});

function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 4294967296;
  };
}

type Case = { body: string | Uint8Array; contentType?: string; expect: number[] };

/** Mutations that are invalid by construction (each breaks a rule the schema states). */
const MUTATIONS: ((e: any, r: () => number) => void)[] = [
  (e) => {
    delete e.id;
  },
  (e) => {
    e.id = [123, null, {}, [], true][Math.floor(Math.random() * 5)];
  },
  (e) => {
    delete e.type;
  },
  (e, r) => {
    e.type = ["customer.deleted", "", "CUSTOMER.UPSERTED", "x".repeat(Math.floor(r() * 500))][Math.floor(r() * 4)];
  },
  (e) => {
    delete e.data;
  },
  (e, r) => {
    e.data = [null, 1, "data", []][Math.floor(r() * 4)];
  },
  (e) => {
    delete e.data.number;
  },
  (e, r) => {
    e.data.number = [{}, [], true, null, -1, 1.5, ""][Math.floor(r() * 7)];
  },
  (e, r) => {
    if (e.type === "customer.upserted") e.data.name = [42, "", {}, "x".repeat(256 + Math.floor(r() * 5000))][Math.floor(r() * 4)];
    else e.data.lines = [];
  },
  (e, r) => {
    e.data.currency = ["kroner", 12, "nok", "EURO"][Math.floor(r() * 4)];
  },
  (e, r) => {
    if (e.type === "invoice.finalized") e.data.lines[0].unitPrice = [12.5, "100", null][Math.floor(r() * 3)];
    else e.data.addresses = "Strandgaten 1";
  },
  (e, r) => {
    if (e.type === "invoice.finalized") e.data.date = ["31.12.2026", "2026-13-01", "", 20261231][Math.floor(r() * 4)];
    else e.data.active = "yes";
  },
  (e, r) => {
    // deep nesting where a number belongs
    let v: any = 1;
    const depth = 50 + Math.floor(r() * 5000);
    for (let i = 0; i < depth; i++) v = [v];
    e.data.number = v;
  },
];

function makeCase(i: number, r: () => number): Case {
  const kind = i % 20;
  if (kind === 0) return { body: JSON.stringify(customerEvent(i)).slice(0, Math.floor(r() * 60)), expect: [400] }; // truncated
  if (kind === 1)
    return { body: new Uint8Array([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]), expect: [400] }; // invalid UTF-8
  if (kind === 2)
    return {
      body: JSON.stringify(customerEvent(i)),
      contentType: ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"][i % 4],
      expect: [415],
    };
  if (kind === 3 && i % 100 === 3) return { body: JSON.stringify({ ...customerEvent(i), pad: "x".repeat(300 * 1024) }), expect: [413] }; // over the limit
  if (kind === 4 && i % 200 === 4)
    return {
      body: JSON.stringify(Array.from({ length: 1001 }, (_, k) => ({ id: `${k}`, type: "customer.upserted", data: {} }))),
      expect: [400, 413],
    };
  if (kind === 5)
    return {
      body: Array.from({ length: 1 + Math.floor(r() * 200) }, () => String.fromCharCode(Math.floor(r() * 256))).join(""),
      expect: [400, 422],
    }; // noise
  if (kind === 6) return { body: ["null", "42", '"text"', "[]", "{}", "true"][i % 6]!, expect: [400, 422] };
  const event: any = r() < 0.5 ? customerEvent(i) : invoiceEvent(i, 1);
  MUTATIONS[Math.floor(r() * MUTATIONS.length)]!(event, r);
  // Mix invalid events into otherwise valid batches: the whole request must be refused.
  const body = r() < 0.3 ? [customerEvent(100000 + i), event] : event;
  return { body: JSON.stringify(body), expect: [400, 422] };
}

describe("intake fuzzing", () => {
  test(`${REQUESTS} malformed requests: each a 4xx with a message, nothing stored, memory bounded`, async () => {
    const r = rng(12345);
    Bun.gc(true);
    const rssBefore = process.memoryUsage().rss;
    const unexpected: string[] = [];
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= REQUESTS) return;
        const c = makeCase(i, r);
        const res = await fetch(`${stack.agent.url}/api/v1/events`, {
          method: "POST",
          body: c.body,
          headers: {
            authorization: "Bearer test-token-0123456789",
            ...(c.contentType === undefined
              ? { "content-type": "application/json" }
              : c.contentType
                ? { "content-type": c.contentType }
                : {}),
          },
        });
        const answer: any = await res.json().catch(() => null);
        if (!c.expect.includes(res.status) || typeof answer?.message !== "string" || typeof answer?.hint !== "string") {
          if (unexpected.length < 5)
            unexpected.push(`case ${i}: ${res.status} ${JSON.stringify(answer)?.slice(0, 200)} for ${String(c.body).slice(0, 120)}`);
          else unexpected.push("…");
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    expect(unexpected.slice(0, 6)).toEqual([]);
    expect((stack.agent.db.$client.query("SELECT count(*) AS n FROM events").get() as any).n).toBe(0);
    expect((stack.agent.db.$client.query("SELECT count(*) AS n FROM records").get() as any).n).toBe(0);
    expect((await fetch(`${stack.agent.url}/healthz`)).status).toBe(200);
    Bun.gc(true);
    const growthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    console.log(`fuzz: rss growth ${growthMb.toFixed(1)} MB over ${REQUESTS} requests`);
    expect(growthMb).toBeLessThan(400);
    // And the agent still takes a valid event afterwards.
    expect((await stack.post(customerEvent(1))).status).toBe(202);
  }, 240_000);
});
