// Free disk space is told before the disk is full (agent/disk-space.ts): /metrics, the status page and an alert, while
// the free space is below agent.disk_free_warn_bytes, and the alert resolved once it is back above it and its margin. The
// real disk is not filled: the threshold is set above its free space (below it for the way back), and the gauge is
// checked against statfs; the margin is tested on /dev/shm (tmpfs, memory), filled and freed for real.
import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DiskSpaceWatch } from "../agent/disk-space.ts";
import { createLogger } from "../agent/log.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { tempDir, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  for (const c of cleanups.splice(0)) await c();
});

const TiB = 1024 ** 4;
/** Other programs write to the same disk meanwhile: the gauge is within this of statfs read around the scrape. */
const SLACK = 512 * 1024 ** 2;

const free = (path: string) => {
  const s = statfsSync(path);
  return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
};

async function gauge(s: Stack, name: string, holds: string): Promise<number | null> {
  const text = await (await fetch(`${s.agent.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{holds="${holds}"}`));
  return line ? Number(line.split(" ").at(-1)) : null;
}

function webhookReceiver() {
  const notices: any[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req) => {
      notices.push(await req.json());
      return new Response("ok");
    },
  });
  cleanups.push(() => server.stop(true));
  return {
    notices,
    notifications: { min_interval_minutes: 0, check_interval_seconds: 0.05, webhook: { url: `http://127.0.0.1:${server.port}/hook` } },
  };
}

