// /metrics follows Prometheus's conventions: build info, process metrics, counters that end in _total and
// only count, events from the demo feed counted as received like the API's, a retry counted once; checked
// by `promtool check metrics` when the tool is installed (Debian's prometheus package, which .ci/run
// installs), and every metric family is listed in README.md.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEvents, type ValidEvent } from "../agent/intake.ts";
import { VERSION } from "../agent/version.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

let stack: Stack;
let text: string;
beforeAll(async () => {
  stack = await startStack();
  // One event through the API, one through intake directly as the demo feed sends them, one repeat.
  const api = customerEvent(801);
  expect((await stack.post(api)).status).toBe(202);
  expect((await stack.post(api)).body.duplicates).toBe(1);
  const parsed = parseEvents([customerEvent(802)]);
  if (!parsed.ok) throw new Error("invalid sample");
  await stack.agent.intake.submit(parsed.events as ValidEvent[]);
  // One 503 on the first create: one retry, then delivered.
  await stack.addFaults({ kind: "503", method: "POST", path: "^/customers$", count: 1 });
  expect((await stack.post(customerEvent(803))).status).toBe(202);
  await stack.waitDelivered(3);
  text = (await waitFor("the retry counted", async () => {
    const t = await (await fetch(`${stack.agent.url}/metrics`)).text();
    return /kontobro_pushes_total\{target="eco",outcome="retry"\} 1\n/.test(t) ? t : null;
  }))!;
});
afterAll(async () => {
  await stack.stop();
});

const families = (t: string) => [...t.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1]!, type: m[2]! }));
const value = (t: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"=,.+]/g, "\\$&")} (\\S+)$`, "m").exec(t)?.[1]);

describe("/metrics", () => {
  test("build info and process metrics", () => {
    expect(text).toContain(`kontobro_build_info{version="${VERSION}",runtime="bun",runtime_version="${Bun.version}"} 1\n`);
    for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "process_heap_bytes"]) {
      expect(value(text, name)).toBeGreaterThan(0);
    }
    if (process.platform === "linux") expect(value(text, "process_open_fds")).toBeGreaterThan(0);
  });

  test("counters are counters: _total, typed counter; and every family has one HELP and one TYPE", () => {
    const all = families(text);
    expect(all.filter((f) => f.type === "counter" && !f.name.endsWith("_total"))).toEqual([]);
    expect(all.filter((f) => f.type !== "counter" && f.name.endsWith("_total"))).toEqual([]);
    expect(new Set(all.map((f) => f.name)).size).toBe(all.length);
    for (const f of all) expect(text).toContain(`# HELP ${f.name} `);
    expect(all).toContainEqual({ name: "kontobro_events_stored_total", type: "counter" });
    expect(text).not.toMatch(/^kontobro_events_stored /m);
    const series = text
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.slice(0, l.lastIndexOf(" ")));
    expect(new Set(series).size).toBe(series.length);
  });

  test("events from the API and from the demo feed count as received; a retry counts once", () => {
    expect(value(text, "kontobro_events_received_total")).toBe(3);
    expect(value(text, "kontobro_events_duplicate_total")).toBe(1);
    expect(value(text, "kontobro_events_stored_total")).toBe(3);
    expect(value(text, 'kontobro_pushes_total{target="eco",outcome="done"}')).toBe(3);
    expect(value(text, 'kontobro_pushes_total{target="eco",outcome="retry"}')).toBe(1);
    expect(text).not.toContain("kontobro_delivery_retries_total");
    // Every finished push is observed once in the latency histogram.
    expect(value(text, 'kontobro_push_duration_seconds_count{target="eco"}')).toBe(4);
  });

  test("promtool check metrics passes", () => {
    const promtool = Bun.which("promtool");
    if (!promtool) {
      console.warn("SKIPPED promtool check: promtool is not installed (Debian package prometheus; .ci/run installs it with apt-get)");
      return;
    }
    const r = Bun.spawnSync([promtool, "check", "metrics"], { stdin: Buffer.from(text) });
    const said = `${r.stdout.toString()}${r.stderr.toString()}`.trim();
    console.log(`promtool check metrics: exit ${r.exitCode}${said ? `\n${said}` : " (no problems)"}`);
    expect(said).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("README.md lists every metric family", () => {
    const readme = readFileSync(join(import.meta.dir, "../README.md"), "utf8");
    const missing = families(text)
      .map((f) => f.name)
      .filter((n) => !readme.includes(`\`${n}\``));
    // Families that only appear once something happened (budgets, pauses) are listed too.
    for (const n of ["kontobro_target_budget_used", "kontobro_target_budget_limit", "kontobro_target_pauses_total"])
      if (!readme.includes(`\`${n}\``)) missing.push(n);
    expect(missing).toEqual([]);
  });
});
