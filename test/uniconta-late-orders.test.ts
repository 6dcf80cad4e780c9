// Found by the chaos run (seed 7), Uniconta: an order insert answered after request_timeout_ms must not leave
// a second order. The late insert is still listened to, and the attempt ends only once it is answered (connectors/
// http.ts pushUnder), so nothing more is created for that invoice meanwhile; then the next attempt finds and finishes
// that order. An order of ours found
// next to the posted invoice (a late insert of a process that was stopped) is deleted.
import { afterEach, describe, expect, test } from "bun:test";
import { TargetError } from "../connectors/http.ts";
import { asDispatcher, waitFor } from "./helpers.ts";
import { COMPANY, ctx, invoice, seedMasterData, startEnv, type Env } from "./uniconta-fixtures.ts";

let env: Env;
afterEach(async () => {
  await env?.stop();
});

/** What the dispatcher does: push again until done, carrying uncertainty forward. */
async function pushUntilDone(payload: unknown, connector = env.connector): Promise<{ remoteId: string; tries: string[] }> {
  const tries: string[] = [];
  let uncertain = false;
  for (let i = 0; i < 100; i++) {
    try {
      return { ...(await asDispatcher(() => connector.push("invoice", payload, ctx({ uncertain })))), tries };
    } catch (e) {
      if (!(e instanceof TargetError) || e.kind === "permanent") throw e;
      tries.push(e.code);
      uncertain ||= e.kind === "uncertain";
      await Bun.sleep(50);
    }
  }
  throw new Error(`not done after 100 tries: ${tries.join(", ")}`);
}

const orderInserts = async () =>
  (await env.requests()).filter((r: any) => r.method === "POST" && /Insert\/DebtorOrderClient$/.test(r.path));
const postings = async () =>
  (await env.requests()).filter(
    (r: any) => r.method === "POST" && /\/Invoice\/DebtorOrders\/\d+/.test(r.path) && /simulate=false/.test(r.path),
  );

describe("Uniconta order inserts answered late", () => {
  test("an order insert answered after the timeout is finished, not doubled: one order, posted once, nothing left over", async () => {
    env = startEnv({ config: { request_timeout_ms: 1000 } });
    await seedMasterData(env);
    await env.faults({ method: "POST", path: "Insert/DebtorOrderClient$", fault: "latency", latencyMs: 1500, count: 1 });
    const r = await pushUntilDone(invoice());
    expect(r.tries[0]).toBe("timeout");
    expect(r.remoteId).toBe("20001");
    // The late insert has been answered (the sandbox logs a request once answered); the attempt after it (uncertain)
    // replaced that order by a fresh one, a line insert of the uncertain attempt possibly still on its way.
    await waitFor("the late insert answered", async () => (await orderInserts()).some((q: any) => q.fault === "latency"));
    await Bun.sleep(200);
    expect(await orderInserts()).toHaveLength(2);
    expect(await postings()).toHaveLength(1);
    expect((await env.rows("DebtorInvoiceClient")).map((i: any) => i.InvoiceNumber)).toEqual([20001]);
    expect(await env.rows("DebtorOrderClient")).toEqual([]);
    expect(await env.rows("DebtorOrderLineClient")).toEqual([]);
  }, 20_000);

  test("an order of ours found next to the posted invoice (a stopped process's late insert) is deleted", async () => {
    env = startEnv();
    await seedMasterData(env);
    const inv = invoice();
    expect((await env.connector.push("invoice", inv, ctx())).remoteId).toBe("20001");
    // The late insert of another process lands after the posting: an order carrying the same reference.
    const auth = {
      authorization: `Basic ${Buffer.from(`00${COMPANY}/kontobro:demo-password`).toString("base64")}`,
      "content-type": "application/json",
    };
    const [posted] = await env.rows("DebtorInvoiceClient");
    const res = await fetch(`${env.url}/api/Entities/Insert/DebtorOrderClient`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ Account: "10042", Project: "P24017", OurRef: posted.OurRef }),
    });
    expect(res.status).toBeLessThan(300);
    expect(await env.rows("DebtorOrderClient")).toHaveLength(1);
    const again = await env.connector.push("invoice", inv, ctx({ uncertain: true }));
    expect(again.remoteId).toBe("20001");
    expect(await env.rows("DebtorOrderClient")).toEqual([]);
    expect(await env.rows("DebtorInvoiceClient")).toHaveLength(1);
  });
});
