// A pull interrupted by a kill (SIGKILL of `kontobro pull` mid-run) or by a failure between fetching a
// page and storing it resumes from the last stored page: nothing lost, nothing twice. Also the CLI.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { projectEvent, tempDir, waitFor } from "./helpers.ts";
import { day, PDF } from "./pull-harness.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
let sandbox: Awaited<ReturnType<typeof startEconomicSandbox>>;
afterAll(async () => {
  await sandbox.stop();
});
beforeAll(async () => {
  sandbox = await startEconomicSandbox({ port: 0 });
});

const control = async (path: string, body?: unknown, method = body === undefined ? "GET" : "POST") =>
  (
    await fetch(`${sandbox.url}/__sandbox/${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    })
  ).json() as Promise<any>;

/** A data directory with kontobro.toml: one entry per page, so a run has many pages to be cut between. */
function workdir(): string {
  const cwd = tempDir("kontobro-kill-");
  writeFileSync(
    join(cwd, "kontobro.toml"),
    `[agent]\nlog_level = "error"\n[[targets]]\nname = "eco"\nkind = "economic"\nrest_url = "${sandbox.url}"\nprojects_url = "${sandbox.projectsUrl}"\napp_secret_token = "demo-app-secret"\nagreement_grant_token = "demo-agreement-grant"\nrequests_per_second = 0\n[targets.expenses]\npage_size = 1\n`,
    { mode: 0o600 },
  );
  return cwd;
}

function cli(cwd: string, args: string[], stdin?: string) {
  return Bun.spawn([process.execPath, MAIN, ...args], {
    cwd,
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
}

async function run(cwd: string, args: string[], stdin?: string) {
  const p = cli(cwd, args, stdin);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { out, err, code };
}

const readDb = (cwd: string) => new Database(join(cwd, "data/kontobro.db"), { readonly: true });
const query = (cwd: string, sql: string) => {
  const db = readDb(cwd);
  try {
    return db.query(sql).all() as any[];
  } finally {
    db.close();
  }
};

/** Three supplier invoices on project 4711, which the PSA has sent (enqueued into the agent's store). */
async function prepare(cwd: string) {
  await control("reset", {});
  expect((await run(cwd, ["enqueue", "-"], JSON.stringify([projectEvent(4711, 1, {}, "p-4711")]))).code).toBe(0);
  const { booked } = await control("book/supplier-invoices", {
    vouchers: [1, 2, 3].map((n) => ({
      date: day(0),
      supplierNumber: 1,
      text: `Receipt ${n}`,
      lines: [{ account: 2800, amount: 100 * n, vatCode: "I25", projectNumber: 4711, costTypeNumber: 1 }],
      attachment: { fileName: `r${n}.pdf`, contentBase64: PDF.toString("base64") },
    })),
  });
  return booked as { accountingYear: string; voucherNumber: number }[];
}

describe("an interrupted pull resumes without loss or duplicates", () => {
  test("kontobro pull killed with SIGKILL mid-run; the next run continues after the last stored page", async () => {
    const cwd = workdir();
    const booked = await prepare(cwd);
    // The second voucher's receipt hangs: the run is stuck after storing the first voucher's pages.
    await control("faults", {
      rules: [
        {
          kind: "latency",
          method: "GET",
          path: `^/journals/1/vouchers/${booked[0]!.accountingYear}-${booked[1]!.voucherNumber}/attachment$`,
          latencyMs: 60_000,
          count: 1,
        },
      ],
    });
    const child = cli(cwd, ["pull", "eco", "expenses"]);
    await waitFor(
      "the child stuck on page two",
      async () => (await control("faults")).rules.length === 0 && query(cwd, "SELECT count(*) AS n FROM inbox")[0]?.n === 1,
    );
    // Meanwhile a second `kontobro pull` of the same job does not start (the first holds the job's lock).
    const second = await run(cwd, ["pull", "eco", "expenses"]);
    expect([second.code, second.out]).toEqual([1, expect.stringContaining("eco/expenses: already running")]);
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    expect(query(cwd, "SELECT status FROM job_runs")).toEqual([{ status: "running" }]); // the dead process's run
    const cursor = JSON.parse(query(cwd, "SELECT value FROM cursors WHERE stream = 'expenses'")[0].value);
    expect(cursor.run.after).toBeGreaterThan(0); // stored with page one

    const again = await run(cwd, ["pull", "eco", "expenses"]);
    expect(again.code).toBe(0);
    expect(again.out).toContain("eco/expenses: ok");
    expect(again.out).toContain("imported 2, already had 0");
    const items = query(cwd, "SELECT remote_id AS id, payload, length(attachment) AS size FROM inbox ORDER BY seq");
    expect(items.map((i) => JSON.parse(i.payload).voucherNumber)).toEqual(booked.map((b) => b.voucherNumber));
    expect(items.every((i) => i.size === PDF.length)).toBe(true);
    expect(query(cwd, "SELECT status, trigger FROM job_runs ORDER BY id")).toEqual([
      { status: "interrupted", trigger: "cli" },
      { status: "ok", trigger: "cli" },
    ]);
    const third = await run(cwd, ["pull", "eco", "expenses"]);
    expect(third.out).toContain("imported 0, already had 3");
  });

  test("a failure between fetching a page and storing it: the run fails, the next one resumes", async () => {
    const cwd = workdir();
    const booked = await prepare(cwd);
    await control("faults", {
      rules: [
        {
          kind: "500",
          method: "GET",
          path: `^/journals/1/vouchers/${booked[0]!.accountingYear}-${booked[2]!.voucherNumber}/attachment$`,
          count: 1,
        },
      ],
    });
    const failed = await run(cwd, ["pull", "eco", "expenses"]);
    expect(failed.code).toBe(1);
    expect(failed.out).toContain("eco/expenses: FAILED");
    expect(failed.out).toContain("fix:");
    expect(query(cwd, "SELECT count(*) AS n FROM inbox")[0].n).toBe(2);
    const ok = await run(cwd, ["pull", "eco"]); // every stream of the target
    expect(ok.code).toBe(0);
    expect(ok.out).toContain("eco/expenses: ok");
    expect(ok.out).toContain("eco/payments: ok");
    expect(query(cwd, "SELECT count(*) AS n, count(DISTINCT remote_id) AS d FROM inbox")[0]).toEqual({ n: 3, d: 3 });
    expect(query(cwd, "SELECT status FROM job_runs WHERE stream = 'expenses' ORDER BY id").map((r) => r.status)).toEqual(["failed", "ok"]);
  });
});

describe("kontobro pull and check", () => {
  test("usage errors, and check shows the webhook token generated once", async () => {
    const cwd = workdir();
    expect((await run(cwd, ["pull"])).code).toBe(2);
    const unknown = await run(cwd, ["pull", "nope"]);
    expect([unknown.code, unknown.err]).toEqual([2, expect.stringContaining("Targets that can: eco")]);
    expect((await run(cwd, ["pull", "eco", "invoices"])).err).toContain("Streams: expenses, payments");
    const check = await run(cwd, ["check"]);
    const token = /eco \(economic\) webhook token: (\S+)/.exec(check.out)?.[1];
    expect(token).toBeTruthy();
    expect(check.out).toContain(`/webhooks/economic/${token}?type=invoice&invoice=[INVOICENO]`);
    expect((await run(cwd, ["check"])).out).toContain(`webhook token: ${token}`);
    expect(query(cwd, "SELECT value FROM settings WHERE name = 'webhook_token:eco'")).toEqual([{ value: token }]);
    expect((await run(cwd, ["--help"])).out).toContain("pull TARGET [STREAM]");
  });
});
