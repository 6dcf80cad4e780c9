// Uni Micro requests that reach the platform after the attempt that sent them gave up (request_timeout_ms) and
// after another attempt of the same delivery went on: the rewrite of a draft (PUT invoices/{id}), the booking
// (POST invoices/{id}?action=invoice) and the credit action (PUT invoices/{id}?action=create-credit-draft-invoice).
// Now the attempt ends only once its late request has answered (connectors/http.ts pushUnder, as the dispatcher runs
// it), so the next attempt reads what it did. Real parts: the sandbox over loopback, delays by its fault rules.
import { afterEach, describe, expect, test } from "bun:test";
import { CreditNote, Invoice } from "../agent/model.ts";
import { TargetError } from "../connectors/http.ts";
import { asDispatcher } from "./helpers.ts";
import { ctx, invoice, seedMasterData, startEnv, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

// An attempt gives up at TIMEOUT; the late request is carried out at LATE. Without the wait, that was after the next
// attempt had read the draft (it started at TIMEOUT), and before that attempt's delayed request (at TIMEOUT + NEXT).
const TIMEOUT = 2000;
const LATE = 2800;
const NEXT = 1600;

async function attempt(payload: unknown, uncertain: boolean): Promise<any> {
  return asDispatcher(() => env.connector.push("invoice", payload, ctx({ uncertain }))).catch((e) => e);
}

/** The first attempt: given up at the deadline, and ended only once its late request had answered. */
async function lateAttempt(payload: unknown, uncertain: boolean): Promise<void> {
  const started = performance.now();
  expect(await attempt(payload, uncertain)).toMatchObject({ kind: "uncertain", code: "timeout" });
  expect(performance.now() - started).toBeGreaterThanOrEqual(LATE - 100);
}

/** What the dispatcher does: push again (uncertain) until done; a permanent failure ends it ("needs action"). */
async function pushUntilDone(payload: unknown): Promise<{ remoteId?: string; tries: string[]; failed?: TargetError }> {
  const tries: string[] = [];
  for (let i = 0; i < 200; i++) {
    const r = await attempt(payload, true);
    if (!(r instanceof Error)) return { remoteId: r.remoteId, tries };
    if (!(r instanceof TargetError) || r.kind === "permanent") return { tries, failed: r as TargetError };
    tries.push(r.code);
    await Bun.sleep(50);
  }
  throw new Error(`not done after 200 tries: ${tries.join(", ")}`);
}

/** A draft of ours left by an earlier attempt: its booking was answered with a 503 (uncertain). */
async function leaveDraft(payload: unknown): Promise<void> {
  await env.faults({ method: "POST", path: "action=invoice", fault: "503", count: 1 });
  const r = await attempt(payload, false);
  expect(r).toMatchObject({ kind: "uncertain" });
}

const booked = async () => (await env.company()).invoices.filter((r: any) => r.StatusCode !== 42001);
const itemsOf = (row: any) => row.Items.map((it: any) => [it.ItemText, it.NumberOfItems]);

describe("a Uni Micro draft rewrite answered late", () => {
  const inv = Invoice.parse(invoice());
  const lines = [
    ["Konsulenttimer april", 37.5],
    ["Hotell prosjektreise", 1],
  ];

  test("landing between the next attempt's read of the draft and its own rewrite: booked once, nothing refused", async () => {
    env = startEnv({ config: { request_timeout_ms: TIMEOUT } });
    await seedMasterData(env);
    await leaveDraft(inv);
    await env.faults({ method: "PUT", path: "^/api/biz/invoices/\\d+$", fault: "latency", latencyMs: LATE, count: 1 });
    await lateAttempt(inv, true);
    await env.faults({ method: "PUT", path: "^/api/biz/invoices/\\d+$", fault: "latency", latencyMs: NEXT, count: 1 });
    const r = await pushUntilDone(inv);
    expect(r.failed).toBeUndefined();
    expect(r.tries).toEqual([]);
    const rows = await booked();
    expect(rows).toHaveLength(1);
    expect(itemsOf(rows[0])).toEqual(lines);
  }, 30_000);

  test("landing between the next attempt's rewrite and its booking: booked with one set of lines", async () => {
    env = startEnv({ config: { request_timeout_ms: TIMEOUT }, sandbox: { deletedChildren: "kept" } });
    await seedMasterData(env);
    await leaveDraft(inv);
    await env.faults({ method: "PUT", path: "^/api/biz/invoices/\\d+$", fault: "latency", latencyMs: LATE, count: 1 });
    await lateAttempt(inv, true);
    await env.faults({ method: "POST", path: "action=invoice", fault: "latency", latencyMs: NEXT, count: 1 });
    const r = await pushUntilDone(inv);
    expect(r.failed).toBeUndefined();
    expect(r.tries).toEqual([]);
    const rows = await booked();
    expect(rows).toHaveLength(1);
    expect(itemsOf(rows[0])).toEqual(lines);
  }, 30_000);
});

describe("a Uni Micro booking answered late", () => {
  test("landing between the next attempt's read of the draft and its rewrite: done, nothing refused", async () => {
    env = startEnv({ config: { request_timeout_ms: TIMEOUT } });
    await seedMasterData(env);
    const inv = Invoice.parse(invoice());
    await env.faults({ method: "POST", path: "action=invoice", fault: "latency", latencyMs: LATE, count: 1 });
    await lateAttempt(inv, false);
    await env.faults({ method: "PUT", path: "^/api/biz/invoices/\\d+$", fault: "latency", latencyMs: NEXT, count: 1 });
    const r = await pushUntilDone(inv);
    expect(r.failed).toBeUndefined();
    expect(r.tries).toEqual([]);
    const rows = await booked();
    expect(rows.map((x: any) => String(x.ID))).toEqual([r.remoteId!]);
  }, 30_000);
});

describe("a Uni Micro credit action answered late", () => {
  test("its unmarked credit draft is adopted and booked: one credit note, no credit draft left", async () => {
    env = startEnv({ config: { request_timeout_ms: TIMEOUT } });
    await seedMasterData(env);
    await attempt(Invoice.parse(invoice()), false);
    const credit = CreditNote.parse(
      invoice({
        kind: "credit_note",
        number: "10118",
        psaId: "psa-inv-10118",
        creditedInvoiceNumber: "10117",
        lines: [{ text: "Kreditert", quantity: 1, unitPrice: 100000, kind: "hours" }],
      }),
    );
    await env.faults({ method: "PUT", path: "action=create-credit-draft-invoice", fault: "latency", latencyMs: LATE, count: 1 });
    await lateAttempt(credit, false);
    const r = await pushUntilDone(credit);
    expect(r.failed).toBeUndefined();
    expect(r.tries).toEqual([]);
    await Bun.sleep(LATE - TIMEOUT + 200); // past the late action in the sandbox, had nobody waited for it
    const credits = (await env.company()).invoices.filter((i: any) => i.InvoiceReferenceID);
    expect(credits.map((i: any) => [i.StatusCode, i.InternalNote, i.TaxExclusiveAmount])).toEqual([
      [42002, "kontobro:psa-inv-10118", -1000],
    ]);
    expect(String(credits[0].ID)).toBe(r.remoteId!);
  }, 30_000);
});
