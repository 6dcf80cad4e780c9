// The status page's "In progress" section in headless Chromium (Debian's package, driven by playwright-core): an
// export under way is a progress bar a screen reader finds by its name, the bar moves without the page being
// reloaded (the section fetches itself again), a pull of unknown size is an indeterminate bar, and axe-core finds
// no serious or critical violation in the section.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { startWork } from "../agent/running-work.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { tempDir } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`progress browser test skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does this)`);
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const SHOTS = process.env.KONTOBRO_SCREENSHOTS ?? tempDir("kontobro-progress-shots-");

let stack: Stack;
let browser: Browser;

beforeAll(async () => {
  if (!haveChromium) return;
  stack = await startStack();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe.skipIf(!haveChromium)("progress in a browser", () => {
  test("a labelled bar that moves by itself, an indeterminate one, and no serious axe violation", async () => {
    // Work as `kontobro export run` and a pull report it (the agent is in this process, so it is alive).
    let now = Date.now();
    const exporting = startWork(stack.agent.db, { kind: "export", title: "SIE 4 export", unit: "invoices" }, { now: () => now });
    now += 1100;
    exporting.update(250, 1000, "writing the file");
    const pulling = startWork(stack.agent.db, { kind: "pull", title: "eco: expenses", unit: "items fetched" });
    pulling.update(0, null, "page 1, 0 new");

    const page = await browser.newPage();
    // The page itself reloads only every hour here: whatever changes sooner is the section's own doing.
    await page.goto(`${stack.agent.url}/?refresh=3600`);
    await page.evaluate(() => {
      (globalThis as any).notReloaded = true;
    });
    const bar = page.getByRole("progressbar", { name: "SIE 4 export" });
    expect(await bar.getAttribute("value")).toBe("250");
    expect(await bar.getAttribute("max")).toBe("1000");
    const description = await bar.evaluate(
      (el) => (globalThis as any).document.getElementById(el.getAttribute("aria-describedby")).textContent,
    );
    expect(description).toBe("250 of 1,000 invoices (25%), writing the file · 227/s · about 3 s left");
    const indeterminate = page.getByRole("progressbar", { name: "eco: expenses" });
    expect(await indeterminate.getAttribute("value")).toBeNull();

    const violations = await (async () => {
      await page.addScriptTag({ path: AXE });
      return page.evaluate(async () => {
        const r = await (globalThis as any).axe.run("#progress", { resultTypes: ["violations"] });
        return r.violations.map((v: any) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n: any) => n.target.join(" ")) }));
      });
    })();
    for (const v of violations) console.log(`axe on #progress: ${JSON.stringify(v)}`);
    expect(violations.filter((v: any) => v.impact === "serious" || v.impact === "critical")).toEqual([]);
    await page.locator("#progress").screenshot({ path: join(SHOTS, "progress-section.png") });

    now += 1100;
    exporting.update(600, 1000, "checking the file");
    await page.waitForFunction(
      () => (globalThis as any).document.querySelector('#progress progress[max="1000"]')?.getAttribute("value") === "600",
      null,
      {
        timeout: 20_000,
      },
    );
    expect(await page.evaluate(() => (globalThis as any).notReloaded)).toBe(true);

    // Once all of it is over, the section shows how it ended and stops asking.
    now += 1100;
    exporting.update(1000, 1000, "done");
    exporting.finish("ok", "1 file(s)");
    pulling.finish("ok", "0 new");
    await page.waitForFunction(
      () => (globalThis as any).document.querySelectorAll('#progress [data-state="finished"]').length === 2,
      null,
      {
        timeout: 20_000,
      },
    );
    expect(await page.locator("#progress").textContent()).toContain("finished in 3 s, 1,000 invoices (1 file(s))");
    expect(await page.evaluate(() => (globalThis as any).notReloaded)).toBe(true);
    console.log(`progress section screenshot: ${join(SHOTS, "progress-section.png")}`);
  }, 90_000);
});
