// A notice whose send a crash cut goes again at once after the restart (SQLite, review finding 12). The agent is the
// only process that sends the data directory's notices (its instance lock), so it claims a notice without the lease
// the hosted workers need to keep each other off; with that lease the notice waited at least five minutes after the
// restart. Real parts: the agent as a process (kill -9), its SQLite file, the e-conomic sandbox refusing its tokens
// (the problem to tell), the alert webhook's receiver over loopback.
import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const TOKEN = "notify-crash-token-0123456789";
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

test("a notice cut mid-send by kill -9 is sent again as soon as the agent is back", async () => {
  const sandbox = await startEconomicSandbox({ port: 0 });
  cleanups.push(() => sandbox.stop());
  // The first request is held (the send under way when the agent dies); later ones are answered.
  const hooks: string[] = [];
  let arrived: () => void = () => {};
  const first = new Promise<void>((resolve) => (arrived = resolve));
  const receiver = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    fetch: async (req) => {
      hooks.push(await req.text());
      if (hooks.length === 1) {
        arrived();
        return new Promise<Response>(() => {});
      }
      return new Response("ok");
    },
  });
  cleanups.push(() => receiver.stop(true));

  const dir = tempDir("kontobro-notify-crash-");
  const port = await freePort();
  writeFileSync(
    join(dir, "kontobro.toml"),
    `[agent]\ndata_dir = "${dir}/data"\nlog_level = "error"\n[http]\nport = ${port}\napi_token = "${TOKEN}"\n` +
      `[notifications]\ncheck_interval_seconds = 0.1\nmin_interval_minutes = 0\n` +
      `[notifications.webhook]\nurl = "http://127.0.0.1:${receiver.port}/hooks/alerts"\ntimeout_ms = 60000\n` +
      `[[targets]]\nname = "eco"\nkind = "economic"\nrest_url = "${sandbox.url}"\nprojects_url = "${sandbox.url}/projectsapi/v1.1.0"\n` +
      `app_secret_token = "demo-app-secret"\nagreement_grant_token = "revoked-grant"\nrequests_per_second = 0\n`,
    { mode: 0o600 },
  );
  const start = async () => {
    const agent = Bun.spawn([process.execPath, MAIN, "run", "--config", join(dir, "kontobro.toml")], {
      cwd: dir,
      stdout: "ignore",
      stderr: "ignore",
    });
    cleanups.push(() => agent.kill("SIGKILL"));
    await waitFor(
      "the agent to answer",
      () =>
        fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.ok,
          () => false,
        ),
      30_000,
    );
    return agent;
  };

  const agent = await start();
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, {
    method: "POST",
    body: JSON.stringify([customerEvent(1)]),
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  });
  expect(res.status).toBe(202);
  // The refused tokens are told: the notice's send is under way when the agent is killed.
  await Promise.race([first, Bun.sleep(30_000).then(() => Promise.reject(new Error("no notice within 30 s")))]);
  agent.kill("SIGKILL");
  await agent.exited;
  const db = new Database(join(dir, "data", "kontobro.db"), { readonly: true });
  const notices = () => db.query("SELECT id, status, attempts FROM notifications ORDER BY id").all();
  expect(notices()).toEqual([{ id: 1, status: "pending", attempts: 0 }]);

  // Back: the same notice goes again at once (at least once), not after a lease of five minutes.
  const restartedAt = Date.now();
  await start();
  await waitFor("the notice sent again", () => hooks.length >= 2, 20_000);
  expect(Date.now() - restartedAt).toBeLessThan(20_000);
  expect(JSON.parse(hooks[1]!)).toEqual(JSON.parse(hooks[0]!));
  await waitFor("the notice marked sent", () => (notices() as { status: string }[])[0]?.status === "sent");
  expect(notices()).toEqual([{ id: 1, status: "sent", attempts: 1 }]);
  db.close();
}, 120_000);
