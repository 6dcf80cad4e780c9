// A write that lands after its agent was killed (SIGKILL of `kontobro run`). The agent sent an invoice's draft POST, the
// target held it (the sandbox's latency) and the agent was killed before the answer. The restarted agent recovered the
// lease, looked the invoice up at once (nothing there yet), made a draft of its own and booked it; then the old POST
// landed: a draft with our PSA id left at e-conomic after the booking (Uniconta: a second order; eAccounting, Uni Micro:
// a second draft). Now a lease taken back without its answer waits the target's late_answer_wait_ms before the next
// attempt, which then finds the old draft and books it: one invoice, no draft left. The status API shows why it waits.
//
// The real agent process, its SQLite file, the e-conomic sandbox and HTTP over loopback.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const TOKEN = "late-write-kill-token-0123456789";
/** The sandbox holds the draft POST this long; the agent's timeout is shorter, its late-answer wait longer. */
const LATE_POST_MS = 4_000;
const LATE_ANSWER_WAIT_MS = 6_000;

let sandbox: Awaited<ReturnType<typeof startEconomicSandbox>>;
beforeAll(async () => {
  sandbox = await startEconomicSandbox({ port: 0 });
});
afterAll(async () => {
  await sandbox.stop();
});

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

function startAgent(dir: string) {
  return Bun.spawn([process.execPath, MAIN, "run", "--config", join(dir, "kontobro.toml")], {
    cwd: dir,
    stdout: "ignore",
    stderr: "ignore",
  });
}

const sandboxJson = async (path: string, init?: RequestInit) =>
  (await fetch(`${sandbox.url}/__sandbox/${path}`, init)).json() as Promise<any>;

test("a draft POST held by the target when the agent is killed: the restart waits for it, finds it and books it; no second draft", async () => {
  const dir = tempDir("kontobro-late-kill-");
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "kontobro.toml"),
    [
      `[agent]`,
      `data_dir = "${dir}/data"`,
      `log_level = "error"`,
      `[http]`,
      `port = ${port}`,
      `api_token = "${TOKEN}"`,
      `[dispatch]`,
      `retry_base_ms = 50`,
      `retry_max_ms = 200`,
      `idle_poll_ms = 50`,
      `[[targets]]`,
      `name = "eco"`,
      `kind = "economic"`,
      `rest_url = "${sandbox.url}"`,
      `projects_url = "${sandbox.url}/projectsapi/v1.1.0"`,
      `app_secret_token = "demo-app-secret"`,
      `agreement_grant_token = "demo-agreement-grant"`,
      `requests_per_second = 0`,
      `request_timeout_ms = 1000`,
      `late_answer_wait_ms = ${LATE_ANSWER_WAIT_MS}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const answers = () =>
    fetch(`${api}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
  const get = async (path: string) =>
    (await fetch(`${api}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as Promise<any>;
  const invoice = async () => ((await get("/api/v1/deliveries?limit=100")).deliveries as any[]).find((d) => d.entity === "invoice");

  let agent = startAgent(dir);
  try {
    await waitFor("the agent to answer", answers, 20_000);
    await sandboxJson("faults", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rules: [{ kind: "latency", method: "POST", path: "^/invoices/drafts$", latencyMs: LATE_POST_MS, count: 1 }] }),
    });
    const res = await fetch(`${api}/api/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify([customerEvent(1, {}, "c-1"), projectEvent(1, 1, {}, "p-1"), invoiceEvent(1, 1, 1)]),
    });
    expect(res.status).toBe(202);
    // The draft POST has reached the target, which holds it: the agent is killed while it waits for the answer.
    await waitFor("the draft POST held by the sandbox", async () => (await sandboxJson("faults")).rules.length === 0, 20_000);
    const postedAt = Date.now();
    agent.kill("SIGKILL");
    await agent.exited;

    agent = startAgent(dir);
    await waitFor("the restarted agent to answer", answers, 20_000);
    // The recovered delivery says why it waits, and until when.
    const held = await invoice();
    expect(held).toMatchObject({ status: "pending", uncertain: true });
    expect(held.errorMessage).toContain("late_answer_wait_ms");
    expect(held.nextAttemptAt).toBeGreaterThan(postedAt + LATE_POST_MS);

    await waitFor("the invoice delivered", async () => (await invoice())?.status === "done", 30_000);
    await Bun.sleep(Math.max(0, postedAt + LATE_POST_MS + 500 - Date.now())); // the old POST has landed by now
    const state = await sandboxJson("state");
    const ours = (docs: any[]) => docs.filter((d) => JSON.stringify(d).includes("PSA-INV-1"));
    expect(ours(state.booked)).toHaveLength(1);
    expect(ours(state.drafts)).toEqual([]);
  } finally {
    agent.kill("SIGKILL");
    await agent.exited;
  }
}, 90_000);
