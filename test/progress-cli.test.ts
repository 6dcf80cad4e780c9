// The CLI's progress line, as a user sees it: `kontobro export run` with standard output in a pipe (plain lines,
// no carriage returns), in --json (nothing but the JSON), and on a pseudo-terminal (one line rewritten in place;
// `script` from util-linux provides the terminal); `kontobro pull` page by page from a sandbox; `kontobro status
// --watch` with nothing in progress.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { BASE, invoice } from "./exports-fixtures.ts";
import { projectEvent, tempDir } from "./helpers.ts";
import { day, PDF } from "./pull-harness.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
/** ANSI: clear from the cursor to the end of the line. */
const CLEAR_LINE = "\x1b[K";
const INVOICES = 300;
const SCRIPT = ["/usr/bin/script", "/bin/script"].find((p) => existsSync(p));
let cwd: string;

async function cli(args: string[], env: Record<string, string> = {}, dir = cwd) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, KONTOBRO_CONFIG: "", ...env },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { out, err, code };
}

const again = () => cli(["export", "set-status", `${90_001}..${90_000 + INVOICES}`, "to_transfer"]);

beforeAll(async () => {
  cwd = tempDir("kontobro-progress-cli-");
  writeFileSync(join(cwd, "kontobro.toml"), `[exports]\ncompany_name = "Framsteg AB"\norg_number = "556000-3333"\n`, { mode: 0o600 });
  const events = [...BASE(), ...Array.from({ length: INVOICES }, (_, i) => invoice(90_001 + i))];
  writeFileSync(join(cwd, "events.json"), JSON.stringify(events));
  expect((await cli(["enqueue", "events.json"])).code).toBe(0);
});

describe("export progress on the command line", () => {
  test("not a terminal: plain lines, each further on, through every stage, then how it ended", async () => {
    const r = await cli(["export", "run", "sie4"], { KONTOBRO_PROGRESS_EVERY_MS: "0" });
    expect(r.code).toBe(0);
    expect(r.out).not.toContain("\r");
    expect(r.out).not.toContain(CLEAR_LINE);
    const lines = r.out.split("\n").filter((l) => l.startsWith("SIE 4 export: "));
    expect(lines[0]).toBe("SIE 4 export: 0 invoices, waiting for the database");
    expect(lines.at(-1)).toMatch(/^SIE 4 export: finished in .+, 300 invoices \(1 file\(s\)\)$/);
    const counted = lines
      .map((l) => /^SIE 4 export: ([\d,]+) of 300 invoices \((\d+)%\), ([a-z ]+)/.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ done: Number(m[1]!.replace(/,/g, "")), stage: m[3]! }));
    expect(counted.length).toBeGreaterThan(4);
    const done = counted.map((c) => c.done);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    const stages = [...new Set(counted.map((c) => c.stage.trim()))];
    expect(stages).toEqual(["mapping invoices", "writing the file", "checking the file", "marking invoices transferred", "done"]);
    // The summary follows the progress.
    expect(r.out.indexOf("Exported 300 voucher(s)")).toBeGreaterThan(r.out.lastIndexOf("SIE 4 export: finished"));
  });

  test("the default interval still prints the start and the end; --json prints nothing but the JSON", async () => {
    expect((await again()).code).toBe(0);
    const plain = await cli(["export", "run", "sie4"]);
    expect(plain.out.split("\n")[0]).toBe("SIE 4 export: 0 invoices, waiting for the database");
    expect(plain.out).toMatch(/\nSIE 4 export: finished in .+, 300 invoices \(1 file\(s\)\)\n/);
    expect((await again()).code).toBe(0);
    const json = await cli(["export", "run", "sie4", "--json"], { KONTOBRO_PROGRESS_EVERY_MS: "0" });
    expect(JSON.parse(json.out).invoices.exported).toHaveLength(INVOICES);
  });

  test.skipIf(!SCRIPT)("on a terminal: one line rewritten in place, ended by a newline", async () => {
    expect((await again()).code).toBe(0);
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const proc = Bun.spawn([SCRIPT!, "-q", "-e", "-c", `${quote(process.execPath)} ${quote(MAIN)} export run sie4`, "/dev/null"], {
      cwd,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
      env: { ...process.env, KONTOBRO_CONFIG: "", COLUMNS: "200" },
    });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    const redraws = out.split("\r").filter((part) => part.startsWith("SIE 4 export: "));
    expect(redraws.length).toBeGreaterThanOrEqual(2);
    // Each redraw clears the rest of the line and stays on it.
    for (const part of redraws) {
      expect(part.endsWith(CLEAR_LINE)).toBe(true);
      expect(part).not.toContain("\n");
    }
    expect(redraws[0]).toBe(`SIE 4 export: 0 invoices, waiting for the database${CLEAR_LINE}`);
    // The last redraw is how it ended, and a line break follows it (the terminal turns \n into \r\n).
    const last = redraws.at(-1)!;
    expect(last).toMatch(/^SIE 4 export: finished in .+, 300 invoices \(1 file\(s\)\)/);
    expect(out.includes(`${last}\r\n`) || out.includes(`${last}\n`)).toBe(true);
    expect(out).toContain("Exported 300 voucher(s)");
  });
});

