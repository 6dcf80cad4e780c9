// The status page's charts and its automatic updates in headless Chromium (Debian's package through
// playwright-core), against the real stack (agent, SQLite file, e-conomic sandbox over loopback):
// some records are delivered, some fail and are retried, one needs action; the charts' bars carry those
// numbers, a screenshot of the chart has pixels in the bar colours, and the page updates itself only while
// nobody is filling in a form.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Locator } from "playwright-core";
import { CHART_COLORS } from "../agent/http/status-charts.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";
import { countColour, decodePng } from "./png.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`status-charts browser test skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does this)`);

let stack: Stack;
let browser: Browser;
/** What the deliveries API says: delivered, and failed attempts (a done delivery's attempts before the last; every attempt of one that needs action). */
let expected: { delivered: number; failed: number };

beforeAll(async () => {
  if (!haveChromium) return;
  stack = await startStack();
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
  await stack.post([1, 2, 3, 4].map((n) => customerEvent(n)));
  await stack.waitDelivered(4);
  // Two failed creates (retried by themselves), then delivered.
  await stack.addFaults({ kind: "500", method: "POST", path: "^/customers$", count: 2 });
  await stack.post([customerEvent(5)]);
  await stack.waitDelivered(5);
  // A customer the target refuses: needs action.
  await fetch(`${stack.sandboxUrl}/__sandbox/seed/remove`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ items: ["customerGroup1"] }),
  });
  await stack.post([customerEvent(6)]);
  await waitFor("needs action", async () => (await stack.deliveries("needs_action")).length === 1);
  const all = await stack.deliveries();
  const done = all.filter((d) => d.status === "done");
  expected = {
    delivered: done.length,
    failed:
      done.reduce((s, d) => s + d.attempts - 1, 0) + all.filter((d) => d.status === "needs_action").reduce((s, d) => s + d.attempts, 0),
  };
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const numbersOf = async (items: Locator, attribute: string) =>
  (await items.evaluateAll((els, a) => els.map((e) => Number(e.getAttribute(a))), attribute)).reduce((s, n) => s + n, 0);

