// A write that lands after its agent was killed (SIGKILL of `kontobro run`). The agent sent an invoice's draft POST, the
// target held it (the sandbox's latency) and the agent was killed before the answer. The restarted agent recovered the
// lease, looked the invoice up at once (nothing there yet), made a draft of its own and booked it; then the old POST
// landed: a draft with our PSA id left at e-conomic after the booking (Uniconta: a second order; eAccounting, Uni Micro:
// a second draft). Now a lease taken back without its answer waits the target's late_answer_wait_ms before the next
// attempt, which then finds the old draft and books it: one invoice, no draft left. The status API shows why it waits.
//
// The same when the PSA sends a new version of the invoice during that hold: intake superseded the held delivery and
// the new one was due at once, looked the invoice up before the old POST landed and made its own. Now the new
// version's delivery waits for the hold of the one it replaces, says why, then finds the old draft and books it.
//
// The real agent process, its SQLite file, the e-conomic sandbox and HTTP over loopback.
import { expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const TOKEN = "late-write-kill-token-0123456789";

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

/** PSA-INV-1's documents at the sandbox. */
const ours = (docs: any[]) => docs.filter((d) => JSON.stringify(d).includes("PSA-INV-1"));

/**
 * `kontobro run` on a data directory and an e-conomic sandbox of its own, killed while the sandbox holds its draft POST of invoice 1 for
 * `latePostMs`, and started again; `late_answer_wait_ms` is `lateAnswerWaitMs`, the request timeout 1 s. The test runs
 * in `body`; the agent is killed after it.
 */
async function killedWhileDraftPostHeld(
  latePostMs: number,
  lateAnswerWaitMs: number,
  body: (agent: {
    postedAt: number;
    send(events: unknown[]): Promise<Response>;
    /** The sandbox's control API (`state`, `faults`). */
    sandboxJson(path: string, init?: RequestInit): Promise<any>;
    /** The invoice's newest delivery, as the API lists it. */
    invoice(): Promise<any>;
  }) => Promise<void>,
): Promise<void> {
  const sandbox = await startEconomicSandbox({ port: 0 });
  const sandboxJson = async (path: string, init?: RequestInit) =>
    (await fetch(`${sandbox.url}/__sandbox/${path}`, init)).json() as Promise<any>;
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
      `late_answer_wait_ms = ${lateAnswerWaitMs}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const start = () =>
    Bun.spawn([process.execPath, MAIN, "run", "--config", join(dir, "kontobro.toml")], { cwd: dir, stdout: "ignore", stderr: "ignore" });
  const answers = () =>
    fetch(`${api}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
  const send = (events: unknown[]) =>
    fetch(`${api}/api/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(events),
    });
  const invoice = async () =>
    (
      (await (await fetch(`${api}/api/v1/deliveries?limit=100`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as any
    ).deliveries
      .filter((d: any) => d.entity === "invoice")
      .reduce((a: any, b: any) => (a && a.id > b.id ? a : b), undefined);

  let agent: Subprocess = start();
  try {
    await waitFor("the agent to answer", answers, 20_000);
    await sandboxJson("faults", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rules: [{ kind: "latency", method: "POST", path: "^/invoices/drafts$", latencyMs: latePostMs, count: 1 }] }),
    });
    expect((await send([customerEvent(1, {}, "c-1"), projectEvent(1, 1, {}, "p-1"), invoiceEvent(1, 1, 1)])).status).toBe(202);
    // The draft POST has reached the target, which holds it: the agent is killed while it waits for the answer.
    await waitFor("the draft POST held by the sandbox", async () => (await sandboxJson("faults")).rules.length === 0, 20_000);
    const postedAt = Date.now();
    agent.kill("SIGKILL");
    await agent.exited;

    agent = start();
    await waitFor("the restarted agent to answer", answers, 20_000);
    await body({ postedAt, send, sandboxJson, invoice });
  } finally {
    agent.kill("SIGKILL");
    await agent.exited;
    await sandbox.stop();
  }
}

test("a draft POST held by the target when the agent is killed: the restart waits for it, finds it and books it; no second draft", async () => {
  const latePostMs = 4_000;
  await killedWhileDraftPostHeld(latePostMs, 6_000, async ({ postedAt, sandboxJson, invoice }) => {
    // The recovered delivery says why it waits, and until when.
    const held = await invoice();
    expect(held).toMatchObject({ status: "pending", uncertain: true });
    expect(held.errorMessage).toContain("late_answer_wait_ms");
    expect(held.nextAttemptAt).toBeGreaterThan(postedAt + latePostMs);

    await waitFor("the invoice delivered", async () => (await invoice())?.status === "done", 30_000);
    await Bun.sleep(Math.max(0, postedAt + latePostMs + 500 - Date.now())); // the old POST has landed by now
    const state = await sandboxJson("state");
    expect(ours(state.booked)).toHaveLength(1);
    expect(ours(state.drafts)).toEqual([]);
  });
}, 90_000);

test("a new version sent while a killed push's delivery is held waits for that hold: the old draft is found and booked, no second one", async () => {
  const latePostMs = 8_000;
  await killedWhileDraftPostHeld(latePostMs, 10_000, async ({ postedAt, send, sandboxJson, invoice }) => {
    const held = await invoice();
    expect(held).toMatchObject({ status: "pending", errorCode: "interrupted" });

    // The PSA sends a new version (another due date, the same amounts) while the old POST is still on its way.
    expect((await send([invoiceEvent(1, 1, 1, { dueDate: "2026-12-18" }, "i-1-v2")])).status).toBe(202);
    // The old POST has not landed yet (else this test proves nothing: a slow restart).
    expect(Date.now()).toBeLessThan(postedAt + latePostMs);
    const replacing = await invoice();
    expect(replacing.id).not.toBe(held.id);

    await waitFor("the new version delivered", async () => (await invoice())?.status === "done", 30_000);
    await Bun.sleep(Math.max(0, postedAt + latePostMs + 500 - Date.now())); // the old POST has landed by now
    const state = await sandboxJson("state");
    expect(ours(state.drafts)).toEqual([]);
    expect(ours(state.booked)).toHaveLength(1);
    expect(ours(state.booked)[0].dueDate).toBe("2026-12-18"); // the old draft, brought up to the new version
    // It waited for the hold of the delivery it replaced, and said why (as that one did).
    expect(replacing).toMatchObject({ status: "pending", uncertain: true, errorCode: "interrupted" });
    expect(replacing.errorMessage).toBe(held.errorMessage);
    expect(replacing.nextAttemptAt).toBe(held.nextAttemptAt);
  });
}, 90_000);
