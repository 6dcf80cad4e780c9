// Review R2: eAccounting has no idempotency key. A draft POST answered after request_timeout_ms still lands; the
// next attempt (uncertain) looked for the draft before it landed and made a second one with the same reference:
// whoever sends both from eAccounting invoices the customer twice. The late POST is now listened to, and no
// attempt for that invoice looks or creates until it is answered (the attempt ends only then, connectors/http.ts
// pushUnder); then the draft is found and updated.
import { afterEach, describe, expect, test } from "bun:test";
import { TargetError } from "../connectors/http.ts";
import { ctx, customer, invoice, project, related, startEnv, thrown, type Env } from "./eaccounting-fixtures.ts";
import { asDispatcher } from "./helpers.ts";

let env: Env | undefined;
afterEach(async () => {
  await env?.stop();
  env = undefined;
});

describe("eAccounting draft POSTs answered late", () => {
  test("a draft POST answered after the timeout is found and updated, not doubled", async () => {
    env = startEnv({ config: { request_timeout_ms: 300 } });
    await env.connector.push("customer", customer(), ctx());
    await env.connector.push("project", project(), ctx());
    const rel = related({ customer: customer() });
    await env.faults({ method: "POST", path: "/v2/customerinvoicedrafts$", fault: "latency", latencyMs: 1500, count: 1 });
    const started = performance.now();
    const first = await thrown(asDispatcher(() => env!.connector.push("invoice", invoice(), ctx({ record: rel }))));
    expect(first).toMatchObject({ kind: "uncertain", code: "timeout" });
    // Given up at the deadline, the attempt ended only once its late POST had answered.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1400);
    // What the dispatcher does: push again (uncertain) until done.
    let done: { remoteId: string } | undefined;
    const tries: string[] = [];
    for (let i = 0; i < 100 && !done; i++) {
      try {
        done = await asDispatcher(() => env!.connector.push("invoice", invoice(), ctx({ uncertain: true, record: rel })));
      } catch (e) {
        if (!(e instanceof TargetError) || e.kind === "permanent") throw e;
        tries.push(e.code);
        await Bun.sleep(50);
      }
    }
    await Bun.sleep(1700); // past the late POST's 1.5 s in the sandbox, had nobody waited for it
    const s = await env.state();
    expect(s.drafts.map((d: any) => d.ElectronicReference)).toEqual(["kontobro:psa-inv-20001"]);
    expect(done!.remoteId).toBe(`draft:${s.drafts[0].Id}`);
    expect(tries).toEqual([]);
  }, 20_000);
});

// Found by the chaos run: a draft POST answered after its process was killed lands after the next process looked
// and created; a later lookup (uncertain: a restore, a lost answer) then found two drafts and stopped at needs action.
describe("two drafts with kontobro's reference (one landed after its process was gone)", () => {
  /** Two drafts for invoice(): one by a process that is gone, one by the next process that did not see it yet. */
  async function twoDrafts(): Promise<Env> {
    const e = startEnv();
    await e.connector.push("customer", customer(), ctx());
    await e.connector.push("project", project(), ctx());
    const rel = related({ customer: customer() });
    await e.connector.push("invoice", invoice(), ctx({ record: rel }));
    // The next process looks before the first draft has landed: hidden while it pushes, then back (the older one).
    const drafts = e.sandbox.invoicing().drafts;
    const [[id, first]] = [...drafts];
    drafts.delete(id);
    await e.connectorWith({}).push("invoice", invoice(), ctx({ record: rel }));
    drafts.set(id, first!);
    expect((await e.state()).drafts).toHaveLength(2);
    return e;
  }
  const rel = () => related({ customer: customer() });

  test("copies of what kontobro writes are its own: the next lookup keeps one, deletes the others and is done", async () => {
    env = await twoDrafts();
    const done = await env.connector.push("invoice", invoice(), ctx({ uncertain: true, record: rel() }));
    const s = await env.state();
    expect(s.drafts.map((d: any) => d.ElectronicReference)).toEqual(["kontobro:psa-inv-20001"]);
    expect(done.remoteId).toBe(`draft:${s.drafts[0].Id}`);
  });

  test("one changed in eAccounting: needs action, both kept, a person chooses", async () => {
    env = await twoDrafts();
    const [, second] = [...env.sandbox.invoicing().drafts.values()];
    second!.Rows[0].Text = "Changed by hand in eAccounting";
    const e = await thrown(env.connector.push("invoice", invoice(), ctx({ uncertain: true, record: rel() })));
    expect(e).toMatchObject({ kind: "permanent", code: "eaccounting.draft_duplicate" });
    expect(e.message).toContain("2 drafts carrying kontobro's reference");
    expect((await env.state()).drafts).toHaveLength(2);
  });
});
