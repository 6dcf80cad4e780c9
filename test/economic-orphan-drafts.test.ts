// Issue 10, item 4 (e-conomic): no draft carrying the PSA's invoice id outlives the push. Whoever books a
// left-over draft by hand would book the invoice twice.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { EconomicConnector } from "../connectors/economic/connector.ts";
import type { StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { SAMPLE_PDF_BASE64 } from "../agent/demo.ts";
import { signalOf } from "../agent/target-state.ts";
import { NOT_SENT, pushUnder } from "../connectors/http.ts";
import { canonical, connectorFor, draftsFor, pushCtx, startEconomic } from "./economic-fixtures.ts";
import { attemptHoldLost, customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let sb: StartedEconomicSandbox;
let conn: EconomicConnector;
let customer: any;
beforeAll(async () => {
  ({ sb, conn } = await startEconomic());
});
afterAll(() => sb.stop());
beforeEach(async () => {
  sb.sandbox.reset();
  customer = canonical(customerEvent(9));
  await conn.push("customer", customer, pushCtx());
});

/** A draft left at e-conomic by an earlier attempt (its answer lost), with our PSA id. */
async function strayDraft(psaId: string): Promise<void> {
  const headers = {
    "X-AppSecretToken": "demo-app-secret",
    "X-AgreementGrantToken": "demo-agreement-grant",
    "content-type": "application/json",
  };
  const res = await fetch(`${sb.restUrl}/invoices/drafts`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      date: "2026-11-20",
      currency: "NOK",
      customer: { customerNumber: 9 },
      paymentTerms: { paymentTermsNumber: 1 },
      layout: { layoutNumber: 19 },
      recipient: { name: "Customer 9", vatZone: { vatZoneNumber: 1 } },
      references: { other: psaId },
      lines: [{ lineNumber: 1, product: { productNumber: "TIME" }, description: "stray", quantity: 1, unitNetPrice: 10 }],
    }),
  });
  expect(res.status).toBe(201);
}

