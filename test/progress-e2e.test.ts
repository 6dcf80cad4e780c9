// Progress of long work seen on the status page of a real agent: a burst of a few thousand customers posted
// through the real HTTP intake to a slowed e-conomic sandbox shows as "N of M delivered" that grows until the
// queue has caught up; the section alone (/ui/progress) says the same. An export made by another process on the
// same data directory (as `kontobro export run` while the agent runs) shows there too, part way and finished.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { databasePath } from "../agent/agent.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, waitFor } from "./helpers.ts";

const CUSTOMERS = 2000;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ dispatch: { concurrency: 8 } });
});
afterAll(() => stack.stop());

interface Bar {
  state: string;
  label: string;
  text: string;
  value: number;
  max: number;
}

/** An item of the "In progress" section (its key matching `key`), as a browser reads it: label, text, <progress>. */
function progressBar(page: string, key: RegExp): Bar | null {
  const item = new RegExp(
    `<div class="progress-item" data-progress="${key.source}" data-state="(\\w+)">([\\s\\S]*?</progress>)\\s*</div>`,
  ).exec(page);
  if (!item) return null;
  const body = item[2]!;
  const bar = /<progress aria-labelledby="([\w-]+)" aria-describedby="([\w-]+)"(?: value="(\d+)" max="(\d+)")?>/.exec(body);
  if (!bar) throw new Error(`no labelled <progress> in ${body}`);
  const textOf = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(body)?.[1] ?? "";
  return {
    state: item[1]!,
    label: textOf(bar[1]!),
    text: textOf(bar[2]!),
    value: Number(bar[3] ?? Number.NaN),
    max: Number(bar[4] ?? Number.NaN),
  };
}

const queueBar = (page: string, target: string) => progressBar(page, new RegExp(`queue:${target}`));

const statusPage = async (path = "/") => (await fetch(`${stack.agent.url}${path}`)).text();

describe("progress on the status page", () => {
  test("progress goes from partial to caught up, with a rate and the time left on the way", async () => {
    // Every request to the sandbox takes 10 ms more: the queue takes several seconds to drain.
    await stack.addFaults({ kind: "latency", latencyMs: 10, probability: 1 });
    expect(queueBar(await statusPage(), "eco")).toBeNull();
    const events = Array.from({ length: CUSTOMERS }, (_, i) => customerEvent(20_000 + i));
    for (let i = 0; i < CUSTOMERS; i += 1000) expect((await stack.post(events.slice(i, i + 1000))).status).toBe(202);

    const seen: Bar[] = [];
    const partial = (await waitFor(
      "the queue's progress part way",
      async () => {
        const bar = queueBar(await statusPage(), "eco");
        if (bar) seen.push(bar);
        // The agent counts every second: a count made while the requests came in has a smaller total.
        const partWay = bar?.state === "running" && bar.max === CUSTOMERS && bar.value > 0 && bar.value < bar.max;
        return partWay && / · about .+ left$/.test(bar.text) ? bar : null;
      },
      60_000,
    ).catch((e) => {
      throw new Error(`${e.message}; last seen: ${JSON.stringify(seen.slice(-3))}`);
    }))!;
    expect(partial.label).toBe("eco queue");
    expect(partial.text).toMatch(/^catching up: [\d,]+ of 2,000 delivered \(\d+%\) · [\d.,]+\/(s|min) · about .+ left$/);
    expect(partial.text).toContain(`${partial.value.toLocaleString("en")} of 2,000 delivered`);

    // The section alone, as the page's script fetches it while something runs.
    const fragment = await statusPage("/ui/progress");
    expect(fragment).toContain('id="progress"');
    expect(fragment).toContain('data-live="1"');
    expect(queueBar(fragment, "eco")!.state).toBe("running");

    const done = (await waitFor(
      "the queue caught up",
      async () => {
        const bar = queueBar(await statusPage(), "eco");
        if (bar) seen.push(bar);
        return bar?.state === "finished" && bar.value === bar.max ? bar : null;
      },
      120_000,
    ))!;
    expect(done.text).toMatch(/^caught up: 2,000 delivered in .+$/);
    expect(done.value).toBe(CUSTOMERS);
    expect(done.max).toBe(CUSTOMERS);
    expect(/<strong data-status="done">(\d+)<\/strong>/.exec(await statusPage())?.[1]).toBe(String(CUSTOMERS));
    // Never went backwards on the way, and was seen part way more than once.
    const values = seen.map((b) => b.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(new Set(values.filter((v) => v > 0 && v < CUSTOMERS)).size).toBeGreaterThan(1);
    // Once nothing runs, the section stops asking for updates.
    expect(await statusPage("/ui/progress")).toContain('data-live="0"');
  }, 200_000);

  test("an export another process makes shows on the agent's status page, part way and finished", async () => {
    const INVOICES = 400;
    const invoices = Array.from({ length: INVOICES }, (_, i) => invoiceEvent(70_000 + i, 20_000 + (i % 50)));
    expect((await stack.post(invoices)).status).toBe(202);
    const marker = join(stack.dataDir, "export-held");
    const go = join(stack.dataDir, "export-go");
    const child = Bun.spawn(
      [process.execPath, join(import.meta.dir, "export-progress-child.ts"), databasePath(stack.dataDir), marker, go],
      {
        stdout: "pipe",
        stderr: "inherit",
      },
    );
    await waitFor("the export to hold part way", () => existsSync(marker), 60_000);
    const exportBar = (page: string) => progressBar(page, /export-[\w-]+/);
    const partWay = exportBar(await statusPage())!;
    expect(partWay).toMatchObject({ state: "running", label: "SIE 4 export", value: Number(readFileSync(marker, "utf8")), max: INVOICES });
    expect(partWay.value).toBeGreaterThan(0);
    expect(partWay.value).toBeLessThan(INVOICES);
    expect(partWay.text).toMatch(/^[\d,]+ of 400 invoices \(\d+%\), (mapping invoices|writing the file|checking the file)/);
    writeFileSync(go, "");
    expect(await child.exited).toBe(0);
    expect(JSON.parse(await new Response(child.stdout).text())).toEqual({ exported: INVOICES });
    const finished = exportBar(await statusPage())!;
    expect(finished).toMatchObject({ state: "finished", value: INVOICES, max: INVOICES });
    expect(finished.text).toMatch(/^finished in .+, 400 invoices \(1 file\(s\)\)$/);
  }, 120_000);
});
