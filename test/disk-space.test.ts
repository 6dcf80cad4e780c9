// Free disk space is told before the disk is full (agent/disk-space.ts): /metrics, the status page and an alert, while
// the free space is below agent.disk_free_warn_bytes, and the alert resolved once it is not. No disk is filled: the
// threshold is set above the real free space (below it for the way back), and the gauge is checked against statfs.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, statfsSync } from "node:fs";
import { join } from "node:path";
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
    expect(back.resolved[0].resolution).toBe("free disk space is back above agent.disk_free_warn_bytes");
    const calm = await (await fetch(stack.agent.url)).text();
    expect(calm).not.toContain("The disk is nearly full");
    expect(calm).toContain(`class="disk-free" data-holds="database"`);
  });

  test("an export output folder on another file system has its own gauge; on the same one, none", async () => {
    const shm = "/dev/shm";
    const other = mkdtempSync(join(shm, "kontobro-exports-"));
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
});