describe.skipIf(!haveChromium)("status page charts in a browser", () => {
  test("the charts show what was delivered and what failed, as bars, text and a table, and they render", async () => {
    expect(expected.delivered).toBe(5);
    expect(expected.failed).toBeGreaterThanOrEqual(3); // two failed creates and one refusal at least
    const page = await browser.newPage();
    await page.goto(`${stack.agent.url}/?refresh=0`);
    const card = page.locator('section.target[data-target="eco"]');

    for (const range of ["24h", "30d"]) {
      const chart = card.locator(`svg[data-chart="deliveries"][data-range="${range}"]`);
      const buckets = chart.locator("g.bucket");
      expect(await buckets.count()).toBe(range === "24h" ? 24 : 30);
      expect(await numbersOf(buckets, "data-delivered")).toBe(expected.delivered);
      expect(await numbersOf(buckets, "data-failed")).toBe(expected.failed);
      expect(await numbersOf(chart.locator("rect.bar.delivered"), "data-count")).toBe(expected.delivered);
      expect(await numbersOf(chart.locator("rect.bar.failed"), "data-count")).toBe(expected.failed);
      // Each bar's tooltip says its numbers.
      for (const g of await buckets.all()) {
        const [d, f] = [await g.getAttribute("data-delivered"), await g.getAttribute("data-failed")];
        expect(await g.locator("title").textContent()).toEndWith(`: ${d} delivered, ${f} failed`);
      }
      const points = card.locator(`svg[data-chart="latency"][data-range="${range}"] g.point`);
      expect(await numbersOf(points, "data-count")).toBe(expected.delivered);
      expect(Number(await points.first().getAttribute("data-p95-ms"))).toBeGreaterThan(0);
    }

    // The accessibility tree: an image named by its title, and a table named by its caption.
    const label = page.getByRole("img", { name: "Deliveries and failures at eco, last 24 hours, per hour" });
    expect(await label.count()).toBe(1);
    await card.locator('details.chart-numbers[data-range="24h"] summary').click();
    const table = page.getByRole("table", { name: "Deliveries to eco per hour, last 24 hours (UTC)" });
    expect(await table.isVisible()).toBe(true);
    const delivered = await table
      .locator("tbody tr")
      .evaluateAll((rows) => rows.reduce((s, r) => s + Number(r.children[1]!.textContent), 0));
    expect(delivered).toBe(expected.delivered);
    expect(await card.locator(".latency-summary").first().textContent()).toContain(`(${expected.delivered} delivered)`);

    // The chart really rendered: its screenshot has pixels in the delivered and failed colours on a white ground.
    const png = await card.locator('svg[data-chart="deliveries"][data-range="24h"]').screenshot();
    await Bun.write(`${stack.dataDir}/chart-24h.png`, png);
    await page.screenshot({ path: `${stack.dataDir}/status-charts.png`, fullPage: true });
    const img = decodePng(png);
    expect(img.width).toBeGreaterThan(200);
    expect(countColour(img, CHART_COLORS.delivered)).toBeGreaterThan(100);
    expect(countColour(img, CHART_COLORS.failed)).toBeGreaterThan(10);
    expect(countColour(img, "#ffffff", 4)).toBeGreaterThan((img.width * img.height) / 2);
    const latency = decodePng(await card.locator('svg[data-chart="latency"][data-range="24h"]').screenshot());
    expect(countColour(latency, CHART_COLORS.median)).toBeGreaterThan(10);
    console.log(`screenshots in ${stack.dataDir}`);
    await page.close();
  }, 60_000);

  test("the page updates itself every 10 s when idle, but not while a form field has focus, has changes, or the numbers are open", async () => {
    const page = await browser.newPage();
    let loads = 0;
    page.on("load", () => loads++);
    // Time in the page is Playwright's clock: it moves only when the test says (through reloads too), so
    // "25 seconds later" is exact and takes no real time.
    const start = Date.now();
    await page.clock.install({ time: start });
    await page.clock.pauseAt(start + 1_000);
    await page.goto(stack.agent.url);
    expect(await page.locator("#refresh-note").textContent()).toContain("Updates every 10 s");
    expect(await page.locator('#refresh-note a[href="/"]').textContent()).toBe("Refresh");
    expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(0);
    const state = page.locator("#refresh-state");
    // (The test's TypeScript has no DOM types: the page's document is reached through globalThis.)
    const blur = () => page.evaluate(() => (globalThis as any).document.activeElement?.blur());
    /** Lets `ms` pass in the page; true if it reloaded meanwhile (then waits for the new page's script). */
    const after = async (ms: number) => {
      const before = loads;
      // A reload during the run ends the page's side of it.
      await page.clock.runFor(ms).catch(() => {});
      if (loads === before) await Bun.sleep(100); // a reload just started has fired "load" by now, or none started
      await waitFor(
        "the page to settle",
        async () => (await page.evaluate(() => (globalThis as any).document.readyState).catch(() => "")) === "complete",
      );
      await page.locator("#refresh-pause:not([hidden])").waitFor();
      return loads > before;
    };

    // Idle: after 10 s it updates and shows what changed meanwhile (one more customer the target refuses).
    await stack.post([customerEvent(7)]);
    await waitFor("a second refusal", async () => (await stack.deliveries("needs_action")).length === 2);
    const refused = page.locator('section.target[data-target="eco"] [data-status="needs_action"]');
    expect(await refused.textContent()).toBe("1");
    expect(await after(9_000)).toBe(false);
    expect(await after(1_500)).toBe(true);
    expect(await refused.textContent()).toBe("2");

    // Typing into the export form: held while the field has focus, and after it lost focus with the change kept.
    const invoice = page.locator('form[action="/ui/exports/status"] input[name="number"]');
    await invoice.fill("10001");
    expect(await after(25_000)).toBe(false);
    expect(await state.textContent()).toBe(" (held while a form field has focus)");
    await blur();
    expect(await after(25_000)).toBe(false);
    expect(await state.textContent()).toBe(" (held while a form has changes not sent)");
    expect(await invoice.inputValue()).toBe("10001");
    // A choice in a list counts as a change too; put back, it does not.
    const setTo = page.locator('form[action="/ui/exports/status"] select[name="status"]');
    const first = await setTo.inputValue();
    await invoice.fill("");
    await setTo.selectOption({ index: 1 });
    await blur();
    expect(await after(25_000)).toBe(false);
    expect(await state.textContent()).toBe(" (held while a form has changes not sent)");
    await setTo.selectOption(first);
    await blur();
    expect(await after(10_000)).toBe(true);

    // A table of numbers opened: held until it is closed.
    const summary = page.locator('details.chart-numbers[data-range="24h"] summary');
    await summary.click();
    await blur();
    expect(await after(25_000)).toBe(false);
    expect(await state.textContent()).toBe(" (held while a table of numbers is open)");
    await summary.click();
    await blur();
    expect(await after(10_000)).toBe(true);

    // Paused by the button (which keeps the focus): held until resumed.
    await page.getByRole("button", { name: "Pause updates" }).click();
    expect(await after(25_000)).toBe(false);
    expect(await state.textContent()).toBe(" (paused)");
    await page.getByRole("button", { name: "Resume updates" }).click();
    expect(await after(10_000)).toBe(true);
    await page.close();
  }, 90_000);

  test("?refresh= sets the interval (the Refresh link keeps it); 0 turns the updates off", async () => {
    const page = await browser.newPage();
    await page.goto(`${stack.agent.url}/?refresh=3`);
    expect(await page.locator("#refresh-note").textContent()).toContain("Updates every 3 s");
    expect(await page.locator("#refresh-note a").getAttribute("href")).toBe("/?refresh=3");
    expect(await page.locator("body").getAttribute("data-refresh-seconds")).toBe("3");
    await page.goto(`${stack.agent.url}/?refresh=0`);
    expect(await page.locator("#refresh-note").textContent()).toContain("Automatic updates are off");
    expect(await page.locator("#refresh-pause").isHidden()).toBe(true);
    await page.close();
  });
});
