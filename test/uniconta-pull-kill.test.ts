// A Uniconta expense pull killed mid-run (SIGKILL of `kontobro pull`) or failing between fetching a page and
// storing it resumes from the last stored page: nothing lost, nothing twice.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEMO, startUnicontaSandbox } from "../connectors/uniconta/sandbox/index.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { day } from "./pull-harness.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
let srv: ReturnType<typeof startUnicontaSandbox>;
beforeAll(() => {
  srv = startUnicontaSandbox();
});
afterAll(async () => {
  await srv.stop();
});

const control = async (path: string, body?: unknown) =>
  (
    await fetch(`${srv.url}/__sandbox/${path}`, {
      method: body === undefined ? "GET" : "POST",
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    })
  ).json() as Promise<any>;

/** A data directory with kontobro.toml: one cost per page, so a run has pages to be cut between. */
function workdir(): string {
  const cwd = tempDir("kontobro-uc-kill-");
  writeFileSync(
    join(cwd, "kontobro.toml"),
    [
      `[agent]`,
      `log_level = "error"`,
      `[[targets]]`,
      `name = "uc"`,
      `kind = "uniconta"`,
      `api_url = "${srv.url}"`,
      `company_id = ${DEMO.companyId}`,
      `username = "${DEMO.user}"`,
      `password = "\${UNICONTA_TEST_PASSWORD}"`,
      `requests_per_second = 0`,
      `[targets.expenses]`,
      `page_size = 1`,
      `start_date = "${day(-7)}"`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return cwd;
}

function cli(cwd: string, args: string[], stdin?: string) {
  return Bun.spawn([process.execPath, MAIN, ...args], {
    cwd,
    env: { ...process.env, UNICONTA_TEST_PASSWORD: DEMO.password },
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

const query = (cwd: string, sql: string) => {
  const db = new Database(join(cwd, "data/kontobro.db"), { readonly: true });
  try {
    return db.query(sql).all() as any[];
  } finally {
    db.close();
  }
};

/** Three posted costs on project P1, which the PSA has sent (enqueued into the agent's store). */
async function prepare(cwd: string): Promise<number[]> {
  await control("reset", {});
  await control("rows", { type: "DebtorClient", row: { Account: "10042", Name: "Fjordkraft", Group: "ERHVERV" } });
  await control("rows", { type: "ProjectClient", row: { Number: "P1", Name: "ERP migration", Account: "10042" } });
  const event = { id: "p-P1", type: "project.upserted", data: { number: "P1", name: "ERP migration", customerNumber: "10042" } };
  expect((await run(cwd, ["enqueue", "-"], JSON.stringify([event]))).code).toBe(0);
  const { vouchers } = await control("project-costs", {
    costs: [1, 2, 3].map((k) => ({
      project: "P1",
      date: day(-1),
      category: "REJSE",
      account: "2750",
      creditorAccount: "30011",
      text: `Receipt ${k}`,
      amount: 100 * k,
    })),
  });
  return vouchers;
}

describe("an interrupted Uniconta expense pull resumes without loss or duplicates", () => {
  test("kontobro pull killed with SIGKILL mid-run; the next run continues after the last stored page", async () => {
    const cwd = workdir();
    const vouchers = await prepare(cwd);
    // The second page (after the first voucher) hangs: the run is stuck after storing page one.
    await control("faults", {
      rules: [{ fault: "latency", method: "GET", path: `ProjectTransClient.*Voucher gt ${vouchers[0]}\\b`, latencyMs: 60_000, count: 1 }],
    });
    const child = cli(cwd, ["pull", "uc", "expenses"]);
    await waitFor(
      "the child stuck on page two",
      async () => (await control("faults")).rules.length === 0 && query(cwd, "SELECT count(*) AS n FROM inbox")[0]?.n === 1,
    );
    const second = await run(cwd, ["pull", "uc", "expenses"]);
    expect([second.code, second.out]).toEqual([1, expect.stringContaining("uc/expenses: already running")]);
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    expect(query(cwd, "SELECT status FROM job_runs")).toEqual([{ status: "running" }]);
    const cursor = JSON.parse(query(cwd, "SELECT value FROM cursors WHERE stream = 'expenses'")[0].value);
    expect(cursor.run.after[1]).toBe(vouchers[0]); // stored with page one

    const again = await run(cwd, ["pull", "uc", "expenses"]);
    expect(again.code).toBe(0);
    expect(again.out).toContain("uc/expenses: ok");
    expect(again.out).toContain("imported 2, already had 0");
    const items = query(cwd, "SELECT remote_id AS id, payload FROM inbox ORDER BY seq");
    expect(items.map((i) => JSON.parse(i.payload).voucherNumber)).toEqual(vouchers);
    expect(new Set(items.map((i) => i.id)).size).toBe(3);
    expect(query(cwd, "SELECT status, trigger FROM job_runs ORDER BY id")).toEqual([
      { status: "interrupted", trigger: "cli" },
      { status: "ok", trigger: "cli" },
    ]);
    expect((await run(cwd, ["pull", "uc", "expenses"])).out).toContain("imported 0");
  });

  test("a failure between fetching a page and storing it: the run fails, the next one resumes", async () => {
    const cwd = workdir();
    const vouchers = await prepare(cwd);
    await control("faults", {
      rules: [{ fault: "500", method: "GET", path: `ProjectTransClient.*Voucher gt ${vouchers[1]}\\b`, count: 1 }],
    });
    const failed = await run(cwd, ["pull", "uc", "expenses"]);
    expect(failed.code).toBe(1);
    expect(failed.out).toContain("uc/expenses: FAILED");
    expect(query(cwd, "SELECT count(*) AS n FROM inbox")[0].n).toBe(2);
    const ok = await run(cwd, ["pull", "uc", "expenses"]);
    expect(ok.code).toBe(0);
    expect(query(cwd, "SELECT count(*) AS n, count(DISTINCT remote_id) AS d FROM inbox")[0]).toEqual({ n: 3, d: 3 });
  });
});