describe("free disk space", () => {
  test("below agent.disk_free_warn_bytes: the gauge (as statfs says), the status page and an alert; resolved once above", async () => {
    const dataDir = tempDir("kontobro-disk-");
    const hook = webhookReceiver();
    const before = free(dataDir);
    stack = await startStack({
      dataDir,
      agent: { disk_free_warn_bytes: before.free + TiB },
      sections: { notifications: hook.notifications },
    });
    const value = await gauge(stack, "kontobro_disk_free_bytes", "database");
    const after = free(dataDir);
    expect(value).not.toBeNull();
    expect(value!).toBeGreaterThanOrEqual(Math.min(before.free, after.free) - SLACK);
    expect(value!).toBeLessThanOrEqual(Math.max(before.free, after.free) + SLACK);
    expect(await gauge(stack, "kontobro_disk_size_bytes", "database")).toBe(after.size);
    expect(await gauge(stack, "kontobro_disk_free_bytes", "exports")).toBeNull(); // no output folder

    const page = await (await fetch(stack.agent.url)).text();
    expect(page).toContain("The disk is nearly full");
    expect(page).toContain(`on the disk holding the database (${dataDir}), below agent.disk_free_warn_bytes`);
    expect(page).toContain(`class="disk-free paused" data-holds="database"`);

    const told = await waitFor("the alert", () => hook.notices.find((n) => n.problems?.some((p: any) => p.code === "disk_space_low")));
    expect(told.subject).toBe("[kontobro] eco: the database's disk is nearly full");
    expect(told.problems[0]).toMatchObject({ kind: "disk", hint: expect.stringContaining("Free disk space on the kontobro server") });

    // Space back (here: the threshold below the free space), told once more.
    await stack.stop();
    stack = await startStack({ dataDir, agent: { disk_free_warn_bytes: 1024 }, sections: { notifications: hook.notifications } });
    const back = await waitFor("the resolution", () => hook.notices.find((n) => n.resolved?.some((p: any) => p.kind === "disk")));
    expect(back.resolved[0].resolution).toBe("free disk space is back above agent.disk_free_warn_bytes and its 10% margin");
    const calm = await (await fetch(stack.agent.url)).text();
    expect(calm).not.toContain("The disk is nearly full");
    expect(calm).toContain(`class="disk-free" data-holds="database"`);
  });

  test("an export output folder on another file system has its own gauge; on the same one, none", async () => {
    const shm = "/dev/shm";
    const other = mkdtempSync(join(shm, "kontobro-exports-"));
    cleanups.push(() => rmSync(other, { recursive: true, force: true }));
    const dataDir = tempDir("kontobro-disk-");
    stack = await startStack({ dataDir, sections: { exports: { output_dir: other } } });
    const value = await gauge(stack, "kontobro_disk_free_bytes", "exports");
    const now = free(other);
    expect(value).not.toBeNull();
    expect(Math.abs(value! - now.free)).toBeLessThanOrEqual(SLACK);
    expect(await gauge(stack, "kontobro_disk_size_bytes", "exports")).toBe(now.size);
    await stack.stop();

    const same = join(dataDir, "out");
    mkdirSync(same);
    stack = await startStack({ dataDir, sections: { exports: { output_dir: same } } });
    expect(await gauge(stack, "kontobro_disk_free_bytes", "database")).not.toBeNull();
    expect(await gauge(stack, "kontobro_disk_free_bytes", "exports")).toBeNull();
  });

  test("free space hovering around the threshold stays low until it is back above the threshold and its margin", () => {
    // A real tmpfs as the export output folder, really filled and freed: its free space is what statfs reads.
    const other = mkdtempSync(join("/dev/shm", "kontobro-exports-"));
    cleanups.push(() => rmSync(other, { recursive: true, force: true }));
    const fill = join(other, "fill");
    const start = free(other).free;
    // Others may write to /dev/shm meanwhile: every step keeps this far from the lines it tests.
    const gap = Math.min(64 * 1024 ** 2, Math.floor(start / 100));
    // Back above threshold * 1.1: just below the free space at the start (so it starts, and ends, well above it).
    const threshold = Math.floor((start - 4 * gap) / 1.1);
    const margin = Math.ceil(threshold * 1.1) - threshold;
    expect(margin / 2).toBeGreaterThan(2 * gap);
    const lines: { level: string; msg: string }[] = [];
    const log = createLogger("info", {}, (l) => lines.push(JSON.parse(l)));
    const watch = new DiskSpaceWatch(tempDir("kontobro-disk-"), other, threshold, log);
    const exportsLow = () => watch.low().some((l) => l.holds === "exports");
    const freeNow = () => watch.current().find((r) => r.holds === "exports")!.freeBytes;

    watch.check();
    expect(exportsLow()).toBe(false);

    // Filled to gap below the threshold: low, one warning, an alert.
    const fd = openSync(fill, "w");
    cleanups.push(() => rmSync(fill, { force: true }));
    const chunk = Buffer.alloc(64 * 1024 ** 2, 1);
    let size = 0;
    const target = start - threshold + gap;
    while (size < target) size += writeSync(fd, chunk, 0, Math.min(chunk.length, target - size));
    watch.check();
    expect(freeNow()).toBeLessThan(threshold);
    expect(exportsLow()).toBe(true);
    expect(watch.problems(["eco"])).toHaveLength(1);

    // Part freed: half the margin above the threshold. Still low, nothing logged, the alert still open.
    ftruncateSync(fd, start - threshold - Math.floor(margin / 2));
    watch.check();
    expect(freeNow()).toBeGreaterThan(threshold);
    expect(freeNow()).toBeLessThan(threshold + margin);
    expect(exportsLow()).toBe(true);
    const [still] = watch.problems(["eco"]);
    expect(still).toMatchObject({ kind: "disk", subject: "exports", code: "disk_space_low" });
    expect(still!.message).toContain("fell below agent.disk_free_warn_bytes");
    expect(still!.message).toContain("counts as back above");

    // All freed: above threshold + margin. Back, one info line.
    ftruncateSync(fd, 0);
    closeSync(fd);
    watch.check();
    expect(freeNow()).toBeGreaterThan(threshold + margin);
    expect(exportsLow()).toBe(false);
    expect(watch.problems(["eco"])).toEqual([]);
    const told = lines.filter((l) => l.level !== "debug").map((l) => `${l.level}: ${l.msg}`);
    expect(told).toHaveLength(2);
    expect(told[0]).toStartWith("warn: Only ");
    expect(told[1]).toStartWith("info: free disk space is back above");
  });
});