describe("pull progress on the command line", () => {
  test("a line per page with the items fetched so far, then how it ended", async () => {
    const sandbox = await startEconomicSandbox({ port: 0 });
    try {
      const dir = tempDir("kontobro-progress-pull-");
      writeFileSync(
        join(dir, "kontobro.toml"),
        `[agent]\nlog_level = "error"\n[[targets]]\nname = "eco"\nkind = "economic"\nrest_url = "${sandbox.url}"\nprojects_url = "${sandbox.projectsUrl}"\napp_secret_token = "demo-app-secret"\nagreement_grant_token = "demo-agreement-grant"\nrequests_per_second = 0\n[targets.expenses]\npage_size = 1\n`,
        { mode: 0o600 },
      );
      writeFileSync(join(dir, "project.json"), JSON.stringify([projectEvent(4711, 1, {}, "p-4711")]));
      const inDir = (args: string[], env: Record<string, string> = {}) => cli(args, env, dir);
      expect((await inDir(["enqueue", "project.json"])).code).toBe(0);
      const booked = await fetch(`${sandbox.url}/__sandbox/book/supplier-invoices`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          vouchers: [1, 2, 3].map((n) => ({
            date: day(0),
            supplierNumber: 1,
            text: `Receipt ${n}`,
            lines: [{ account: 2800, amount: 100 * n, vatCode: "I25", projectNumber: 4711, costTypeNumber: 1 }],
            attachment: { fileName: `r${n}.pdf`, contentBase64: PDF.toString("base64") },
          })),
        }),
      });
      expect(booked.ok).toBe(true);
      const r = await inDir(["pull", "eco", "expenses"], { KONTOBRO_PROGRESS_EVERY_MS: "0" });
      expect(r.code).toBe(0);
      expect(r.out).not.toContain("\r");
      const lines = r.out.split("\n").filter((l) => l.startsWith("eco: expenses: "));
      const pages = lines
        .map((l) => /^eco: expenses: (\d+) items fetched, page (\d+), (\d+) new/.exec(l))
        .filter((m) => m !== null)
        .map((m) => ({ fetched: Number(m[1]), page: Number(m[2]) }));
      expect(pages.length).toBeGreaterThanOrEqual(3);
      expect(pages.map((p) => p.page)).toEqual(pages.map((_, i) => i + 1));
      expect(pages.at(-1)!.fetched).toBe(3);
      expect(lines.at(-1)).toMatch(/^eco: expenses: finished in .+, 3 items fetched \(3 new\)$/);
      expect(r.out).toContain("eco/expenses: ok");
    } finally {
      await sandbox.stop();
    }
  });
});

describe("kontobro status", () => {
  test("--watch with nothing in progress says so and exits; status lists the last export under In progress", async () => {
    const watch = await cli(["status", "--watch"]);
    expect(watch.code).toBe(0);
    expect(watch.out).toBe("Nothing in progress: no queue is catching up, no export or pull is under way.\n");
    const status = await cli(["status"]);
    expect(status.out).toMatch(/\nIn progress:\n {2}SIE 4 export: finished in .+, 300 invoices \(1 file\(s\)\)\n/);
    const json = JSON.parse((await cli(["status", "--json"])).out);
    expect(json.progress.at(-1)).toMatchObject({ title: "SIE 4 export", state: "finished", done: INVOICES, total: INVOICES });
  });
});
