// The same PSA invoice sent again under a new number after kontobro's local state was lost (with the real agent:
// renumbered-after-restore.test.ts). Uni Micro found its booked invoice by the InternalNote marker under the old
// number and linked the resend to it: done, the books showing the old number and the PSA the new one, and nobody told.
// It now needs action, unless the booked invoice keeps this version's payment id (the platform's series renumbered it).
import { afterEach, describe, expect, test } from "bun:test";
import { ctx, type Env, invoice, seedMasterData, startEnv, thrown } from "./unimicro-fixtures.ts";

describe("the connector's lookup of our booked invoice by number and marker", () => {
  let env: Env | undefined;
  afterEach(() => {
    env?.stop();
    env = undefined;
  });

  test("an uncertain push of the renumbered invoice, and find(), need action; nothing is booked or drafted", async () => {
    env = startEnv();
    await seedMasterData(env);
    await env.connector.push("invoice", invoice(), ctx());
    const renumbered = invoice({ number: "10118" });
    const e = await thrown(env.connector.push("invoice", renumbered, ctx({ uncertain: true })));
    expect(e).toMatchObject({ kind: "permanent", code: "unimicro.invoice_booked_under_other_number", field: "number" });
    expect(e.message).toContain("as invoice 10117");
    expect((await thrown(env.connector.find("invoice", renumbered))).code).toBe("unimicro.invoice_booked_under_other_number");
    expect((await env.company()).invoices.map((i: any) => i.InvoiceNumber)).toEqual(["10117"]);
  });

  test("renumbered by the platform's own series, it keeps our payment id: the same invoice, found and done", async () => {
    env = startEnv({ sandbox: { invoiceNumbers: "series" } });
    await seedMasterData(env);
    const first = await env.connector.push("invoice", invoice(), ctx());
    expect(first.note).toContain("under number 10001");
    const again = await env.connector.push("invoice", invoice(), ctx({ uncertain: true }));
    expect(again.remoteId).toBe(first.remoteId);
    expect(await env.connector.find("invoice", invoice())).toEqual({ remoteId: first.remoteId });
    expect((await env.company()).invoices).toHaveLength(1);
  });
});
