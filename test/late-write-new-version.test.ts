// A new version of a record whose delivery is held after a kill (test/late-write-after-kill.test.ts): the agent sent an
// invoice's draft POST, the target held it, the agent was killed before the answer, and the restarted agent holds the
// delivery for the target's late_answer_wait_ms so that the old POST lands before anyone looks the invoice up. The PSA
// then sent a new version of the invoice. Intake superseded the held delivery and the new one was due at once: it
// looked the invoice up (the old POST not landed yet), made and booked a draft of its own, and the old POST landed
// after: a draft with our PSA id left at e-conomic (a second draft or order at the other targets). Now the new
// version's delivery waits for the hold of the one it replaces, says why, then finds the old draft and books it.
//
// The real agent process, its SQLite file, the e-conomic sandbox and HTTP over loopback.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const TOKEN = "late-write-version-token-0123456";
/** The sandbox holds the draft POST this long; the agent's timeout is shorter, its late-answer wait longer. */
const LATE_POST_MS = 8_000;
const LATE_ANSWER_WAIT_MS = 10_000;

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

test("a new version sent while a killed push's delivery is held waits for that hold: the old draft is found and booked, no second one", async () => {
  const dir = tempDir("kontobro-late-version-");
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
  const send = (events: unknown[]) =>
    fetch(`${api}/api/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(events),
    });
  /** The invoice's newest delivery. */
  const invoice = async () =>
    ((await get("/api/v1/deliveries?limit=100")).deliveries as any[])
      .filter((d) => d.entity === "invoice")
      .reduce((a, b) => (a && a.id > b.id ? a : b), undefined);

  let agent = startAgent(dir);
  try {
    await waitFor("the agent to answer", answers, 20_000);
    await sandboxJson("faults", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rules: [{ kind: "latency", method: "POST", path: "^/invoices/drafts$", latencyMs: LATE_POST_MS, count: 1 }] }),
    });
    expect((await send([customerEvent(1, {}, "c-1"), projectEvent(1, 1, {}, "p-1"), invoiceEvent(1, 1, 1)])).status).toBe(202);
    // The draft POST has reached the target, which holds it: the agent is killed while it waits for the answer.
    await waitFor("the draft POST held by the sandbox", async () => (await sandboxJson("faults")).rules.length === 0, 20_000);
    const postedAt = Date.now();
    agent.kill("SIGKILL");
    await agent.exited;

    agent = startAgent(dir);
    await waitFor("the restarted agent to answer", answers, 20_000);
    const held = await invoice();
    expect(held).toMatchObject({ status: "pending", errorCode: "interrupted" });

    // The PSA sends a new version (another due date, the same amounts) while the old POST is still on its way.
    const changed = invoiceEvent(1, 1, 1, { dueDate: "2026-12-18" }, "i-1-v2");
    expect((await send([changed])).status).toBe(202);
    // The old POST has not landed yet (else this test proves nothing: a slow restart).
    expect(Date.now()).toBeLessThan(postedAt + LATE_POST_MS);
    const replacing = await invoice();
    expect(replacing.id).not.toBe(held.id);

    await waitFor("the new version delivered", async () => (await invoice())?.status === "done", 30_000);
    await Bun.sleep(Math.max(0, postedAt + LATE_POST_MS + 500 - Date.now())); // the old POST has landed by now
    const state = await sandboxJson("state");
    const ours = (docs: any[]) => docs.filter((d) => JSON.stringify(d).includes("PSA-INV-1"));
    expect(ours(state.drafts)).toEqual([]);
    expect(ours(state.booked)).toHaveLength(1);
    expect(ours(state.booked)[0].dueDate).toBe("2026-12-18"); // the old draft, brought up to the new version
    // It waited for the hold of the delivery it replaced, and said why (as that one did).
    expect(replacing).toMatchObject({ status: "pending", uncertain: true, errorCode: "interrupted" });
    expect(replacing.errorMessage).toBe(held.errorMessage);
    expect(replacing.nextAttemptAt).toBe(held.nextAttemptAt);
  } finally {
    agent.kill("SIGKILL");
    await agent.exited;
  }
}, 90_000);
