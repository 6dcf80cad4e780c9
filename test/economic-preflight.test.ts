// Issue 10, items 12 and 14 (e-conomic): limits of the draft invoice schema caught before sending, at the
// record and PSA field the user must change; the 9.0 MB PDF rule counts decoded bytes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { EconomicConnector } from "../connectors/economic/connector.ts";
import { invoiceRules, MAX_PDF_BYTES } from "../connectors/economic/invoice-rules.ts";
import type { StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { startStack } from "./e2e-harness.ts";
import { canonical, connectorFor, pushCtx, startEconomic } from "./economic-fixtures.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

let sb: StartedEconomicSandbox;
let conn: EconomicConnector;
beforeAll(async () => {
  ({ sb, conn } = await startEconomic());
});
afterAll(() => sb.stop());

const customer101 = (over: Record<string, unknown> = {}) => canonical(customerEvent(101, over));
const related = (customer: unknown) => (entity: string, key: string) => (entity === "customer" && key === "101" ? customer : null);
const invoice = (n: number, over: Record<string, unknown> = {}) => canonical(invoiceEvent(n, 101, undefined, over));

describe("economic pre-flight", () => {
  test("a customer name that fits an e-conomic customer (255) but not an invoice recipient (250) is the customer's to fix", () => {
    const c = customer101({ name: "N".repeat(253) });
    expect(conn.validate("customer", c)).toEqual([]);
    const problems = conn.validate("invoice", invoice(93001), related(c));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({
      code: "economic.recipient_too_long",
      record: { entity: "customer", key: "101" },
      field: "customer 101: name",
    });
    expect(problems[0]!.message).toContain("253 characters");
    expect(problems[0]!.hint).toContain("customer 101: name");
    expect(JSON.stringify(problems[0])).not.toContain("recipient.name");
  });

  test("a street address too long for the recipient names the customer's address the invoice uses", () => {
    const c = customer101({
      addresses: [
        { kind: "visit", street: "short" },
        { kind: "invoice", street: "S".repeat(300), zip: "1000", city: "Oslo", country: "NO" },
      ],
    });
    expect(conn.validate("customer", c)).toEqual([]);
    const [p] = conn.validate("invoice", invoice(93002), related(c));
    expect(p).toMatchObject({ record: { entity: "customer", key: "101" }, field: "customer 101: addresses.1.street" });
    expect(p!.message).toContain("street address of customer 101 is 300 characters");
  });

  test("more than 2 decimals: the hint names the number (quantity) and the line", () => {
    const inv = invoice(93003, {
      lines: [
        { text: "Hours", quantity: 2, unitPrice: 1000, kind: "hours" },
        { text: "Travel", quantity: 1.255, unitPrice: 100, kind: "expenses" },
      ],
    });
    const [p] = conn.validate("invoice", inv, related(customer101()));
    expect(p).toMatchObject({ code: "economic.too_many_decimals", field: "lines.1.quantity" });
    expect(p!.message).toContain('Line 2 ("Travel"): the quantity 1.255 has 3 decimals');
    expect(p!.hint).toContain("quantity of line 2");
    expect(p!.record).toBeUndefined(); // the invoice itself must change
  });

  test("at the limits the sandbox (e-conomic's own schema) accepts what pre-flight lets through, and refuses one more", async () => {
    const ok = customer101({
      name: "N".repeat(250),
      addresses: [{ street: "S".repeat(250), zip: "1000", city: "C".repeat(50), country: "DK" }],
    });
    const inv = invoice(93004, { lines: [{ text: "Hours", quantity: 1.25, unitPrice: 100, kind: "hours" }] });
    expect(conn.validate("invoice", inv, related(ok))).toEqual([]);
    await conn.push("customer", ok, pushCtx());
    await conn.push("invoice", inv, pushCtx({ customer: ok }));
    expect(sb.sandbox.state.booked.get(93004)!.invoice.recipient.name).toHaveLength(250);
    // Without pre-flight, one character more is refused by e-conomic, in e-conomic's words (recipient.name).
    const long = { ...ok, name: "N".repeat(251) };
    expect(conn.validate("invoice", invoice(93005), related(long))).toHaveLength(1);
    const refused = await conn.push("invoice", invoice(93005), pushCtx({ customer: long })).catch((e) => e);
    expect(refused).toMatchObject({ kind: "permanent", field: "recipient.name" });
  });

  test("invoices and credit notes within the limits pass; the schema backstop finds no fault in them", () => {
    const c = customer101();
    const cn = canonical({
      ...invoiceEvent(93006, 101),
      type: "invoice.credited",
      data: { ...invoiceEvent(93006, 101).data, creditedInvoiceNumber: 93001 },
    });
    expect(
      conn.validate(
        "invoice",
        invoice(93007, { ourReference: "R".repeat(250), yourReference: "Y".repeat(250), heading: "H".repeat(250) }),
        related(c),
      ),
    ).toEqual([]);
    expect(conn.validate("invoice", cn, related(c))).toEqual([]);
    expect(conn.validate("invoice", invoice(93008), () => null)).toEqual([]); // customer not received yet: nothing to say about it
  });

  test("a limit the named rules do not cover is still caught from the draft schema, with the PSA's field", () => {
    const odd = { ...invoice(93009), currency: "NO" }; // not a payload the model makes; the backstop sees it anyway
    const [p] = conn.validate("invoice", odd, related(customer101()));
    expect(p).toMatchObject({ code: "economic.draft_refused", field: "currency" });
    expect(p!.message).toContain("would refuse the invoice");
  });

  test("through the agent: the invoice needs action and the message names the customer, not the recipient", async () => {
    const stack = await startStack();
    try {
      await stack.post([customerEvent(101, { name: "N".repeat(253) }), invoiceEvent(93010, 101)]);
      const d = await waitFor("invoice needs action", async () =>
        (await stack.deliveries("needs_action")).find((x) => x.entity === "invoice"),
      );
      expect(d.errorCode).toBe("economic.recipient_too_long");
      expect(d.errorMessage).toContain("customer 101");
      expect(d.errorHint).toContain("customer 101: name");
      expect((await stack.sandboxState()).drafts).toEqual([]); // caught before sending anything
    } finally {
      await stack.stop();
    }
  });
});

describe("a line's VAT code (e-conomic books the product group's sales account VAT)", () => {
  const dk = { addresses: [{ street: "Strandvejen 1", zip: "2100", city: "København", country: "DK" }] };
  const line = (text: string, kind: string, vatCode: string) => ({ text, quantity: 1, unitPrice: 100000, kind, vatCode });
  const lookups = async (url: string) => {
    const { families } = (await (await fetch(`${url}/__sandbox/requests`)).json()) as any;
    return Object.entries(families as Record<string, { requests: number }>)
      .filter(([f]) => f.startsWith("GET /products/") || f.includes("sales-accounts"))
      .map(([f, c]) => `${f} ${c.requests}`)
      .sort();
  };

  test("a code the product group books goes through (looked up once per product and group); another needs action, naming both", async () => {
    const stack = await startStack();
    try {
      await stack.post([
        customerEvent(101, dk),
        invoiceEvent(93020, 101, undefined, { lines: [line("Consulting", "hours", "U25")] }),
        invoiceEvent(93021, 101, undefined, { lines: [line("Consulting", "hours", "u25")] }),
      ]);
      await stack.waitDelivered(3);
      expect(await lookups(stack.sandboxUrl)).toEqual(["GET /product-groups/{id}/sales-accounts 1", "GET /products/TIME 1"]);

      await stack.post([
        invoiceEvent(93022, 101, undefined, { lines: [line("Consulting", "hours", "U25"), line("Course fee", "expenses", "0")] }),
      ]);
      const d = await waitFor("invoice needs action", async () =>
        (await stack.deliveries("needs_action")).find((x) => x.entity === "invoice"),
      );
      expect(d.errorCode).toBe("economic.line_vat_code");
      expect(d.errorMessage).toContain('Invoice 93022, line 2 ("Course fee") carries VAT code 0');
      expect(d.errorMessage).toContain("product EXPENSE's group 1: sales account 1010 for VAT zone 1, VAT code U25");
      expect(d.errorHint).toContain("product group books VAT code 0");
      expect(d.errorHint).toContain('line_vat_code = "ignore"');
      expect((await stack.sandboxState()).drafts).toEqual([]); // nothing sent
    } finally {
      await stack.stop();
    }
  });

  test('a customer abroad is booked without VAT: a line saying U25 needs action; with line_vat_code = "ignore" it is booked', async () => {
    const stack = await startStack();
    try {
      await stack.post([customerEvent(101), invoiceEvent(93023, 101, undefined, { lines: [line("Consulting", "hours", "U25")] })]);
      const d = await waitFor("invoice needs action", async () =>
        (await stack.deliveries("needs_action")).find((x) => x.entity === "invoice"),
      );
      expect(d.errorMessage).toContain("sales account 1020 for VAT zone 3, without VAT");
    } finally {
      await stack.stop();
    }
    const ignoring = await startStack({ economic: { line_vat_code: "ignore" } });
    try {
      await ignoring.post([customerEvent(101), invoiceEvent(93024, 101, undefined, { lines: [line("Consulting", "hours", "U25")] })]);
      await ignoring.waitDelivered(2);
      expect((await ignoring.sandboxState()).booked.map((b: any) => b.bookedInvoiceNumber ?? b.number)).toEqual([93024]);
    } finally {
      await ignoring.stop();
    }
  });
});

describe("a line's account (e-conomic books the product group's sales account)", () => {
  const dk = { addresses: [{ street: "Strandvejen 1", zip: "2100", city: "København", country: "DK" }] };
  const line = (text: string, kind: string, account: string) => ({ text, quantity: 1, unitPrice: 100000, kind, account });

  test("the account the product group books goes through; another needs action naming the account e-conomic books", async () => {
    const stack = await startStack();
    try {
      await stack.post([customerEvent(101, dk), invoiceEvent(93030, 101, undefined, { lines: [line("Consulting", "hours", "1010")] })]);
      await stack.waitDelivered(2);
      await stack.post([
        invoiceEvent(93031, 101, undefined, { lines: [line("Consulting", "hours", "1010"), line("Licence", "products", "3010")] }),
      ]);
      const d = await waitFor("invoice needs action", async () =>
        (await stack.deliveries("needs_action")).find((x) => x.entity === "invoice"),
      );
      expect(d.errorCode).toBe("economic.line_account");
      expect(d.errorMessage).toContain('Invoice 93031, line 2 ("Licence") carries account 3010, but a line has no account of its own');
      expect(d.errorMessage).toContain("product PRODUCT's group 1: sales account 1010 for VAT zone 1");
      expect(d.errorHint).toContain("product group books on sales account 3010");
      expect(d.errorHint).toContain('line_account = "ignore"');
      expect((await stack.sandboxState()).booked.map((b: any) => b.bookedInvoiceNumber ?? b.number)).toEqual([93030]);
      expect((await stack.sandboxState()).drafts).toEqual([]); // nothing sent
    } finally {
      await stack.stop();
    }
  });

  test('with line_account = "ignore" the operator accepts the product group\'s account: the invoice is booked', async () => {
    const stack = await startStack({ economic: { line_account: "ignore" } });
    try {
      await stack.post([customerEvent(101, dk), invoiceEvent(93032, 101, undefined, { lines: [line("Licence", "products", "3010")] })]);
      await stack.waitDelivered(2);
      expect((await stack.sandboxState()).booked.map((b: any) => b.bookedInvoiceNumber ?? b.number)).toEqual([93032]);
    } finally {
      await stack.stop();
    }
  });
});

/** A PDF of exactly `bytes` bytes, base64 wrapped at 76 characters per line as MIME does. */
function wrappedPdf(bytes: number): string {
  const head = "%PDF-1.4\n",
    tail = "\n%%EOF\n";
  const body = Buffer.concat([Buffer.from(head), Buffer.alloc(bytes - head.length - tail.length, 0x20), Buffer.from(tail)]);
  return body.toString("base64").replace(/.{76}/g, "$&\r\n");
}

describe("economic PDF size", () => {
  test("a line-wrapped base64 PDF under 9 MB passes pre-flight and is attached; one byte over is refused", async () => {
    const under = wrappedPdf(MAX_PDF_BYTES - 1024);
    expect(under.length).toBeGreaterThan(Math.ceil((MAX_PDF_BYTES * 4) / 3)); // the old rule counted characters
    const inv = invoice(93101, { pdf: { filename: "big.pdf", contentBase64: under } });
    const c = customer101();
    expect(invoiceRules(inv, related(c)).map((p) => p.code)).toEqual([]);
    await conn.push("customer", c, pushCtx());
    await conn.push("invoice", inv, pushCtx({ customer: c }));
    expect(sb.sandbox.state.booked.get(93101)!.attachment?.size).toBe(MAX_PDF_BYTES - 1024);

    const over = invoiceRules(invoice(93102, { pdf: { filename: "big.pdf", contentBase64: wrappedPdf(MAX_PDF_BYTES + 1) } }), related(c));
    expect(over).toHaveLength(1);
    expect(over[0]).toMatchObject({ code: "economic.pdf_too_large", field: "pdf" });
    expect(over[0]!.message).toContain("at most 9,000,000 bytes (9.0 MB)");
  }, 20_000);

  test("a PDF between 9,000,000 bytes and 9 × 1024 × 1024 (the notes' 9.0 MB read both ways) needs action before any draft, naming the limit in bytes", () => {
    const c = customer101();
    const between = invoiceRules(invoice(93104, { pdf: { filename: "big.pdf", contentBase64: wrappedPdf(9_200_000) } }), related(c));
    expect(between.map((p) => [p.code, p.field])).toEqual([["economic.pdf_too_large", "pdf"]]);
    expect(between[0]!.message).toBe("The invoice PDF is 9,200,000 bytes; e-conomic accepts at most 9,000,000 bytes (9.0 MB).");
    expect(invoiceRules(invoice(93105, { pdf: { filename: "ok.pdf", contentBase64: wrappedPdf(9_000_000) } }), related(c))).toEqual([]);
  });

  test("a PSA 'PDF' that is not one (not %PDF- first) needs action before any draft, naming its first bytes; with attach_pdf = false neither PDF rule applies", () => {
    const png = invoice(93103, {
      pdf: { filename: "scan.pdf", contentBase64: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).toString("base64") },
    });
    const c = customer101();
    const problems = conn.validate("invoice", png, related(c));
    expect(problems.map((p) => [p.code, p.field])).toEqual([["economic.pdf_not_pdf", "pdf"]]);
    expect(problems[0]!.message).toBe(
      'The invoice PDF scan.pdf is not a PDF file: it begins with "?PNG?", not "%PDF-"; e-conomic attaches only PDF files.',
    );
    expect(problems[0]!.hint).toContain("attach_pdf = false");
    // Line-wrapped from its first characters, a PDF is still one.
    const wrapped = Buffer.from("%PDF-1.7\n%%EOF\n").toString("base64").replace(/.{4}/g, "$&\r\n");
    expect(conn.validate("invoice", invoice(93104, { pdf: { filename: "ok.pdf", contentBase64: wrapped } }), related(c))).toEqual([]);
    // Not sent, so not refused: the hint's way out works.
    const off = connectorFor(sb, { attach_pdf: false });
    const huge = invoice(93105, { pdf: { filename: "big.pdf", contentBase64: Buffer.alloc(MAX_PDF_BYTES + 3, "x").toString("base64") } });
    expect(off.validate("invoice", png, related(c))).toEqual([]);
    expect(off.validate("invoice", huge, related(c))).toEqual([]);
  });
});
