// The one zod-issue-to-Problem helper, in the styles its callers use.
import { expect, test } from "bun:test";
import { z } from "zod";
import { issuesToProblems } from "../agent/problem.ts";

const Schema = z.strictObject({ name: z.string().max(3), lines: z.array(z.object({ qty: z.number() })) });
const issues = Schema.safeParse({ name: "long", lines: [{ qty: "x" }], colour: 1 }).error!.issues;

test("JSON paths under a prefix, a message naming the field, a hint per kind of issue", () => {
  const problems = issuesToProblems(issues, { prefix: "data" });
  expect(problems.map((p) => p.field)).toEqual(["data.name", "data.lines.0.qty", "data"]);
  expect(problems[0]).toMatchObject({ code: "invalid.too_big", hint: "Shorten it to at most 3 characters." });
  expect(problems[2]).toMatchObject({
    code: "invalid.unrecognized_keys",
    message: "data: unknown key(s) colour",
    hint: "Remove the unknown field(s).",
  });
});

test("config keys with [index], the value itself named when there is no path, one code and hint for all", () => {
  const lines = issuesToProblems(issues, { brackets: true, whole: "(top level)" }).map((p) => p.message);
  expect(lines[1]).toStartWith("lines[0].qty: ");
  expect(lines[2]).toBe("(top level): unknown key(s) colour");
  const fixed = issuesToProblems(issues, { code: "payload.invalid", hint: "Correct it." });
  expect(new Set(fixed.map((p) => `${p.code} ${p.hint}`))).toEqual(new Set(["payload.invalid Correct it."]));
  expect(fixed[2]!.field).toBeUndefined();
});
