// "Where is my invoice?" in headless Chromium (Debian's package, driven by playwright-core) with JavaScript
// switched off: a person searches an invoice by its number on the status page, reads its story (events with
// what changed, every attempt with the failure and its hint), fixes the cause at the target, presses the
// retry button that names the invoice, and sees it delivered. And as plain HTML: the forms, links, captions
// and header cells that make the pages work without JavaScript and for assistive technology.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, projectEvent, waitFor } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`record page browser test skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does this)`);

const ECONOMIC_AUTH = { "X-AppSecretToken": "demo-app-secret", "X-AgreementGrantToken": "demo-agreement-grant" };

let stack: Stack;
let browser: Browser | undefined;

beforeAll(async () => {
  stack = await startStack();
  if (!haveChromium) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Someone deletes (or creates again) e-conomic's product for hours, which every hours line refers to. */
async function timeProduct(action: "delete" | "create") {
  const res =
    action === "delete"
      ? await fetch(`${stack.sandboxUrl}/products/TIME`, { method: "DELETE", headers: ECONOMIC_AUTH })
      : await fetch(`${stack.sandboxUrl}/products`, {
          method: "POST",
          headers: { ...ECONOMIC_AUTH, "content-type": "application/json" },
          body: JSON.stringify({
            productNumber: "TIME",
            name: "Hours",
            unit: { unitNumber: 2 },
            productGroup: { productGroupNumber: 1 },
            salesPrice: 1000,
          }),
        });
  expect(res.status).toBeLessThan(300);
}

/** Waits until the deliveries of these events are done. */
const delivered = (...eventIds: string[]) =>
  waitFor(`${eventIds.join(", ")} delivered`, async () => {
    const done = new Set((await stack.deliveries("done")).map((d) => d.eventId));
    return eventIds.every((id) => done.has(id));
  });

const html = async (path: string) => {
  const res = await fetch(`${stack.agent.url}${path}`, { redirect: "manual" });
  return { status: res.status, location: res.headers.get("location"), text: await res.text() };
};

describe.skipIf(!haveChromium)("the record page in a browser without JavaScript", () => {
  test("search an invoice by number, read its events and attempts, retry it by name, see it delivered", async () => {
    await timeProduct("delete");
    await stack.post([customerEvent(31), invoiceEvent(10042, 31)]);
    await waitFor("the invoice needs action", async () => (await stack.deliveries("needs_action")).some((d) => d.key === "10042"));
    // A second version of the invoice: the page shows what it changed.
    await stack.post([invoiceEvent(10042, 31, undefined, { heading: "November hours" }, "i-10042-v2")]);
    const failed = await waitFor("the second version needs action", async () =>
      (await stack.deliveries("needs_action")).find((d) => d.key === "10042" && d.eventId === "i-10042-v2"),
    );

    const context = await browser!.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(stack.agent.url);
    // The needs-action list links to the record and its button names it.
    const row = page.locator(`.problem[data-delivery="${failed.id}"]`);
    expect(await row.getByRole("link", { name: "invoice 10042" }).getAttribute("href")).toBe("/ui/records/invoice/10042");
    expect(await row.getByRole("button", { name: "Retry invoice 10042 at eco" }).count()).toBe(1);

    // By keyboard: type the number into the labelled field and press Enter; one match opens the record.
    await page.getByLabel("Number").focus();
    await page.keyboard.type("10042");
    await page.keyboard.press("Enter");
    await page.waitForURL(`${stack.agent.url}/ui/records/invoice/10042`);
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Invoice 10042");

    const events = page.getByRole("table", { name: /Every event the PSA sent for invoice 10042/ });
    expect(await events.locator('tr[data-event="i-10042"]').textContent()).toContain("First version received");
    expect(await events.locator('tr[data-event="i-10042-v2"]').textContent()).toContain('heading: added "November hours"');

    const attempts = page.getByRole("table", { name: "Every attempt to deliver invoice 10042 to eco" });
    const failures = attempts.locator('tr[data-outcome="needs_action"]');
    expect(await failures.count()).toBe(2); // one per version
    expect(await failures.last().locator(".message").textContent()).toContain("product does not exist");
    expect(await failures.last().locator(".hint").textContent()).toContain("create it in e-conomic");
    expect(await page.locator('.target-story[data-target="eco"] .state').getAttribute("data-status")).toBe("needs_action");
    await page.screenshot({ path: `${stack.dataDir}/record-before.png`, fullPage: true });

    await timeProduct("create"); // the user creates the product again in e-conomic
    const retry = page.getByRole("button", { name: "Retry invoice 10042 at eco" });
    await retry.focus();
    const loaded = page.waitForEvent("load");
    await page.keyboard.press("Enter"); // posts the retry, and is sent back to this page
    await loaded;
    expect(page.url()).toBe(`${stack.agent.url}/ui/records/invoice/10042`);
    const done = await waitFor("delivered after retry", async () => (await stack.deliveries("done")).find((d) => d.id === failed.id));
    await page.reload();
    expect(await page.locator('.target-story[data-target="eco"] .state').getAttribute("data-status")).toBe("done");
    const delivered = attempts.locator('tr[data-outcome="delivered"]');
    expect(await delivered.count()).toBe(1);
    expect(await delivered.locator("code").textContent()).toBe(done.remoteId);
    expect(await page.getByRole("button", { name: /^Retry / }).count()).toBe(0);
    expect(await page.locator(".export-status").getAttribute("data-export-status")).toBe("to_transfer");
    await page.screenshot({ path: `${stack.dataDir}/record-after.png`, fullPage: true });
    await context.close();
  });
});

describe("the record pages as plain HTML", () => {
  test("the status page's search is a labelled GET form; one match redirects, several are listed with links, none says how to search", async () => {
    await stack.post([
      customerEvent(777, {}, "c-777"),
      projectEvent(777, 777, {}, "p-777"),
      customerEvent(101, {}, "c-101"),
      invoiceEvent(20001, 101, undefined, {}, "i-20001"),
    ]);
    const status = await html("/");
    expect(status.text).toContain('<form method="get" action="/ui/records" role="search"');
    expect(status.text).toContain('<label for="record-number">Number</label>');
    expect(status.text).toContain('id="record-number" name="number"');

    const one = await html("/ui/records?number=0101"); // leading zeros do not matter
    expect(one.status).toBe(303);
    expect(one.location).toBe("/ui/records/customer/101");
    expect((await html("/ui/records?number=PSA-INV-20001")).location).toBe("/ui/records/invoice/20001"); // an invoice by its PSA id

    const two = await html("/ui/records?number=777");
    expect(two.status).toBe(200);
    expect(two.text).toContain('<caption>2 records match "777"</caption>');
    expect(two.text).toContain('<a href="/ui/records/customer/777">customer 777</a>');
    expect(two.text).toContain('<a href="/ui/records/project/777">project 777</a>');
    expect((await html("/ui/records?number=777&kind=project")).location).toBe("/ui/records/project/777");

    // A credit note is found and named as one, and links to the invoice it credits.
    const credit = invoiceEvent(5001, 101, undefined, { psaId: "PSA-CN-5001", creditedInvoiceNumber: 20001 }, "cn-5001");
    expect((await stack.post([{ ...credit, type: "invoice.credited" }])).status).toBeLessThan(300);
    expect((await html("/ui/records?number=5001&kind=credit_note")).location).toBe("/ui/records/invoice/5001");
    expect((await html("/ui/records?number=5001&kind=invoice")).text).toContain("Nothing numbered 5001");
    const creditPage = await html("/ui/records/invoice/5001");
    expect(creditPage.text).toContain("<h1>Credit note 5001</h1>");
    expect(creditPage.text).toContain('<a href="/ui/records/invoice/20001">invoice 20001 (credited)</a>');

    const none = await html("/ui/records?number=424242");
    expect(none.status).toBe(200);
    expect(none.text).toContain("Nothing numbered 424242");
    expect(none.text).toContain("Kind set to Any");
    expect(none.text).toContain('action="/ui/records"');
    const empty = await html("/ui/records?number=");
    expect(empty.status).toBe(400);
    expect(empty.text).toContain("Type a number");
  });

  test("an unknown record is a 404 page that says what was not found and offers the search", async () => {
    const missing = await html("/ui/records/invoice/99999");
    expect(missing.status).toBe(404);
    expect(missing.text).toContain("<h1>No invoice or credit note 99999</h1>");
    expect(missing.text).toContain('value="99999"'); // the search, filled in
    const kind = await html("/ui/records/order/1");
    expect(kind.status).toBe(404);
    expect(kind.text).toContain('no records of the kind "order"');
    expect(kind.text).toContain('action="/ui/records"');
  });

  test("a record page: tables with captions and header cells, labelled fields, and retry as a POST form that comes back to the page", async () => {
    // The earlier tests' pushes have ended, so the one 503 below meets customer 4711's create and no other.
    await waitFor(
      "no push under way",
      async () => (await stack.deliveries("pending")).length + (await stack.deliveries("in_flight")).length === 0,
    );
    await stack.addFaults({ method: "POST", path: "^/customers$", kind: "503", count: 1 });
    await stack.post([customerEvent(4711, {}, "c-4711-a")]);
    await delivered("c-4711-a");
    await stack.post([customerEvent(4711, { name: "Renamed AS" }, "c-4711-b")]);
    await delivered("c-4711-b");
    const page = await html("/ui/records/customer/4711");
    expect(page.status).toBe(200);
    const tables = page.text.match(/<table[\s\S]*?<\/table>/g) ?? [];
    expect(tables.length).toBeGreaterThanOrEqual(3); // attempts, deliveries, events
    for (const t of tables) {
      expect(t).toMatch(/<caption>[^<]+/);
      expect(t).not.toMatch(/<th(?=[\s>])(?![^>]*scope=)/); // every header cell says what it heads
    }
    for (const id of page.text.matchAll(/<(?:input|select)(?![^>]*type="hidden")[^>]*id="([^"]+)"/g))
      expect(page.text).toContain(`<label for="${id[1]}">`);
    // The 503 was an attempt of its own, retried by itself; then delivered, once per version.
    expect(page.text).toMatch(
      /data-outcome="retry"[\s\S]*Service unavailable[\s\S]*data-outcome="delivered"[\s\S]*data-outcome="delivered"/,
    );
    expect(page.text).toContain("<code>name</code>: &quot;Customer 4711&quot; → &quot;Renamed AS&quot;");

    // The retry form posts to the delivery and brings the browser back to the record page it came from; a
    // return address anywhere else is not followed.
    const back = async (value: string) =>
      (
        await fetch(`${stack.agent.url}/ui/deliveries/1/retry`, {
          method: "POST",
          body: new URLSearchParams({ back: value }),
          redirect: "manual",
        })
      ).headers.get("location");
    expect(await back("/ui/records/customer/4711")).toBe("/ui/records/customer/4711");
    expect(await back("https://evil.example/")).toBe("/");
    expect(await back("//evil.example/ui/records/customer/1")).toBe("/");
  });
});
