// The same PSA invoice sent again under a new number after kontobro's local state was lost, at Uni Micro, Uniconta
// and eAccounting (e-conomic: economic-renumbered-after-restore.test.ts). The restored database has forgotten the
// booking, so intake cannot refuse the PSA id (invoice.psa_id_taken); the PSA renumbered the invoice meanwhile. Real
// agents against the real sandboxes over loopback: backup, book, restore, resend under the new number.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { databasePath, startAgent, type RunningAgent } from "../agent/agent.ts";
import { demoConfig, startDemoTarget, type DemoTarget } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { backupDatabase, restoreDatabase } from "../agent/restore-sqlite.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

let agent: RunningAgent | undefined;
let target: DemoTarget | undefined;
afterEach(async () => {
  await agent?.stop();
  await target?.stop();
  agent = target = undefined;
});

/** Books PSA invoice 20001 after a backup, restores the backup, and has the PSA resend it as 20002. */
async function resendRenumbered(kind: string, prepare: (sandboxUrl: string) => Promise<void> = async () => {}) {
  target = await startDemoTarget(kind);
  const t = target;
  await prepare(t.sandboxUrl);
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
          "SELECT status, error_code AS code, error_message AS message, error_hint AS hint, remote_id AS remoteId FROM deliveries WHERE key = ?1 ORDER BY id DESC",
        )
        .get(key) as any;
      return d && ["done", "needs_action"].includes(d.status) ? d : null;
    });

  await post([customerEvent(10501)]);
  await settled("10501");
  const backup = join(tempDir(), "backup.db");
  backupDatabase(databasePath(dataDir), backup);
  await post([invoiceEvent(20001, 10501)]);
  const first = await settled("20001");
  expect(first).toMatchObject({ status: "done" });
  await agent.stop();
  restoreDatabase(dataDir, databasePath(dataDir), backup);
  agent = await startAgent(config, targets, silentLogger);
  await post([invoiceEvent(20002, 10501, undefined, { psaId: "PSA-INV-20001" }, "renumbered")]);
  const resent = await settled("20002");
  const state = (await (await fetch(`${t.sandboxUrl}/__sandbox/state`)).json()) as any;
  return { first, resent, state };
}

describe("a PSA invoice resent under a new number after a restore", () => {
  test("Uni Micro: not linked to the invoice booked under the old number; needs action naming both numbers", async () => {
    const { resent, state } = await resendRenumbered("unimicro");
    expect({ status: resent.status, code: resent.code }).toEqual({
      status: "needs_action",
      code: "unimicro.invoice_booked_under_other_number",
    });
    expect(resent.message).toContain("PSA invoice PSA-INV-20001 is already booked");
    expect(resent.message).toContain("as invoice 20001");
    expect(resent.message).toContain("sends it as 20002");
    expect(resent.hint).toContain("20002 is booked as 20001");
    const invoices = (Object.values(state.companies)[0] as any).invoices as any[];
    expect(invoices.map((i) => [i.InvoiceNumber, i.StatusCode, i.InternalNote])).toEqual([["20001", 42002, "kontobro:PSA-INV-20001"]]);
  }, 30_000);

  test("Uniconta: not posted again; needs action naming the PSA id and both numbers, not only the number series", async () => {
    const { resent, state } = await resendRenumbered("uniconta", async (url) => {
      const res = await fetch(`${url}/__sandbox/number-series`, {
        method: "POST",
        body: JSON.stringify({ next: 20001 }),
        headers: { "content-type": "application/json" },
      });
      expect(res.ok).toBe(true);
    });
    expect({ status: resent.status, code: resent.code }).toEqual({ status: "needs_action", code: "uniconta.invoice_number_mismatch" });
    expect(resent.message).toContain("PSA invoice PSA-INV-20001 is already posted in Uniconta as invoice 20001");
    expect(resent.message).toContain("sends it as 20002");
    expect(resent.message).toContain("renumbered it after kontobro lost its local state");
    expect(resent.hint).toContain("20002 is posted as 20001");
    const rows = (Object.values(state.companies)[0] as any).rows;
    expect(rows.DebtorInvoiceClient.map((r: any) => [r.InvoiceNumber, r.OurRef])).toEqual([[20001, "kontobro:PSA-INV-20001"]]);
    expect(rows.DebtorOrderClient).toEqual([]);
  }, 30_000);

  test("eAccounting (it numbers invoices itself): the resend finds our draft by its reference and updates it, no second draft", async () => {
    const { first, resent, state } = await resendRenumbered("eaccounting");
    expect({ status: resent.status, code: resent.code, remoteId: resent.remoteId }).toEqual({
      status: "done",
      code: null,
      remoteId: first.remoteId,
    });
    expect(state.drafts.map((d: any) => d.ElectronicReference)).toEqual(["kontobro:PSA-INV-20001"]);
    expect(state.invoices ?? []).toEqual([]);
  }, 30_000);
});
