// Usable by everyone (issue 15, item 5), in headless Chromium (Debian's package, driven by playwright-core) against a
// real stack whose every section has something in it: a delivered invoice, one needing action with its hint, a
// record waiting for another, an export file, expenses pulled into the inbox, an alert mail in the demo mailbox.
// axe-core (the standard engine for automated accessibility checks) runs in each page: the status page, record
// pages, the search results and the demo mailbox; any violation of impact "serious" or "critical" fails the test.
// Then the status page's forms with JavaScript switched off (search, retry, export, pull now), and by keyboard.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { DEMO_EXPORTS, DEMO_NOTIFICATIONS } from "../agent/demo.ts";
import { DemoMailbox } from "../agent/notify/demo-mailbox.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`accessibility browser test skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does this)`);

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const TOKEN = "test-token-0123456789";
const ECONOMIC_AUTH = { "X-AppSecretToken": "demo-app-secret", "X-AgreementGrantToken": "demo-agreement-grant" };
/** Screenshots of every page checked, for a person to look at. */
const SHOTS = process.env.KONTOBRO_SCREENSHOTS ?? tempDir("kontobro-a11y-shots-");

let stack: Stack;
let browser: Browser;
const mailbox = new DemoMailbox();
let failedId: number;

const api = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(`${stack.agent.url}${path}`, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...init.headers } });
  return { status: res.status, body: (await res.json()) as any };
};

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

const delivered = (...eventIds: string[]) =>
  waitFor(`${eventIds.join(", ")} delivered`, async () => {
    const done = new Set((await stack.deliveries("done")).map((d) => d.eventId));
    return eventIds.every((id) => done.has(id));
  });

beforeAll(async () => {
  if (!haveChromium) return;
  stack = await startStack({
    economic: { expenses: { accounts: "2800", cost_types: "1", activity: "Udlæg", billable: true } },
    sections: { exports: DEMO_EXPORTS, notifications: { ...DEMO_NOTIFICATIONS, check_interval_seconds: 1 } },
    extras: { mailbox },
  });
  // Delivered: customers, a project and an invoice (customer 4711 and project 4711: a search with two results).
  await stack.post([
    customerEvent(31, {}, "c-31"),
    customerEvent(4711, {}, "c-4711"),
    projectEvent(4711, 31, {}, "p-4711"),
    invoiceEvent(10041, 31, 4711),
  ]);
  await delivered("c-31", "c-4711", "p-4711", "i-10041");
  // Needs action, with a hint: the product for hours is gone at e-conomic.
  await timeProduct("delete");
  await stack.post([invoiceEvent(10042, 31)]);
  failedId = (await waitFor("invoice 10042 needs action", async () =>
    (await stack.deliveries("needs_action")).find((d) => d.key === "10042"),
  ))!.id;
  // Waiting: a project whose customer the PSA has not sent.
  await stack.post([projectEvent(4800, 999, {}, "p-4800")]);
  await waitFor("project 4800 waits for its customer", async () => (await stack.deliveries("waiting")).some((d) => d.key === "4800"));
  // Pulled: supplier expenses booked on project 4711 (one on a project kontobro does not know).
  const book = await fetch(`${stack.sandboxUrl}/__sandbox/book/supplier-invoices`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      vouchers: [
        {
          date: today(),
          supplierNumber: 1,
          supplierInvoiceNumber: "F-100",
          text: "Cement",
          lines: [{ account: 2800, amount: 1250, vatCode: "I25", projectNumber: 4711, costTypeNumber: 1 }],
        },
        {
          date: today(),
          supplierNumber: 2,
          text: "Unknown project",
          lines: [{ account: 2800, amount: 500, vatCode: "I25", projectNumber: 9999, costTypeNumber: 1 }],
        },
      ],
    }),
  });
  expect(book.status).toBe(201);
  expect((await api("/api/v1/pulls/eco/expenses", { method: "POST" })).body).toMatchObject({ status: "ok", imported: 1, ignored: 1 });
  // Exported: a SIE 4 file, through the status page's form as a browser posts it.
  const exported = await fetch(`${stack.agent.url}/ui/exports/run`, { method: "POST", body: new URLSearchParams({ what: "sie4" }) });
  expect(exported.status).toBe(200);
  // An alert mail about the invoice that needs action.
  await waitFor("an alert mail", () => mailbox.size > 0);

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
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

