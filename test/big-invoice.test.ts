// A year of hours on one invoice, through the real agent to the e-conomic sandbox over loopback: 1,000 lines of long
// texts (Sámi and emoji), a PDF at e-conomic's 9.0 MB (9,000,000 bytes) and a 15 MB scan over it, and a body over http.max_body_bytes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ dispatch: {} });
});
afterAll(async () => {
  await stack.stop();
});

const MB = 1024 * 1024;
const ECONOMIC_AUTH = { "X-AppSecretToken": "demo-app-secret", "X-AgreementGrantToken": "demo-agreement-grant" };
/** A base64 "PDF" of `bytes` decoded bytes. */
const pdfOf = (bytes: number) => ({ filename: "year.pdf", contentBase64: Buffer.alloc(bytes, "%PDF-1.4 /Type /Page ").toString("base64") });
/** 2,500 characters (the model's and e-conomic's limit for a line text): Northern Sámi and an emoji. */
const longText = (i: number) => `Linje ${i}: Čáhcesuolu ŋ ŧ đ š ž 🧾 `.padEnd(2500, "á");
const yearOfLines = () => Array.from({ length: 1000 }, (_, i) => ({ text: longText(i), quantity: 7.5, unitPrice: 1000, kind: "hours" }));

describe("a 1,000-line invoice with a big PDF", () => {
  test("1,000 lines of 2,500 characters with a 9.0 MB PDF: taken in and booked whole, every line's text as sent", async () => {
    const customer = customerEvent(77001, { name: "Sámediggi Čáhcesuolu 🧾 AS" });
    const inv = invoiceEvent(88001, 77001, undefined, { lines: yearOfLines(), pdf: pdfOf(9_000_000) });
    const body = JSON.stringify([customer, inv]);
    expect(body.length).toBeLessThan(32 * MB);
    const res = await stack.post(body);
    expect(res.status).toBe(202);
    const done = await waitFor(
      "the invoice booked",
      async () => (await stack.deliveries("done")).find((d: any) => d.key === "88001"),
      60_000,
    );
    expect(done.remoteId).toBeTruthy();
    const booked: any = await (await fetch(`${stack.sandboxUrl}/invoices/booked/88001`, { headers: ECONOMIC_AUTH })).json();
    expect(booked.lines).toHaveLength(1000);
    expect(booked.lines[999].description).toBe(longText(999));
  }, 90_000);

  test("a 15 MB scanned PDF, over e-conomic's 9.0 MB: taken in, then needs action before any draft is made, naming the size", async () => {
    const draftsBefore = (await stack.sandboxState()).counts.drafts;
    const res = await stack.post([invoiceEvent(88002, 77001, undefined, { lines: yearOfLines(), pdf: pdfOf(15 * MB) })]);
    expect(res.status).toBe(202);
    const failed = await waitFor(
      "the invoice needs action",
      async () => (await stack.deliveries("needs_action")).find((d: any) => d.key === "88002"),
      30_000,
    );
    expect(failed).toMatchObject({ errorCode: "economic.pdf_too_large", errorField: "pdf" });
    expect(failed.errorMessage).toContain("e-conomic accepts at most 9,000,000 bytes (9.0 MB)");
    expect((await stack.sandboxState()).counts.drafts).toBe(draftsBefore);
  }, 60_000);

  test("a file e-conomic would refuse only after the draft is made (not a PDF): needs action before any draft, naming its first bytes", async () => {
    const notPdf = { filename: "scan.pdf", contentBase64: Buffer.from("\x89PNG\r\n not a pdf").toString("base64") };
    const postsBefore = (await stack.sandboxState()).requests.byMethod.POST ?? 0;
    expect((await stack.post([invoiceEvent(88004, 77001, undefined, { lines: yearOfLines(), pdf: notPdf })])).status).toBe(202);
    const failed = await waitFor(
      "the invoice needs action",
      async () => (await stack.deliveries("needs_action")).find((d: any) => d.key === "88004"),
      30_000,
    );
    expect(failed).toMatchObject({ errorCode: "economic.pdf_not_pdf", errorField: "pdf" });
    expect(failed.errorMessage).toContain('scan.pdf is not a PDF file: it begins with "??PNG"');
    const state = await stack.sandboxState();
    expect(state.requests.byMethod.POST ?? 0).toBe(postsBefore); // no draft was made (and deleted)
    const counts = state.counts;
    expect(counts.drafts).toBe(0);
    expect((await fetch(`${stack.sandboxUrl}/invoices/booked/88004`, { headers: ECONOMIC_AUTH })).status).toBe(404);
  }, 60_000);

  test("one invoice whose PDF makes the body larger than http.max_body_bytes: 413 that says the PDF is too large for one request", async () => {
    const res = await stack.post([invoiceEvent(88003, 77001, undefined, { pdf: pdfOf(25 * MB) })]);
    expect(res.status).toBe(413);
    expect(res.body.message).toContain("33554432 bytes");
    expect(res.body.hint).toContain("PDF");
  }, 60_000);
});
