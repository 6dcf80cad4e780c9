// A JSON object that names a field twice ({"unitPrice":100,"unitPrice":200}) was accepted (202): JSON.parse keeps the
// last one, so a PSA whose serialiser writes a field twice (a base class and an override, a merge of two maps) had an
// invoice booked with whichever amount came last, and no one was told. It is refused (422, invalid.duplicate_key),
// naming the event and the field, over real HTTP and in `kontobro enqueue` (the same parse).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { duplicateKeys, MAX_NESTING, MAX_REPEATED_KEYS } from "../agent/json-keys.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ dispatch: {} });
});
afterAll(async () => {
  await stack.stop();
});

const eventCount = () => (stack.agent.db.$client.query("SELECT count(*) AS n FROM events").get() as { n: number }).n;

describe("a field sent twice in one object", () => {
  test("a line's unitPrice twice in the second event of a batch: 422 naming index 1 and the field; nothing stored", async () => {
    const before = eventCount();
    const invoice = JSON.stringify(invoiceEvent(81001, 7)).replace('"unitPrice":145000', '"unitPrice":145000,"unitPrice":14500');
    const res = await stack.post(`[${JSON.stringify(customerEvent(7))},${invoice}]`);
    expect(res.status).toBe(422);
    expect(res.body.events).toHaveLength(1);
    expect(res.body.events[0]).toMatchObject({ index: 1, id: "i-81001" });
    const [p, ...more] = res.body.events[0].problems;
    expect(more).toEqual([]);
    expect(p).toMatchObject({ code: "invalid.duplicate_key", field: "data.lines.0.unitPrice" });
    expect(p.message).toContain("data.lines.0.unitPrice: is sent twice");
    expect(p.hint).toContain("once");
    expect(eventCount()).toBe(before);
  });

  test("the event's own id twice, and a key spelt with an escape (\\u0061 is a)", async () => {
    const res = await stack.post(
      '{"id":"dk-1","type":"customer.upserted","id":"dk-2","data":{"number":81002,"n\\u0061me":"A","name":"B"}}',
    );
    expect(res.status).toBe(422);
    expect(res.body.events[0].problems.map((p: { field: string }) => p.field)).toEqual(["id", "data.name"]);
  });

  test("the same name in different objects, and in text, is not a repeat", async () => {
    const body = [customerEvent(81003, { contacts: [{ name: "A" }, { name: "B" }] }), customerEvent(81004, { name: 'x "name": 1' })];
    expect((await stack.post(body)).status).toBe(202);
  });

  test("the scanner: paths, nesting, escaped quotes and brackets inside strings", () => {
    expect(duplicateKeys('{"a":1,"b":{"a":1},"c":[{"a":1,"a":2}]}')).toEqual([["c", 0, "a"]]);
    expect(duplicateKeys('[{"a":"}\\"],{","a":2}]')).toEqual([[0, "a"]]);
    expect(duplicateKeys('[1, [2, {"x":1}], {"y":[],"y":{}}]')).toEqual([[2, "y"]]);
    expect(duplicateKeys('{"a":1,"b":2}')).toEqual([]);
  });

  test("a body repeating one key 50,000 times: 422 at once, the first repeats listed, not 50,000 (the agent's loop is not held)", async () => {
    const body = `{"id":"dk-many","type":"customer.upserted","data":{"number":81005,${'"name":"A",'.repeat(50_000)}"currency":"NOK"}}`;
    const t0 = performance.now();
    const res = await stack.post(body);
    const ms = performance.now() - t0;
    expect(res.status).toBe(422);
    const problems = res.body.events[0].problems;
    expect(problems.length).toBe(MAX_REPEATED_KEYS);
    expect(problems[0]).toMatchObject({ code: "invalid.duplicate_key", field: "data.name" });
    expect(ms).toBeLessThan(3000);
  });

  test("a value nested 200,000 deep: 422 saying so (was a stack overflow answered 500 'try again'), and the agent answers after", async () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    const res = await stack.post(
      `[${JSON.stringify(customerEvent(81006))},{"id":"dk-deep","type":"customer.upserted","data":{"number":81007,"name":${deep}}}]`,
    );
    expect(res.status).toBe(422);
    expect(res.body.events).toEqual([
      {
        index: 1,
        id: "dk-deep",
        problems: [expect.objectContaining({ code: "invalid.too_deep", field: expect.stringMatching(/^data\.name\.0\.0\./) })],
      },
    ]);
    expect(res.body.events[0].problems[0].message).toContain(`deeper than ${MAX_NESTING} levels`);
    expect((await stack.post(customerEvent(81008))).status).toBe(202);
  });
});
