// Issue 10 (item 7, race): the customer is corrected while the invoice that blames it is in flight
// (validated against the old customer, outcome not yet written). retryCausedBy runs in the intake
// transaction and only looks at needs_action rows, so the outcome written afterwards stays needs_action.
// On both engines (test/engines.ts).
import { expect, test } from "bun:test";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { storageEngines } from "./engines.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const { engines, open } = storageEngines("the caused-by race test");

test.each(engines)("%s: customer corrected while the invoice it blames is in flight: the invoice is still retried", async (engine) => {
  const runner = await open(engine);
  const outbox = new Outbox(runner);
  const intake = new IntakeWriter(outbox, () => ["t1"]);
  const send = async (...e: unknown[]) => {
    const p = parseEvents(e);
    if (!p.ok) throw new Error("fixture");
    return intake.submit(p.events);
  };
  await send(customerEvent(1, { name: "x".repeat(255) }));
  const [c] = await outbox.claim("t1", 10, 60_000, () => true);
  await outbox.complete([{ delivery: c!, outcome: { kind: "done", remoteId: "1", payloadHash: "h" } }]);
  await send(invoiceEvent(1, 1));
  const [inv] = await outbox.claim("t1", 10, 60_000, () => true); // the dispatcher validates it against the long name…

  await send(customerEvent(1, { name: "Short name" }, "c-1-fixed")); // …while the PSA corrects the customer

  await outbox.complete([
    {
      delivery: inv!,
      outcome: {
        kind: "needs_action",
        uncertain: false,
        problem: { code: "economic.recipient_too_long", message: "too long", record: { entity: "customer", key: "1" } },
      },
    },
  ]);
  const row = await runner.get<{ status: string }>("SELECT status FROM deliveries WHERE entity = 'invoice'");
  expect(row!.status).not.toBe("needs_action");
});
