// Review R2: a line insert that reaches Uniconta after the attempt that took the delivery over read the order's
// lines (a hosted worker paused between its fence and the wire, or an answer past request_timeout_ms) must not
// double the order's lines: whoever invoices that order would invoice the customer twice.
import { afterEach, describe, expect, test } from "bun:test";
import { TargetError } from "../connectors/http.ts";
import { waitFor } from "./helpers.ts";
import { ctx, invoice, seedMasterData, startEnv, type Env } from "./uniconta-fixtures.ts";

let env: Env;
afterEach(async () => {
  await env?.stop();
});

const lineInserts = async () =>
  (await env.requests()).filter((r: any) => r.method === "POST" && /Insert\/DebtorOrderLineClient$/.test(r.path));

describe("Uniconta line inserts arriving late", () => {
  test("order only: a late line insert of an earlier attempt does not double the order's lines", async () => {
    env = startEnv({ config: { posting: "order_only", request_timeout_ms: 300 } });
    await seedMasterData(env);
    const inv = invoice();
    await env.faults({ method: "POST", path: "Insert/DebtorOrderLineClient$", fault: "latency", latencyMs: 1500, count: 1 });
    const first = await env.connector.push("invoice", inv, ctx()).catch((e) => e);
    expect(first).toBeInstanceOf(TargetError);
    expect(first.kind).toBe("uncertain");
    // The attempt that takes the delivery over (uncertain) finds the order and gives it its lines.
    const second = await env.connector.push("invoice", inv, ctx({ uncertain: true }));
    expect(second.remoteId).toMatch(/^order:/);
    // The first attempt's line insert lands after that.
    await waitFor("the late line insert answered", async () => (await lineInserts()).some((q: any) => q.fault === "latency"), 10_000);
    await Bun.sleep(200);
    const orders = await env.rows("DebtorOrderClient");
    expect(orders).toHaveLength(1);
    const lines = await env.rows("DebtorOrderLineClient");
    expect(lines).toHaveLength(inv.lines.length);
  }, 20_000);
});
