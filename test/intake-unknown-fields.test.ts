// A field kontobro does not know is refused at intake, never dropped: a PSA that spells a field its own way (vat_code
// for vatCode), sends a discount, a line amount, an invoice total or an exchange rate, or misspells occurredAt would
// otherwise get a 202 while the target books the invoice without what the field meant (full price, default VAT, the
// wrong version first).
import { describe, expect, test } from "bun:test";
import { MAX_PROBLEMS_PER_EVENT, parseEvents } from "../agent/intake.ts";
import { startStack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

/** The invoice of helpers.ts with `patch` on its first line and `extra` on the invoice. */
function invoiceWith(line: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const e = invoiceEvent(100, 7, undefined, extra);
  const [first, ...rest] = e.data.lines;
  return { ...e, data: { ...e.data, lines: [{ ...first, ...line }, ...rest] } };
}

function refusedFields(body: unknown) {
  const r = parseEvents(body);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.events.map((e) => e.data))}`);
  expect(r.status).toBe(422);
  return r.events.flatMap((e) => e.problems);
}

describe("unknown fields are refused, not ignored", () => {
  test.each([
    ["a VAT code spelt vat_code", { vat_code: "U25" }, "data.lines.0.vat_code"],
    ["a discount kontobro has no field for", { discount: 10 }, "data.lines.0.discount"],
    ["a line amount that is not quantity × unitPrice", { amount: 100 }, "data.lines.0.amount"],
  ])("on a line: %s", (_what, line, field) => {
    const problems = refusedFields(invoiceWith(line));
    expect(problems.map((p) => p.field)).toEqual([field]);
    expect(problems[0]!.code).toBe("invalid.unknown_field");
    expect(problems[0]!.message).toContain(`${field}: unknown field`);
    expect(problems[0]!.hint).toContain("openapi.json");
  });

  test("on the invoice: a total and an exchange rate", () => {
    const problems = refusedFields(invoiceWith({}, { currency: "EUR", total: 1, exchangeRate: 11.5 }));
    expect(problems.map((p) => p.field)).toEqual(["data.total", "data.exchangeRate"]);
  });

  test("on the envelope: occurredAt misspelt, so the order of versions would be lost", () => {
    const problems = refusedFields({ ...customerEvent(7), ocurredAt: "2026-03-31T14:05:00Z" });
    expect(problems.map((p) => p.field)).toEqual(["ocurredAt"]);
  });

  test("deep inside a record: an address field, a contact field", () => {
    const problems = refusedFields(
      customerEvent(7, { addresses: [{ street: "Strandgaten 1", postcode: "5013" }], contacts: [{ name: "A", mail: "a@b.no" }] }),
    );
    expect(problems.map((p) => p.field)).toEqual(["data.addresses.0.postcode", "data.contacts.0.mail"]);
  });

  test("one bad event in a batch refuses the batch, and names that event only", () => {
    const r = parseEvents([customerEvent(7), invoiceWith({ discount: 10 })]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.events.map((e) => e.index)).toEqual([1]);
  });

  test("known fields as sent are still accepted: padded tag groups, an echoed contact, a credit note with minus signs", () => {
    const tagged = parseEvents(invoiceWith({}, { tags: { " Avdeling ": "Bergen" } }));
    expect(tagged.ok).toBe(true);
    // A customer as kontobro's inbox gives it to the PSA (a target's contact with its name's parts), echoed back.
    const echoed = parseEvents(customerEvent(7, { contacts: [{ name: "Kari Nordmann", firstName: "Kari", lastName: "Nordmann" }] }));
    expect(echoed.ok).toBe(true);
    const credit = invoiceEvent(101, 7, undefined, { creditedInvoiceNumber: 100 });
    const r = parseEvents({
      ...credit,
      type: "invoice.credited",
      data: { ...credit.data, lines: credit.data.lines.map((l) => ({ ...l, quantity: -l.quantity })) },
    });
    expect(r.ok).toBe(true);
  });

  test("200,000 unknown keys in one event: a short 422 naming the first ones and how many more (not 200,000 problems), and the agent answers another request meanwhile", async () => {
    const stack = await startStack({});
    try {
      const keys = Array.from({ length: 200_000 }, (_, i) => `"x${i}":1`).join(",");
      const body = `[${JSON.stringify(customerEvent(81101))},{"id":"uk-many","type":"customer.upserted","data":{"number":"81102","name":"A",${keys}}}]`;
      const post = (b: string) =>
        fetch(`${stack.agent.url}/api/v1/events`, {
          method: "POST",
          body: b,
          headers: { authorization: "Bearer test-token-0123456789", "content-type": "application/json" },
        });
      const [many, other] = await Promise.all([post(body), stack.post(customerEvent(81103))]);
      expect(other.status).toBe(202);
      expect(many.status).toBe(422);
      const text = await many.text();
      // Before: every key a problem of its own, an 80 MB answer.
      expect(text.length).toBeLessThan(20_000);
      const { events } = JSON.parse(text);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ index: 1, id: "uk-many" });
      const problems = events[0].problems;
      expect(problems).toHaveLength(MAX_PROBLEMS_PER_EVENT + 1);
      expect(problems.slice(0, MAX_PROBLEMS_PER_EVENT).map((p: { field: string }) => p.field)).toEqual(
        Array.from({ length: MAX_PROBLEMS_PER_EVENT }, (_, i) => `data.x${i}`),
      );
      expect(problems.at(-1)).toMatchObject({ code: "invalid.more_problems" });
      expect(problems.at(-1).message).toContain(`and ${200_000 - MAX_PROBLEMS_PER_EVENT} more problem(s) of this event`);
      // Nothing of the refused request stored; the other request's event is.
      const numbers = stack.agent.db.$client.query("SELECT key FROM events WHERE entity = 'customer'").all() as { key: string }[];
      expect(numbers.map((n) => n.key)).toEqual(["81103"]);
    } finally {
      await stack.stop();
    }
  });

  test("exactly as many unknown fields as are listed: no line saying more", () => {
    const extra = Object.fromEntries(Array.from({ length: MAX_PROBLEMS_PER_EVENT }, (_, i) => [`x${i}`, 1]));
    const problems = refusedFields({ ...customerEvent(81104), data: { ...customerEvent(81104).data, ...extra } });
    expect(problems).toHaveLength(MAX_PROBLEMS_PER_EVENT);
    expect(problems.every((p) => p.code === "invalid.unknown_field")).toBe(true);
  });
});
