// Two credit notes of one invoice pushed at once (a PSA sending partial credits together; the dispatcher pushes up
// to `concurrency` records side by side). A credit note starts as the platform's credit draft of the invoice, unmarked
// until kontobro's PUT marks it: the other push saw that draft and stopped as `unimicro.credit_draft_foreign`, and an
// uncertain one adopted it, rewrote it with its own lines, and the two credit notes ended as one booked document.
import { afterEach, expect, test } from "bun:test";
import { CreditNote, Invoice } from "../agent/model.ts";
import { CreditTurns } from "../connectors/unimicro/credit-turns.ts";
import { waitFor } from "./helpers.ts";
import { ctx, invoice, seedMasterData, startEnv, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

const credit = (number: string, unitPrice: number) =>
  CreditNote.parse(
    invoice({
      kind: "credit_note",
      number,
      psaId: `psa-inv-${number}`,
      creditedInvoiceNumber: "10117",
      lines: [{ text: `Kreditert ${number}`, quantity: 1, unitPrice, kind: "hours" }],
    }),
  );

async function bookedCredits(): Promise<{ number: string; marker: string; net: number }[]> {
  const co = await env.company();
  return co.invoices
    .filter((i: any) => i.InvoiceType === 1 && i.StatusCode !== 42001)
    .map((i: any) => ({ number: String(i.InvoiceNumber), marker: i.InternalNote, net: i.TaxExclusiveAmount }))
    .sort((a: any, b: any) => a.number.localeCompare(b.number));
}

for (const [how, uncertain] of [
  ["first attempts", false],
  ["one of them an uncertain retry", true],
] as const) {
  test(`two credit notes of one invoice pushed at once (${how}): each booked once, with its own lines`, async () => {
    env = startEnv();
    await seedMasterData(env);
    await env.connector.push("invoice", Invoice.parse(invoice()), ctx());
    // The first push's credit draft is made, and its marking PUT is on its way (slow), when the second push starts.
    await env.faults([{ method: "PUT", path: "^/api/biz/invoices/\\d+$", fault: "latency", latencyMs: 500, probability: 1 }]);
    const first = env.connector.push("invoice", credit("10118", 100000), ctx());
    await waitFor("the first credit draft", async () =>
      (await env.company()).invoices.some((i: any) => i.InvoiceType === 1 && i.StatusCode === 42001),
    );
    const second = env.connector.push("invoice", credit("10119", 20000), ctx({ uncertain }));
    await Promise.all([first, second]);
    expect(await bookedCredits()).toEqual([
      { number: "10118", marker: "kontobro:psa-inv-10118", net: -1000 },
      { number: "10119", marker: "kontobro:psa-inv-10119", net: -200 },
    ]);
  });
}

test("a credit turn whose write is answered late lasts until the answer is in; turns of other invoices do not wait", async () => {
  const turns = new CreditTurns();
  const first = await turns.take("10117");
  let answer!: () => void;
  first.holdFor(new Promise<void>((resolve) => (answer = resolve)));
  first.end();
  let second = false;
  const next = turns.take("10117").then((t) => {
    second = true;
    return t;
  });
  const other = await turns.take("10200");
  other.end();
  await Bun.sleep(20);
  expect(second).toBe(false);
  answer();
  (await next).end();
  expect(second).toBe(true);
});
