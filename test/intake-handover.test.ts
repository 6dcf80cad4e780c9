// The text that carries prepared requests to the intake writer's thread (agent/intake-handover.ts): what the
// writer decodes is exactly what the main thread prepared, whatever the payloads hold.
import { describe, expect, test } from "bun:test";
import { decodeRequests, encodeRequests, type WriterRequest } from "../agent/intake-handover.ts";
import { parseEvents } from "../agent/intake.ts";
import { prepareEvents } from "../agent/intake-store.ts";

function prepared(body: unknown) {
  const parsed = parseEvents(body);
  if (!parsed.ok) throw new Error(parsed.message);
  return prepareEvents(parsed.events);
}

const invoice = (number: number, pdf?: string) => ({
  id: `inv-${number}`,
  type: "invoice.finalized",
  occurredAt: "2026-03-31T14:05:00+02:00",
  data: {
    number,
    psaId: `psa-${number}`,
    customerNumber: 7,
    date: "2026-03-31",
    dueDate: "2026-04-14",
    lines: [{ text: 'Rådgivning "fase 2"\nlinje to \u2028 ✓ 🧾', quantity: 7.5, unitPrice: 145000 }],
    ...(pdf ? { pdf: { filename: "f.pdf", contentBase64: pdf } } : {}),
  },
});

describe("intake hand-over", () => {
  test("requests come out as they went in: ids, order, every field, payloads with quotes, line breaks and non-ASCII", () => {
    const requests: WriterRequest[] = [
      {
        id: 1,
        events: prepared({ id: "c-1", type: "customer.upserted", data: { number: "0101", name: 'Ærø "AS"\n{x}', currency: "DKK" } }),
      },
      { id: 2, events: prepared([invoice(10), invoice(11, "JVBERi0xLjQK")]) },
      { id: 3, events: prepared({ id: "p-1", type: "product.upserted", data: { code: "0101", name: "\\ backslash \u0001 soh \t tab" } }) },
    ];
    expect(requests[1]!.events[1]!.doc!.recordPayload).not.toBe(requests[1]!.events[1]!.payload);
    const text = encodeRequests(requests);
    expect(decodeRequests(text)).toEqual(requests);
    // Invoices keep their doc; others have none (not even an undefined key).
    expect(Object.keys(decodeRequests(text)[0]!.events[0]!)).not.toContain("doc");
  });

  test("an empty payload and no requests at all", () => {
    const empty: WriterRequest[] = [
      { id: 9, events: [{ id: "e", type: "customer.upserted", entity: "customer", key: "1", payload: "", occurredAt: null }] },
    ];
    expect(decodeRequests(encodeRequests(empty))).toEqual(empty);
    expect(decodeRequests(encodeRequests([]))).toEqual([]);
  });
});
