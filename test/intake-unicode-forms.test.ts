// "Å" can be sent as one character (NFC, U+00C5) or as A and a combining ring (NFD, as macOS and some libraries write
// it). They look the same everywhere, but intake kept them apart: customer "Å-7" sent in both forms became two records
// (two customers pushed to a target), an invoice's PSA id in the other form was no longer the same document, and an
// event resent in the other form was stored as a new event. Numbers, codes, PSA ids and event ids are kept in NFC.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseEvents } from "../agent/intake.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { invoiceEvent } from "./helpers.ts";

const NFC = "Å-7";
const NFD = NFC.normalize("NFD");

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ dispatch: {} });
});
afterAll(async () => {
  await stack.stop();
});

const customer = (id: string, number: string, name = "Åsen AS") => ({ id, type: "customer.upserted", data: { number, name } });

describe("one number, one id, however its letters are composed", () => {
  test("a customer number sent in both forms is one record, in its second version", async () => {
    expect(NFD).not.toBe(NFC);
    expect((await stack.post(customer("nf-1", NFC))).status).toBe(202);
    expect((await stack.post(customer("nf-2", NFD, "Åsen Bygg AS"))).status).toBe(202);
    const rows = stack.agent.db.$client.query("SELECT key, version FROM records WHERE entity = 'customer' AND key LIKE '%-7'").all() as {
      key: string;
      version: number;
    }[];
    expect(rows).toEqual([{ key: NFC, version: 2 }]);
  });

  test("an event resent with its id in the other form is a repeat", async () => {
    expect((await stack.post(customer(`${NFC}-e`, "8801"))).body.accepted).toBe(1);
    expect((await stack.post(customer(`${NFD}-e`, "8801"))).body).toMatchObject({ duplicates: 1, events: [{ id: `${NFC}-e` }] });
  });

  test("product codes and PSA ids too", () => {
    const r = parseEvents([
      { id: "pr-1", type: "product.upserted", data: { code: `${NFD}-P`, name: "Ål" } },
      invoiceEvent(1, 7, undefined, { psaId: `INV-${NFD}` }),
    ]);
    if (!r.ok) throw new Error(JSON.stringify(r.events));
    expect(r.events[0]!.key).toBe(`${NFC}-P`);
    expect((r.events[1]!.data as { psaId: string }).psaId).toBe(`INV-${NFC}`);
  });
});
