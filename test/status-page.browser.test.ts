// The status page in headless Chromium (Debian's package, driven by playwright-core): a person sees the
// failure with its hint, presses Retry, and the delivery goes through once the cause is fixed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`status-page browser test skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does this)`);

let stack: Stack;
let browser: Browser;

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
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe.skipIf(!haveChromium)("status page in a browser", () => {
  test("shows a failure with its hint, and the Retry button delivers it after the fix", async () => {
    await fetch(`${stack.sandboxUrl}/__sandbox/seed/remove`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ items: ["customerGroup1"] }),
    });
    await stack.post([customerEvent(31)]);
    const [failed] = (await waitFor("needs action", () => stack.deliveries("needs_action").then((d) => (d.length ? d : null))))!;

    const page = await browser.newPage();
    await page.goto(stack.agent.url);
    const card = page.locator('section.target[data-target="eco"]');
    expect(await card.locator('[data-status="needs_action"]').textContent()).toBe("1");
    const row = card.locator(`.problem[data-delivery="${failed.id}"]`);
    expect(await row.locator(".message").textContent()).toContain("e-conomic");
    expect(await row.locator(".hint").textContent()).toContain("How to fix:");
    await page.screenshot({ path: `${stack.dataDir}/status-before.png`, fullPage: true });

    await fetch(`${stack.sandboxUrl}/__sandbox/reset`, { method: "POST" }); // the user creates customer group 1
    await row.getByRole("button", { name: "Retry customer 31 at eco" }).click();
    await page.waitForURL(stack.agent.url + "/");
    await waitFor("delivered after retry", async () => (await stack.deliveries("done")).some((d) => d.id === failed.id));
    await page.reload();
    expect(await card.locator('[data-status="done"]').textContent()).toBe("1");
    expect(await card.locator('[data-status="needs_action"]').textContent()).toBe("0");
    expect(await card.locator(".last-success").textContent()).not.toBe("never");
    await page.screenshot({ path: `${stack.dataDir}/status-after.png`, fullPage: true });
    console.log(`screenshots in ${stack.dataDir}`);
  });
});
