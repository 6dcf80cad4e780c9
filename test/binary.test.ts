// The compiled linux-x64 binary, in an empty directory: it migrates a fresh database with no files
// beside it, serves /healthz, accepts an event and delivers it to a sandbox, and stops on SIGTERM.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "../scripts/build.ts";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { connectorKinds } from "../connectors/registry.ts";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";

let binary: string;
let sandbox: Awaited<ReturnType<typeof startEconomicSandbox>>;

beforeAll(async () => {
  [binary] = await build(["linux-x64"]);
  sandbox = await startEconomicSandbox({ port: 0 });
}, 120_000);
afterAll(async () => {
  await sandbox?.stop();
});

describe("compiled binary", () => {
  test("version", async () => {
    const proc = Bun.spawn([binary!, "version"], { cwd: tempDir(), stdout: "pipe" });
    expect(await new Response(proc.stdout).text()).toContain("kontobro 0.1.0");
    expect(await proc.exited).toBe(0);
  });

  test("runs in an empty directory: migrates, serves /healthz, delivers an event, stops cleanly", async () => {
    const cwd = tempDir("kontobro-bin-");
    const configDir = tempDir("kontobro-bin-cfg-");
    const configPath = join(configDir, "kontobro.toml");
    writeFileSync(
      configPath,
      `
[http]
port = 0
api_token = "\${TOKEN}"
[dispatch]
idle_poll_ms = 50
[[targets]]
name = "eco"
kind = "economic"
rest_url = "${sandbox.url}"
projects_url = "${sandbox.url}/projectsapi/v1.1.0"
app_secret_token = "demo-app-secret"
agreement_grant_token = "demo-agreement-grant"
`,
      { mode: 0o600 },
    );
    expect(readdirSync(cwd)).toEqual([]);
    const proc = Bun.spawn([binary!, "run"], {
      cwd,
      env: { ...process.env, KONTOBRO_CONFIG: configPath, TOKEN: "binary-test-token-123" },
      stdout: "pipe",
      stderr: "pipe",
    });
    let stderr = "";
    void (async () => {
      for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk);
    })();
    const url = await waitFor("the started line", () => /"url":"(http:[^"]+)"/.exec(stderr)?.[1]);
    expect(existsSync(join(cwd, "data", "kontobro.db"))).toBe(true);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as any).status).toBe("ok");
    const res = await fetch(`${url}/api/v1/events`, {
      method: "POST",
      body: JSON.stringify(customerEvent(777)),
      headers: { authorization: "Bearer binary-test-token-123", "content-type": "application/json" },
    });
    expect(res.status).toBe(202);
    await waitFor("customer 777 at the sandbox", () => sandbox.sandbox.state.customers.has(777));
    expect(stderr).not.toContain("binary-test-token-123"); // the token never reaches the log
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(stderr).toContain('"msg":"stopped"');
  });

  // `kontobro demo` from the binary alone, as `npm start` runs it from the source: data under ./data, the pulls
  // bring back what the sandbox's person booked, the alert mail is in the demo mailbox.
  test("runs the demo in an empty directory: status page, pulled items, the demo mailbox", async () => {
    const cwd = tempDir("kontobro-bin-demo-");
    const proc = Bun.spawn([binary!, "demo", "--port", "0", "--interval", "1"], { cwd, stdout: "pipe", stderr: "pipe" });
    let out = "";
    void (async () => {
      for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
    })();
    try {
      const [, url, token] = (await waitFor(
        "the demo's banner",
        () => /Status page\s+(http:\S+)[\s\S]*API token\s+(\S+)/.exec(out),
        30_000,
      ))!;
      expect(existsSync(join(cwd, "data", "kontobro.db"))).toBe(true);
      await waitFor(
        "an expense pulled back",
        async () => {
          const feed = (await (
            await fetch(`${url}/api/v1/inbox?limit=1000`, { headers: { authorization: `Bearer ${token}` } })
          ).json()) as any;
          return feed.items.some((i: any) => i.type === "expense.posted");
        },
        30_000,
      );
      await waitFor(
        "a mail in the demo mailbox",
        async () => /href="\/ui\/demo\/mail\/1"/.test(await (await fetch(`${url}/ui/demo/mail`)).text()),
        30_000,
      );
    } finally {
      proc.kill("SIGTERM");
    }
    expect(await proc.exited).toBe(0);
  }, 90_000);

  // The sandboxes are imported only when asked for (ConnectorFactory.startSandbox): the binary must carry them.
  test("carries every connector's sandbox: `kontobro sandbox KIND` serves it", async () => {
    const kinds = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.startSandbox);
    expect(kinds.length).toBeGreaterThanOrEqual(3);
    for (const kind of kinds) {
      const port = await freePort();
      const proc = Bun.spawn([binary!, "sandbox", kind, "--port", String(port)], { cwd: tempDir(), stdout: "pipe", stderr: "pipe" });
      try {
        let status = 0;
        await waitFor(`the ${kind} sandbox`, async () => {
          status = await fetch(`http://127.0.0.1:${port}/__sandbox/state`).then(
            (r) => r.status,
            () => 0,
          );
          return status !== 0;
        });
        expect({ kind, status }).toEqual({ kind, status: 200 });
      } finally {
        proc.kill("SIGTERM");
        await proc.exited;
      }
    }
  }, 60_000);
});

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}
