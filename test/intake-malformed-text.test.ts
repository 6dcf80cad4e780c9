// Text that is not well-formed Unicode (a lone UTF-16 surrogate, which JSON can spell as "\ud800" but UTF-8 cannot
// hold) is refused at intake with the field that holds it. Stored, SQLite turned such an id into U+FFFD, so the id its
// insert returned was not the one sent and the group's commit failed: every other caller's request committed with it
// failed too (PostgreSQL refused the group's JSON list of ids the same way).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { malformedTextAt, parseEvents } from "../agent/intake.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const lone = JSON.parse('"x\\ud800"') as string;
const problemOf = (body: unknown) => {
  const r = parseEvents(body);
  if (r.ok) throw new Error("expected a refusal");
  return { status: r.status, problem: r.events[0]!.problems[0]! };
};

describe("malformedTextAt and parseEvents", () => {
  test("a lone surrogate in the id, a field, a key or a line is named by its path", () => {
    expect(problemOf(customerEvent(1, {}, lone))).toEqual({
      status: 422,
      problem: expect.objectContaining({ code: "invalid.text", field: "id" }),
    });
    expect(problemOf(customerEvent(1, { name: `Acme ${lone}` })).problem.field).toBe("data.name");
    expect(problemOf(customerEvent(1, { [lone]: "x" })).problem.field).toBe(`data.${lone}`);
    const invoice = invoiceEvent(7, 1) as any;
    invoice.data.lines[1].text = lone;
    expect(problemOf(invoice).problem.field).toBe("data.lines.1.text");
    expect(problemOf(customerEvent(1, {}, lone)).problem.message).toContain("lone UTF-16 surrogate");
  });

  test("well-formed text passes, surrogate pairs (emoji) included", () => {
    expect(malformedTextAt({ a: ["b", { c: "😀 \ud83d\ude00" }], d: 1, e: null })).toBeNull();
    expect(parseEvents(customerEvent(1, { name: "Blåbær 😀 AS" })).ok).toBe(true);
    expect(malformedTextAt(["ok", lone])).toBe(".1");
  });
});

describe("over HTTP", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ economic: { paused: true } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  test("the request with a lone surrogate is refused, the requests stored beside it are not harmed", async () => {
    const answers = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => stack.post(customerEvent(100 + i))),
      stack.post(customerEvent(200, {}, lone)),
      ...Array.from({ length: 20 }, (_, i) => stack.post(customerEvent(300 + i))),
    ]);
    const bad = answers[20]!;
    expect(bad.status).toBe(422);
    expect(bad.body.events[0].problems[0]).toMatchObject({ code: "invalid.text", field: "id" });
    expect(answers.filter((a, i) => i !== 20 && a.status === 202)).toHaveLength(40);
    // Sent again, it is refused again, and the agent keeps taking events.
    expect((await stack.post(customerEvent(200, {}, lone))).status).toBe(422);
    expect((await stack.post(customerEvent(400))).status).toBe(202);
    expect(await stack.deliveries()).toHaveLength(41);
  });
});