function today() {
  return new Date().toISOString().slice(0, 10);
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/** axe-core's violations on the page as it is now. */
async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const result = await (globalThis as any).axe.run((globalThis as any).document, { resultTypes: ["violations"] });
    return result.violations.map((v: any) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n: any) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
}

const describeViolation = (v: AxeViolation) =>
  `${v.impact} ${v.id}: ${v.help} (${v.helpUrl})\n${v.nodes.map((n) => `    ${n.target.join(" ")}${n.failureSummary ? `: ${n.failureSummary.replace(/\s+/g, " ")}` : ""}`).join("\n")}`;

/** The page as it is now: every violation printed, the serious and critical ones returned ("where: rule"). */
async function check(page: Page, where: string): Promise<string[]> {
  const violations = await axeViolations(page);
  for (const v of violations) console.log(`axe on ${where}: ${describeViolation(v)}`);
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${where}: ${v.id}`);
}

/** Opens `path`, saves a screenshot as `name`.png and checks it. */
async function audit(page: Page, path: string, name: string): Promise<string[]> {
  const res = await page.goto(`${stack.agent.url}${path}`);
  expect(res?.status()).toBeLessThan(500);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  return check(page, path);
}

describe.skipIf(!haveChromium)("accessibility in a browser", () => {
  test("axe-core finds no serious or critical violation on the status page, record pages, search results and the demo mailbox", async () => {
    const page = await browser.newPage();
    const found: string[] = [];
    // Every section of the status page has content; ?refresh=0 keeps it still while axe reads it.
    found.push(...(await audit(page, "/?refresh=0", "status-page")));
    expect(await page.locator(`.problem[data-delivery="${failedId}"] .hint`).count()).toBe(1);
    expect(await page.locator('[data-status="waiting"]').first().textContent()).toBe("1");
    expect(await page.locator("table.export-files tbody tr").count()).toBeGreaterThan(0);
    // The inbox rows are told by time and entry, not by the clock-based seq or the hash-based feed id.
    expect(await page.locator("table.inbox tbody th").allTextContents()).toEqual([
      expect.stringMatching(/^entry:/),
      expect.stringMatching(/^entry:/),
    ]);
    expect(await page.locator("table.inbox tbody").textContent()).not.toMatch(/\d{9,}/);
    expect(await page.locator('svg.chart[data-chart="deliveries"]').count()).toBeGreaterThan(0);
    // With every table of numbers open, as someone reading them.
    await page.evaluate(() => {
      for (const d of (globalThis as any).document.querySelectorAll("details")) d.open = true;
    });
    found.push(...(await check(page, "/ with the tables of numbers open")));
    await page.screenshot({ path: join(SHOTS, "status-page-charts.png"), fullPage: true });
    await page.locator('section.target[data-target="eco"] .charts').screenshot({ path: join(SHOTS, "charts.png") });

    // The export form's result page (every invoice is exported already: it says so, with a hint).
    await page.getByRole("button", { name: "Export invoices to transfer as SIE 4" }).click();
    await page.waitForURL(`${stack.agent.url}/ui/exports/run`);
    await page.screenshot({ path: join(SHOTS, "export-refused.png"), fullPage: true });
    found.push(...(await check(page, "the export's result page")));

    found.push(...(await audit(page, "/ui/records/invoice/10042", "record-invoice-needs-action")));
    found.push(...(await audit(page, "/ui/records/invoice/10041", "record-invoice-delivered")));
    found.push(...(await audit(page, "/ui/records/project/4711", "record-project-expenses")));
    found.push(...(await audit(page, "/ui/records/project/4800", "record-project-waiting")));
    found.push(...(await audit(page, "/ui/records?number=4711", "search-results")));
    expect(await page.locator("table.results tbody tr").count()).toBe(2);
    found.push(...(await audit(page, "/ui/records?number=424242", "search-nothing")));
    found.push(...(await audit(page, "/ui/records?number=", "search-empty")));
    found.push(...(await audit(page, "/ui/records/invoice/99999", "record-missing")));
    found.push(...(await audit(page, "/ui/demo/mail", "demo-mailbox")));
    found.push(...(await audit(page, `/ui/demo/mail/${mailbox.list()[0]!.id}`, "demo-mail")));
    console.log(`screenshots in ${SHOTS}`);
    await page.close();
    expect(found).toEqual([]);
  }, 240_000);

  test("without JavaScript the status page's forms work: search, retry, export, pull now", async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const home = `${stack.agent.url}/`;

    // Search: the labelled field and its button.
    await page.goto(home);
    await page.getByLabel("Number").fill("10041");
    await page.getByRole("button", { name: "Find record" }).click();
    await page.waitForURL(`${stack.agent.url}/ui/records/invoice/10041`);
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Invoice 10041");

    // Retry: the button names the invoice and the target; the delivery is tried again (and fails again: the product is still gone).
    const before = (await stack.deliveries()).find((d) => d.id === failedId)!.attempts;
    await page.goto(home);
    await page.getByRole("button", { name: "Retry invoice 10042 at eco" }).click();
    await page.waitForURL(home);
    await waitFor("invoice 10042 tried again", async () => {
      const d = (await stack.deliveries()).find((x) => x.id === failedId);
      return d.attempts > before && d.status === "needs_action";
    });

    // Export: a new invoice to transfer, exported by the SIE 4 button; the result page links the file.
    await stack.post([invoiceEvent(10043, 31)]);
    await page.goto(home);
    const files = await page.locator("table.export-files tbody tr").count();
    await page.getByRole("button", { name: "Export invoices to transfer as SIE 4" }).click();
    await page.waitForURL(`${stack.agent.url}/ui/exports/run`);
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Export");
    expect(await page.getByRole("link", { name: /\.SI$/ }).count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, "export-result.png"), fullPage: true });
    await page.getByRole("link", { name: "Back to the status page" }).click();
    expect(await page.locator("table.export-files tbody tr").count()).toBe(files + 1);

    // Pull now: the button names the stream and the target; a manual run is recorded.
    const manualRuns = async () =>
      (await api("/api/v1/pulls")).body.jobs.find((j: any) => j.stream === "expenses").runs.filter((r: any) => r.trigger === "manual");
    const runsBefore = (await manualRuns()).length;
    await page.getByRole("button", { name: "Run pull expenses from eco now" }).click();
    await page.waitForURL(home);
    await waitFor(
      "a second manual run of expenses",
      async () => (await manualRuns()).filter((r: any) => r.status === "ok").length > runsBefore,
    );
    await context.close();
  }, 60_000);

  test("by keyboard: Tab reaches the search field and a retry button, Enter activates them", async () => {
    const page = await browser.newPage();
    /** Presses Tab until the focused element matches `selector` (at most 200 times); the element is returned focused. */
    const tabTo = async (selector: string) => {
      for (let i = 0; i < 200; i++) {
        await page.keyboard.press("Tab");
        if (await page.evaluate((s) => (globalThis as any).document.activeElement?.matches(s) ?? false, selector)) return;
      }
      throw new Error(`Tab never reached ${selector}`);
    };
    const focusRing = () =>
      page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.activeElement).outlineStyle);

    await page.goto(`${stack.agent.url}/?refresh=0`);
    await tabTo("#record-number");
    expect(await focusRing()).not.toBe("none");
    await page.keyboard.type("10042");
    await page.keyboard.press("Enter");
    await page.waitForURL(`${stack.agent.url}/ui/records/invoice/10042`);

    await timeProduct("create"); // the cause is fixed at e-conomic
    await page.goto(`${stack.agent.url}/?refresh=0`);
    await tabTo(`.problem[data-delivery="${failedId}"] form.retry button`);
    expect(await page.evaluate(() => (globalThis as any).document.activeElement!.textContent)).toBe("Retry invoice 10042 at eco");
    expect(await focusRing()).not.toBe("none");
    await page.keyboard.press("Enter");
    await page.waitForURL(`${stack.agent.url}/`);
    await waitFor("invoice 10042 delivered after the retry", async () => (await stack.deliveries("done")).some((d) => d.id === failedId));
    await page.close();
  }, 60_000);
});