describe("economic orphan drafts", () => {
  test("reconciling an uncertain invoice that turns out booked removes the drafts with its PSA id", async () => {
    const inv = canonical(invoiceEvent(90001, 9));
    await conn.push("invoice", inv, pushCtx({ customer }));
    await strayDraft("PSA-INV-90001"); // e.g. a draft POST of a lost attempt that landed late
    expect(draftsFor(sb, "PSA-INV-90001")).toHaveLength(1);
    expect(await conn.push("invoice", inv, pushCtx({ customer, uncertain: true }))).toMatchObject({ remoteId: "90001" });
    expect(draftsFor(sb, "PSA-INV-90001")).toEqual([]);
    expect(sb.sandbox.state.booked.size).toBe(1);
  });

  test("a PSA resend into an empty data directory (no link, not uncertain) finds its booking and leaves no draft", async () => {
    const inv = canonical(invoiceEvent(90002, 9));
    await conn.push("invoice", inv, pushCtx({ customer }));
    // A fresh installation knows nothing: it makes a draft, the booking is refused (number used), the
    // lookup finds our own booking, and the draft it just made must not stay behind.
    expect(await conn.push("invoice", inv, pushCtx({ customer }))).toMatchObject({ remoteId: "90002" });
    expect(draftsFor(sb, "PSA-INV-90002")).toEqual([]);
    expect(sb.sandbox.state.booked.size).toBe(1);
  });

  test("after booking, a draft with the PSA id that appeared meanwhile is removed too", async () => {
    const inv = canonical(invoiceEvent(90003, 9));
    // Hold the booking request at e-conomic; while it is held (after the attempt's first cleanup), a
    // stray draft with the PSA id appears, as a late POST of a lost attempt would. A lost attempt leaves
    // the delivery uncertain until it is done, so this attempt is uncertain.
    sb.sandbox.addFault({ kind: "latency", method: "PUT", path: "^/invoices/booked/", latencyMs: 1000, count: 1 });
    const pushing = conn.push("invoice", inv, pushCtx({ customer, uncertain: true }));
    await waitFor("the booking request to arrive", () => (sb.sandbox.stats().requests.byMethod.PUT ?? 0) >= 1);
    const n = sb.sandbox.state.counters.nextDraftNumber++;
    sb.sandbox.state.drafts.set(n, {
      invoice: { draftInvoiceNumber: n, references: { other: "PSA-INV-90003" }, customer: { customerNumber: 9 }, lines: [] },
    });
    await pushing;
    expect(sb.sandbox.state.booked.get(90003)).toBeDefined();
    expect(draftsFor(sb, "PSA-INV-90003")).toEqual([]);
  });

  test("a draft made by an attempt that then fails permanently is removed in the failure path", async () => {
    const inv = canonical(
      invoiceEvent(90004, 9, undefined, { pdf: { filename: "f.pdf", contentBase64: Buffer.from("not a PDF").toString("base64") } }),
    );
    const e = await conn.push("invoice", inv, pushCtx({ customer })).catch((err) => err);
    expect(e).toMatchObject({ kind: "permanent" });
    expect(e.message).toContain("PDF");
    expect(draftsFor(sb, "PSA-INV-90004")).toEqual([]);
    expect(sb.sandbox.state.booked.size).toBe(0);
  });

  test("if that removal fails too, the attempt is uncertain and the next one removes the draft before booking a fresh one", async () => {
    const bad = canonical(
      invoiceEvent(90005, 9, undefined, { pdf: { filename: "f.pdf", contentBase64: Buffer.from("not a PDF").toString("base64") } }),
    );
    sb.sandbox.addFault({ kind: "500", method: "DELETE", path: "^/invoices/drafts/", count: 1 });
    const first = await conn.push("invoice", bad, pushCtx({ customer })).catch((err) => err);
    // Not "needs action" with a draft left behind: retried as uncertain, saying what was refused.
    expect(first).toMatchObject({ kind: "uncertain", code: "economic.draft_cleanup_pending" });
    expect(first.message).toContain("PDF");
    expect(draftsFor(sb, "PSA-INV-90005")).toHaveLength(1); // best effort failed
    const fixed = canonical(invoiceEvent(90005, 9, undefined, { pdf: { filename: "f.pdf", contentBase64: SAMPLE_PDF_BASE64 } }));
    await conn.push("invoice", fixed, pushCtx({ customer, uncertain: true }));
    expect(draftsFor(sb, "PSA-INV-90005")).toEqual([]);
    expect(sb.sandbox.state.booked.get(90005)).toBeDefined();
  });

  test("a 429 to removing a leftover draft after booking keeps its status and Retry-After: the target is paused for every worker", async () => {
    // A connector of its own: the 429 pauses its client for 2 s, which the other tests' connector must not inherit.
    const own = connectorFor(sb, {});
    const inv = canonical(invoiceEvent(90008, 9));
    await own.push("invoice", inv, pushCtx({ customer }));
    await strayDraft("PSA-INV-90008");
    sb.sandbox.addFault({ kind: "429", method: "DELETE", path: "^/invoices/drafts/", retryAfterSeconds: 2, count: 1 });
    const e = await own.push("invoice", inv, pushCtx({ customer, uncertain: true })).catch((err) => err);
    expect(e).toMatchObject({ kind: "uncertain", code: "economic.draft_cleanup_pending", status: 429, retryAfterMs: 2000 });
    // What the dispatcher makes of it: a pause of the target, stored for every worker (it was "ok" before).
    expect(signalOf(e)).toMatchObject({ kind: "throttled", retryAfterMs: 2000 });
  });

  test("a 429 to removing the draft of a permanently refused invoice keeps its status and Retry-After too", async () => {
    const bad = canonical(
      invoiceEvent(90009, 9, undefined, { pdf: { filename: "f.pdf", contentBase64: Buffer.from("not a PDF").toString("base64") } }),
    );
    const own = connectorFor(sb, {});
    sb.sandbox.addFault({ kind: "429", method: "DELETE", path: "^/invoices/drafts/", retryAfterSeconds: 2, count: 1 });
    const e = await own.push("invoice", bad, pushCtx({ customer })).catch((err) => err);
    expect(e).toMatchObject({ kind: "uncertain", code: "economic.draft_cleanup_pending", status: 429, retryAfterMs: 2000 });
    expect(e.message).toContain("PDF");
    expect(signalOf(e)).toMatchObject({ kind: "throttled", retryAfterMs: 2000 });
  });

  test("held back after its draft was sent (429 on the booking), the attempt is uncertain; the next removes that draft first", async () => {
    const inv = canonical(invoiceEvent(90007, 9));
    sb.sandbox.addFault({ kind: "429", method: "PUT", path: "^/invoices/booked/", retryAfterSeconds: 0, count: 1 });
    const first = await conn.push("invoice", inv, pushCtx({ customer })).catch((err) => err);
    expect(first).toMatchObject({ kind: "uncertain", status: 429 });
    expect(draftsFor(sb, "PSA-INV-90007")).toHaveLength(1);
    await conn.push("invoice", inv, pushCtx({ customer, uncertain: true }));
    expect(draftsFor(sb, "PSA-INV-90007")).toEqual([]);
    expect(sb.sandbox.state.booked.get(90007)).toBeDefined();
  });

  test("a draft POST answered after the client timeout leaves no orphan once the delivery finishes", async () => {
    const slow = connectorFor(sb, { request_timeout_ms: 300 });
    const inv = canonical(invoiceEvent(90006, 9));
    // The first draft POST is held 1.5 s by e-conomic: the client gives up at 300 ms, the draft lands later.
    sb.sandbox.addFault({ kind: "latency", method: "POST", path: "^/invoices/drafts$", latencyMs: 1500, count: 1 });
    const first = await attemptHoldLost(() => slow.push("invoice", inv, pushCtx({ customer }))).catch((err) => err);
    expect(first).toMatchObject({ kind: "uncertain", code: "timeout" });
    // Its hold on the late POST lost (a stop past its grace), the retry (uncertain) books at once with a draft of its
    // own, before the late one lands.
    expect(await slow.push("invoice", inv, pushCtx({ customer, uncertain: true }))).toMatchObject({ remoteId: "90006" });
    expect(sb.sandbox.state.booked.get(90006)).toBeDefined();
    // The late draft does land at e-conomic (draft numbers 1 and 2 were handed out)…
    await waitFor("the late draft POST to take effect", () => sb.sandbox.state.counters.nextDraftNumber >= 3, 10_000);
    // …and is removed when its answer arrives: nothing with the PSA id stays.
    await waitFor("no draft with the PSA id", () => draftsFor(sb, "PSA-INV-90006").length === 0, 10_000);
    expect(sb.sandbox.state.booked.size).toBe(1);
  }, 20_000);

  // A hosted worker paused between its fence and the wire sends its draft POST when it wakes, after the others declared
  // it dead and the attempt that took the delivery over looked for drafts (and booked): it hears the draft's number,
  // may send nothing more of the push (connectors/http.ts pushUnder), and must not leave that draft behind.
  const declaredDead = "worker 7 was declared dead by the others; its leases were taken back";

  test("fenced once its draft was made, the attempt books nothing and deletes that draft, which no other attempt books", async () => {
    const inv = canonical(invoiceEvent(90010, 9));
    // The fence closes once the draft is at e-conomic: the booking is the first request it holds back.
    const fence = () => (draftsFor(sb, "PSA-INV-90010").length > 0 ? declaredDead : null);
    const e = await pushUnder(fence, () => conn.push("invoice", inv, pushCtx({ customer }))).catch((err) => err);
    expect(e).toMatchObject({ kind: "uncertain", code: NOT_SENT });
    expect(e.message).toContain(`PUT /invoices/booked/90010 to e-conomic was not sent: ${declaredDead}`);
    expect(draftsFor(sb, "PSA-INV-90010")).toEqual([]);
    expect(sb.sandbox.state.booked.size).toBe(0);
  });

  test("a draft answered late to a worker fenced meanwhile is deleted all the same", async () => {
    const slow = connectorFor(sb, { request_timeout_ms: 300 });
    const inv = canonical(invoiceEvent(90011, 9));
    sb.sandbox.addFault({ kind: "latency", method: "POST", path: "^/invoices/drafts$", latencyMs: 1500, count: 1 });
    let fenced: string | null = null;
    const first = await pushUnder(
      () => fenced,
      () =>
        slow.push("invoice", inv, pushCtx({ customer })).catch((err) => {
          // Declared dead while its draft POST is still unanswered.
          fenced = declaredDead;
          throw err;
        }),
    ).catch((err) => err);
    expect(first).toMatchObject({ kind: "uncertain", code: "timeout" });
    await waitFor("the late draft POST to take effect", () => sb.sandbox.state.counters.nextDraftNumber >= 2, 10_000);
    await waitFor("no draft with the PSA id", () => draftsFor(sb, "PSA-INV-90011").length === 0, 10_000);
    expect(sb.sandbox.state.booked.size).toBe(0);
  }, 20_000);
});
