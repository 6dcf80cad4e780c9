// Found by the chaos run (issue 10 proof), Uni Micro: no draft left behind and no credit note refused as
// "not ours" when an answer comes late or a read fails halfway through a push.
import { afterEach, describe, expect, test } from "bun:test";
import { TargetError } from "../connectors/http.ts";
import { CreditNote, Invoice } from "../agent/model.ts";
import { ctx, invoice, seedMasterData, startEnv, type Env } from "./unimicro-fixtures.ts";
import { asDispatcher, waitFor } from "./helpers.ts";

let env: Env;
afterEach(() => env?.stop());

/** What the dispatcher does: push again until done, carrying uncertainty forward. */
async function pushUntilDone(payload: unknown, uncertain = false): Promise<{ remoteId: string; tries: string[] }> {
  const tries: string[] = [];
  for (let i = 0; i < 100; i++) {
    try {
      return { ...(await asDispatcher(() => env.connector.push("invoice", payload, ctx({ uncertain })))), tries };
    } catch (e) {
      if (!(e instanceof TargetError) || e.kind === "permanent") throw e;
      tries.push(e.code);
      uncertain ||= e.kind === "uncertain";
      await Bun.sleep(50);
    }
  }
  throw new Error(`not done after 100 tries: ${tries.join(", ")}`);
}

const ours = async (psaId: string) => (await env.company()).invoices.filter((r: any) => r.InternalNote === `kontobro:${psaId}`);

describe("Uni Micro answers that come late or break off", () => {
  test("an invoice draft POST answered after the timeout is finished, not doubled: one booked invoice, no draft", async () => {
    env = startEnv({ config: { request_timeout_ms: 1000 } });
    await seedMasterData(env);
    await env.faults({ method: "POST", path: "^/api/biz/invoices$", fault: "latency", latencyMs: 1500, count: 1 });
    const r = await pushUntilDone(Invoice.parse(invoice()));
    expect(r.tries[0]).toBe("timeout");
    // The late POST's answer has come (the sandbox logs a request once answered).
    await waitFor("the late POST answered", async () =>
      (await env.state()).requests.some((q: any) => q.method === "POST" && q.fault === "latency"),
    );
    const rows = await ours("psa-inv-10117");
    expect(rows.map((x: any) => x.StatusCode)).toEqual([42002]);
    expect(String(rows[0].ID)).toBe(r.remoteId);
  }, 20_000);

  test("a credit note whose credit draft was made but not yet marked when a read failed is finished, not refused as foreign", async () => {
    env = startEnv();
    await seedMasterData(env);
    await env.connector.push("invoice", Invoice.parse(invoice()), ctx());
    // The action makes the (unmarked) credit draft; the read of it that follows gets a 503.
    await env.faults({ method: "GET", path: "^/api/biz/invoices/\\d+\\?expand=Items", fault: "503", count: 1 });
    const credit = CreditNote.parse(
      invoice({
        kind: "credit_note",
        number: "10118",
        psaId: "psa-inv-10118",
        creditedInvoiceNumber: "10117",
        lines: [{ text: "Kreditert", quantity: 1, unitPrice: 100000, kind: "hours" }],
      }),
    );
    const r = await pushUntilDone(credit);
    expect(r.tries).toEqual(["unimicro.http_503"]);
    const co = await env.company();
    expect(
      co.invoices.filter((i: any) => i.InvoiceReferenceID).map((i: any) => [i.StatusCode, i.InternalNote, i.TaxExclusiveAmount]),
    ).toEqual([[42002, "kontobro:psa-inv-10118", -1000]]);
  });
});
