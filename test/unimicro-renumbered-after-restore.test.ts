// The same PSA invoice sent again under a new number after kontobro's local state was lost. The restored database has
// forgotten the booking, so intake cannot refuse the PSA id (invoice.psa_id_taken); the PSA renumbered the invoice
// meanwhile. Uni Micro found its booked invoice by the InternalNote marker under the old number and linked the resend
// to it: done, the books showing the old number and the PSA the new one, and nobody told. It now needs action.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath, startAgent, type RunningAgent } from "../agent/agent.ts";
import { demoConfig, startDemoTarget, type DemoTarget } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { backupDatabase, restoreDatabase } from "../agent/restore-sqlite.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";
import { ctx, type Env, invoice, seedMasterData, startEnv, thrown } from "./unimicro-fixtures.ts";

describe("a PSA invoice resent under a new number after a restore (Uni Micro, real agent)", () => {
  let agent: RunningAgent | undefined;
  let target: DemoTarget | undefined;
  afterEach(async () => {
    await agent?.stop();
    await target?.stop();
    agent = target = undefined;
  });

  test("is not linked to the invoice booked under the old number but needs action naming both numbers", async () => {
    target = await startDemoTarget("unimicro");
    const t = target;
    const dataDir = tempDir();
    const { config, targets } = demoConfig({ dataDir, port: 0, target: { ...t.target, requests_per_second: 0 } });
    Object.assign(config.dispatch, { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 });
    agent = await startAgent(config, targets, silentLogger);
    const post = async (events: unknown[]) => {
      const res = await fetch(`${agent!.url}/api/v1/events`, {
        method: "POST",
        body: JSON.stringify(events),
        headers: { authorization: `Bearer ${agent!.apiToken}`, "content-type": "application/json" },
      });
      expect(res.status).toBe(202);
    };
    const settled = (key: string) =>
      waitFor(`delivery ${key} settled`, () => {
        const d = agent!.db.$client
          .query(
            "SELECT status, error_code AS code, error_message AS message, error_hint AS hint FROM deliveries WHERE key = ?1 ORDER BY id DESC",
          )
          .get(key) as any;
        return d && ["done", "needs_action"].includes(d.status) ? d : null;
      });

    await post([customerEvent(10501)]);
    await settled("10501");
    const backup = join(tempDir(), "backup.db");
    backupDatabase(databasePath(dataDir), backup);
    await post([invoiceEvent(80001, 10501)]);
    expect((await settled("80001")).status).toBe("done");
    await agent.stop();
    restoreDatabase(dataDir, databasePath(dataDir), backup);
    agent = await startAgent(config, targets, silentLogger);

    // The PSA sends the invoice again (same PSA id), renumbered to 80002.
    await post([invoiceEvent(80002, 10501, undefined, { psaId: "PSA-INV-80001" }, "renumbered")]);
    const resent = await settled("80002");
    expect({ status: resent.status, code: resent.code }).toEqual({
      status: "needs_action",
      code: "unimicro.invoice_booked_under_other_number",
    });
    expect(resent.message).toContain("PSA invoice PSA-INV-80001 is already booked");
    expect(resent.message).toContain("as invoice 80001");
    expect(resent.message).toContain("sends it as 80002");
    expect(resent.hint).toContain("80002 is booked as 80001");
    const state = (await (await fetch(`${t.sandboxUrl}/__sandbox/state`)).json()) as any;
    const invoices = (Object.values(state.companies)[0] as any).invoices as any[];
    expect(invoices.map((i) => [i.InvoiceNumber, i.StatusCode, i.InternalNote])).toEqual([["80001", 42002, "kontobro:PSA-INV-80001"]]);
  }, 30_000);
});

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
