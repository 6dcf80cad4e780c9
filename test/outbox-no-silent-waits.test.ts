// Issue 10, items 6 and 7: nothing waits silently, and fixing a record re-sends what failed because of it. On both
// engines (test/engines.ts).
import { beforeEach, describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { storageEngines } from "./engines.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const ALL = () => true;
const GRACE = 15 * 60_000;
const { engines, open } = storageEngines("the no-silent-waits tests");

describe.each(engines)("on %s", (engine) => {
  let runner: SqlRunner;
  let clock: number;
  let outbox: Outbox;
  let intake: IntakeWriter;

  beforeEach(async () => {
    runner = await open(engine);
    clock = 1_000_000;
    outbox = new Outbox(runner, () => clock, GRACE);
    intake = new IntakeWriter(
      outbox,
      () => ["t1"],
      () => {},
      () => clock,
    );
  });

  async function send(...events: unknown[]) {
    const parsed = parseEvents(events);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.events));
    return intake.submit(parsed.events);
  }
  const row = (entity: string, key: string) =>
    runner.get<any>(
      "SELECT id, status, waiting_on AS waitingOn, error_code AS code, error_message AS message, error_hint AS hint FROM deliveries WHERE entity = ?1 AND key = ?2 ORDER BY id DESC LIMIT 1",
      entity,
      key,
    );
  const done = (d: any) => outbox.complete([{ delivery: d, outcome: { kind: "done", remoteId: d.key, payloadHash: "h" } }]);

  describe("no silent waits", () => {
    test("an invoice whose customer the PSA never sends needs action after the grace period, naming the customer", async () => {
      await send(invoiceEvent(1, 77));
      expect(await outbox.claim("t1", 10, 60_000, ALL)).toHaveLength(0);
      expect(await row("invoice", "1")).toMatchObject({ status: "waiting", waitingOn: "customer:77" });
      clock += GRACE - 1000;
      await outbox.claim("t1", 10, 60_000, ALL);
      expect((await row("invoice", "1")).status).toBe("waiting");
      clock += 31_000;
      await outbox.claim("t1", 10, 60_000, ALL);
      expect(await row("invoice", "1")).toMatchObject({ status: "needs_action", code: "missing_record" });
      expect((await row("invoice", "1")).message).toContain("customer 77");
      expect((await row("invoice", "1")).hint).toContain("Send customer 77");

      // The PSA sends the customer: the invoice goes by itself after it, no retry button needed.
      await send(customerEvent(77));
      const [c] = await outbox.claim("t1", 10, 60_000, ALL);
      expect(c!.entity).toBe("customer");
      await done(c);
      const [inv] = await outbox.claim("t1", 10, 60_000, ALL);
      expect(inv).toMatchObject({ entity: "invoice", key: "1" });
    });

    test("a product named on a line that the PSA never sent (the target's own master data) does not hold the invoice", async () => {
      await send(customerEvent(1));
      await done((await outbox.claim("t1", 10, 60_000, ALL))[0]);
      await send(invoiceEvent(1, 1, undefined, { lines: [{ text: "Hours", quantity: 1, unitPrice: 100, productCode: "TIME" }] }));
      expect((await outbox.claim("t1", 10, 60_000, ALL)).map((d) => d.key)).toEqual(["1"]);
    });

    test("a customer number written 0101 matches customer 101", async () => {
      await send(customerEvent(101));
      await done((await outbox.claim("t1", 10, 60_000, ALL))[0]);
      await send(invoiceEvent(1, 0, undefined, { customerNumber: "0101" }));
      expect((await outbox.claim("t1", 10, 60_000, ALL)).map((d) => `${d.entity}:${d.key}`)).toEqual(["invoice:1"]);
    });
  });

  describe("fixing a record re-sends what failed because of it", () => {
    test("an invoice refused because of its customer's name is retried when the PSA corrects the customer", async () => {
      await send(customerEvent(1, { name: "x".repeat(255) }));
      await done((await outbox.claim("t1", 10, 60_000, ALL))[0]);
      await send(invoiceEvent(1, 1));
      const [inv] = await outbox.claim("t1", 10, 60_000, ALL);
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
      expect((await row("invoice", "1")).status).toBe("needs_action");

      // An unrelated customer changes nothing.
      await send(customerEvent(2));
      expect((await row("invoice", "1")).status).toBe("needs_action");
      await done((await outbox.claim("t1", 10, 60_000, ALL))[0]);

      await send(customerEvent(1, { name: "Short name" }));
      expect((await row("invoice", "1")).status).toBe("pending");
      const [c] = await outbox.claim("t1", 10, 60_000, ALL);
      expect(c).toMatchObject({ entity: "customer", key: "1" });
      await done(c);
      expect((await outbox.claim("t1", 10, 60_000, ALL)).map((d) => `${d.entity}:${d.key}`)).toEqual(["invoice:1"]);
    });
  });
});
