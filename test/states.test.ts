// States are declared once (agent/states.ts): the drizzle columns, the types, the API and the status
// page's labels all come from the same lists.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { deliveries, deliveryAttempts } from "../agent/db/schema.ts";
import { inbox, jobRuns } from "../agent/db/schema-pulls.ts";
import {
  ATTEMPT_OUTCOME_LABELS,
  ATTEMPT_OUTCOMES,
  DELIVERY_STATUS_LABELS,
  DELIVERY_STATUSES,
  INBOX_STATE_LABELS,
  INBOX_STATES,
  RUN_STATUS_LABELS,
  RUN_STATUSES,
  RUN_TRIGGERS,
} from "../agent/states.ts";

test("the columns' enums are the declared lists, and every state has a label", () => {
  expect(deliveries.status.enumValues).toEqual([...DELIVERY_STATUSES]);
  expect(inbox.state.enumValues).toEqual([...INBOX_STATES]);
  expect(jobRuns.status.enumValues).toEqual([...RUN_STATUSES]);
  expect(jobRuns.trigger.enumValues).toEqual([...RUN_TRIGGERS]);
  expect(Object.keys(DELIVERY_STATUS_LABELS).sort()).toEqual([...DELIVERY_STATUSES].sort());
  expect(Object.keys(INBOX_STATE_LABELS).sort()).toEqual([...INBOX_STATES].sort());
  expect(Object.keys(RUN_STATUS_LABELS).sort()).toEqual([...RUN_STATUSES].sort());
  expect(deliveryAttempts.outcome.enumValues).toEqual([...ATTEMPT_OUTCOMES]);
  expect(Object.keys(ATTEMPT_OUTCOME_LABELS).sort()).toEqual([...ATTEMPT_OUTCOMES].sort());
});

test("no other source file spells out a list of delivery, inbox or run states", () => {
  const root = join(import.meta.dir, "..");
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? files(p) : n.endsWith(".ts") ? [p] : [];
    });
  // Two or more state names in a row inside brackets: a second copy of a list (or of part of one).
  const names = [...DELIVERY_STATUSES, ...INBOX_STATES, ...RUN_STATUSES].map((s) => `"${s}"`).join("|");
  const list = new RegExp(`\\[\\s*(?:${names})\\s*,\\s*(?:${names})`);
  const copies = files(join(root, "agent"))
    .filter((f) => !f.endsWith("states.ts") && !f.includes("/db/migrations"))
    .filter((f) => list.test(readFileSync(f, "utf8")));
  expect(copies.map((f) => relative(root, f))).toEqual([]);
});
