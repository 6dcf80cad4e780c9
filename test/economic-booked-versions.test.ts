// A version of an invoice that reaches e-conomic after the invoice is booked. After a restore every delivery is
// looked up first (uncertain), and the PSA is asked to send again what changed since the backup: an unchanged resend
// of an invoice booked before the backup found its booking and stopped as "needs action" (invoice_already_booked),
// for every such invoice. What matters is whether the PSA's version books other amounts than the booked invoice.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { backupDatabase, restoreDatabase } from "../agent/restore-sqlite.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const version = (id: string, unitPrice: number, heading?: string) => ({
  ...invoiceEvent(1701, 1, undefined, {}, id),
  data: { ...invoiceEvent(1701, 1).data, heading, lines: [{ text: "Consulting", quantity: 2, unitPrice, kind: "hours" }] },
});

test("after a restore, a resent booked invoice is done when its amounts are unchanged, and needs action when they changed", async () => {
  stack = await startStack();
  const s = stack;
  await s.post([customerEvent(1), version("v1", 100_000)]);
  await s.waitDelivered(2);
  const backup = join(tempDir(), "backup.db");
  backupDatabase(databasePath(s.dataDir), backup);
  await s.agent.stop();
  restoreDatabase(s.dataDir, databasePath(s.dataDir), backup);
  await s.restart();

  // The PSA sends again what changed since the backup, generously: the invoice, unchanged but for its heading.
  await s.post([version("v1-again", 100_000, "Faktura 1701")]);
  const unchanged = await waitFor("the resend settled", async () =>
    (await s.deliveries()).find((d: any) => d.eventId === "v1-again" && ["done", "needs_action"].includes(d.status)),
  );
  expect({ status: unchanged.status, code: unchanged.errorCode ?? null }).toEqual({ status: "done", code: null });

  // A version with other amounts cannot change the booked invoice: the user is told.
  await s.post([version("v2", 150_000, "Faktura 1701")]);
  const changed = await waitFor("the changed version settled", async () =>
    (await s.deliveries()).find((d: any) => d.eventId === "v2" && ["done", "needs_action"].includes(d.status)),
  );
  expect({ status: changed.status, code: changed.errorCode }).toEqual({ status: "needs_action", code: "economic.invoice_already_booked" });
  expect(changed.errorMessage).toContain("2000.00");
  expect(changed.errorMessage).toContain("3000.00");
  const booked = (await s.sandboxState()).booked.map((b: any) => [b.bookedInvoiceNumber, b.netAmount]);
  expect(booked).toEqual([[1701, 2000]]);
}, 30_000);

// A later version of a booked invoice of many whole-øre lines: one line's price corrected by 0.04 NOK (0.30 on the line). Up to one øre a
// line was taken as rounding, so on 40 lines 30 øre counted as "the same amounts" and the version was done with the note
// "already booked with these amounts", the correction never booked and nobody told. Lines whose quantity × unit price is
// whole øre round nowhere, at any target: the room is one øre per line that rounds (none here).
test("a later version that changes a line of a many-line booked invoice by less than one øre a line needs action", async () => {
  stack = await startStack();
  const s = stack;
  const lines = (corrected: number) =>
    Array.from({ length: 40 }, (_, i) => ({
      text: `Day ${i + 1}`,
      quantity: 7.5,
      unitPrice: i === 0 ? corrected : 123_456,
      kind: "hours",
    }));
  const many = (id: string, firstPrice: number) => ({
    ...invoiceEvent(1702, 1, undefined, {}, id),
    data: { ...invoiceEvent(1702, 1).data, lines: lines(firstPrice) },
  });
  await s.post([customerEvent(1), many("m1", 123_456)]);
  await s.waitDelivered(2);

  await s.post([many("m2", 123_456 + 4)]);
  const changed = await waitFor("the corrected version settled", async () =>
    (await s.deliveries()).find((d: any) => d.eventId === "m2" && ["done", "needs_action"].includes(d.status)),
  );
  expect({ status: changed.status, code: changed.errorCode ?? null }).toEqual({
    status: "needs_action",
    code: "economic.invoice_already_booked",
  });
  expect(changed.errorMessage).toContain("370368.00"); // booked: 40 × 7.5 × 1234.56
  expect(changed.errorMessage).toContain("370368.30"); // the correction: 7.5 × 0.04 more
}, 30_000);
