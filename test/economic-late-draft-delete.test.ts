// Found by the chaos run (issue 10 proof): a draft POST answered after the client timeout is deleted when
// its answer comes, but that DELETE was tried once (a 503 on it left the draft), and an answer that broke
// off after the commit left it too (its number never heard). Either way the draft stayed at e-conomic with
// the PSA's id for good: the delivery was done by then, so nothing else would look for it.
// The first attempt here loses its hold on the late POST (attemptHoldLost: a stop past its grace), so the next attempt
// books beside it, as before every write of a push was waited for (connectors/http.ts).
import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import type { EconomicConnector } from "../connectors/economic/connector.ts";
import type { StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { canonical, connectorFor, draftsFor, pushCtx, startEconomic } from "./economic-fixtures.ts";
import { attemptHoldLost, customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let sb: StartedEconomicSandbox;
let conn: EconomicConnector;
beforeAll(async () => {
  ({ sb, conn } = await startEconomic());
});
afterAll(() => sb.stop());
beforeEach(() => sb.sandbox.reset());

test("a late draft is removed even when e-conomic refuses the first DELETE with a 503", async () => {
  const customer = canonical(customerEvent(9));
  await conn.push("customer", customer, pushCtx());
  const slow = connectorFor(sb, { request_timeout_ms: 300 });
  const inv = canonical(invoiceEvent(90106, 9));
  sb.sandbox.addFault({ kind: "latency", method: "POST", path: "^/invoices/drafts$", latencyMs: 1500, count: 1 });
  const first = await attemptHoldLost(() => slow.push("invoice", inv, pushCtx({ customer }))).catch((err) => err);
  expect(first).toMatchObject({ kind: "uncertain", code: "timeout" });
  expect(await slow.push("invoice", inv, pushCtx({ customer, uncertain: true }))).toMatchObject({ remoteId: "90106" });
  // The booking attempt's own cleanup is done; the next DELETE is the late draft's, and it fails once.
  sb.sandbox.addFault({ kind: "503", method: "DELETE", path: "^/invoices/drafts/", retryAfterSeconds: 0, count: 1 });
  await waitFor("the late draft POST to take effect", () => sb.sandbox.state.counters.nextDraftNumber >= 3, 10_000);
  await waitFor("the DELETE refused once", () => sb.sandbox.stats().faults["503"] === 1, 10_000);
  await waitFor("no draft with the PSA id", () => draftsFor(sb, "PSA-INV-90106").length === 0, 10_000);
  expect(sb.sandbox.state.booked.size).toBe(1);
}, 20_000);

test("a late draft whose answer breaks off (reset after the commit) is removed once the invoice is booked", async () => {
  const customer = canonical(customerEvent(9));
  await conn.push("customer", customer, pushCtx());
  const slow = connectorFor(sb, { request_timeout_ms: 300 });
  const inv = canonical(invoiceEvent(90107, 9));
  // The draft POST is held 1.5 s, then e-conomic commits it and the connection breaks: its number is never heard.
  sb.sandbox.addFault({ kind: "latency", method: "POST", path: "^/invoices/drafts$", latencyMs: 1500, count: 1 });
  sb.sandbox.addFault({ kind: "drop_after_commit", method: "POST", path: "^/invoices/drafts$", count: 1 });
  const first = await attemptHoldLost(() => slow.push("invoice", inv, pushCtx({ customer }))).catch((err) => err);
  expect(first).toMatchObject({ kind: "uncertain", code: "timeout" });
  expect(await slow.push("invoice", inv, pushCtx({ customer, uncertain: true }))).toMatchObject({ remoteId: "90107" });
  await waitFor("the late draft POST to take effect", () => sb.sandbox.state.counters.nextDraftNumber >= 3, 10_000);
  await waitFor("no draft with the PSA id", () => draftsFor(sb, "PSA-INV-90107").length === 0, 10_000);
  expect(sb.sandbox.state.booked.size).toBe(1);
}, 20_000);
