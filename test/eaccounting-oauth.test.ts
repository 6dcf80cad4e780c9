// OAuth against the eAccounting sandbox: `kontobro connect` through its loopback redirect, rotating refresh
// tokens (one refresh for all callers, across connectors sharing the data directory), a revoked refresh token
// becoming the reconnect state (check, status page, deliveries waiting), and a rotated refresh token surviving
// a SIGKILL between the refresh and the first use of its access token.
import { afterEach, describe, expect, test } from "bun:test";
import { createConnectors } from "../agent/agent.ts";
import { parsePasted, runConnect } from "../agent/cli/connect.ts";
import { validateConfig } from "../agent/config.ts";
import { connectionState, credentialStore } from "../agent/credentials.ts";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { redact, silentLogger } from "../agent/log.ts";
import { memoryCredentials, OAuthTokens } from "../connectors/eaccounting/auth.ts";
import type { EaccountingConnector } from "../connectors/eaccounting/connector.ts";
import { startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";
import { tokenUrl } from "../connectors/eaccounting/config.ts";
import { TargetError } from "../connectors/http.ts";
import { ev, startEaStack, type EaStack } from "./eaccounting-harness.ts";
import { customerData, targetConfig } from "./eaccounting-fixtures.ts";
import { tempDir, waitFor } from "./helpers.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function freePort(): number {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
  const port = s.port!;
  s.stop(true);
  return port;
}

async function control(url: string, path: string, body: unknown = {}) {
  return (
    await fetch(`${url}/__sandbox/${path}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } })
  ).json() as Promise<any>;
}

/** Plays the browser: opens the authorisation address `connect` printed and follows the redirect back to it. */
async function signIn(lines: string[]): Promise<void> {
  const line = await waitFor("the authorisation address", () => lines.find((l) => l.includes("/connect/authorize")));
  const url = /https?:\/\/\S+/.exec(line!)![0];
  await waitFor("connect listening", () => lines.some((l) => l.startsWith("Waiting for the browser")));
  const res = await fetch(url, { redirect: "manual" });
  expect(res.status).toBe(302);
  const back = await fetch(res.headers.get("location")!);
  expect(await back.text()).toContain("Signed in");
}

function setup(over: Record<string, unknown> = {}) {
  const srv = startEaccountingSandbox();
  cleanups.push(() => srv.stop());
  const dataDir = tempDir("kontobro-ea-oauth-");
  const port = freePort();
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: dataDir },
      targets: [
        {
          name: "ea",
          kind: "eaccounting",
          ...targetConfig(srv.url, { refresh_token: undefined, redirect_uri: `http://127.0.0.1:${port}/callback`, ...over }),
        },
      ],
    },
    {},
  );
  return { srv, dataDir, config, target: targets[0]! };
}

describe("kontobro connect", () => {
  test("prints the address, receives the code on its loopback redirect, stores the tokens and checks the connection", async () => {
    const { srv, dataDir, config, target } = setup();
    const lines: string[] = [];
    const done = runConnect({ config, target, out: (l) => lines.push(l) });
    await signIn(lines);
    expect(await done).toBe(0);
    expect(lines.join("\n")).toContain("Connected ea");
    expect(lines.join("\n")).toContain("ok   company");
    const db = openDatabase(`${dataDir}/kontobro.db`);
    cleanups.push(() => db.$client.close());
    const stored = (await credentialStore(db, dataDir, "ea").read())!;
    expect(stored).toMatchObject({ state: "connected", issuer: tokenUrl(target.settings), clientId: "kontobro-sandbox" });
    expect(stored.scope).toContain("ea:purchase");
    expect((await control(srv.url, "oauth/check", { refreshToken: stored.refreshToken })).valid).toBe(true);
    // Secrets never appear in the output.
    expect(lines.join("\n")).not.toContain(stored.refreshToken!);
  });

  test("a pasted code or address is read; missing scopes are said plainly", async () => {
    expect(parsePasted("http://localhost:8790/callback?code=abc&state=s1")).toEqual({ code: "abc", state: "s1", error: undefined });
    expect(parsePasted("  abc123 ")).toEqual({ code: "abc123" });
    expect(parsePasted("http://localhost:8790/callback?error=access_denied&error_description=User+said+no").error).toBe(
      "access_denied: User said no",
    );
    const { srv, config, target } = setup();
    await control(srv.url, "oauth/options", { grantable: ["ea:api", "offline_access", "ea:sales"] });
    const lines: string[] = [];
    const done = runConnect({ config, target, out: (l) => lines.push(l) });
    await signIn(lines);
    expect(await done).toBe(1);
    expect(lines.join("\n")).toContain("not granted: ea:accounting, ea:purchase");
    expect(lines.join("\n")).toMatch(/FAIL cost centre: .*NoAccessToScopes/);
  });
});

describe("rotating refresh tokens", () => {
  test("an expired access token is refreshed once for two connectors sharing the data directory; the old refresh token is dead", async () => {
    const { srv, dataDir, target } = setup();
    const { refresh_token } = await control(srv.url, "oauth/grant");
    const db = openDatabase(`${dataDir}/kontobro.db`);
    cleanups.push(() => db.$client.close());
    await credentialStore(db, dataDir, "ea").write({
      issuer: tokenUrl(target.settings),
      clientId: "kontobro-sandbox",
      refreshToken: refresh_token,
      accessToken: null,
      accessExpiresAt: null,
      scope: null,
      state: "connected",
      problem: null,
    });
    const a = createConnectors([target], silentLogger, db, { dataDir }).get("ea") as EaccountingConnector;
    const b = createConnectors([target], silentLogger, undefined, { dataDir }).get("ea") as EaccountingConnector; // another process's way in
    await a.client.get("/customers");
    await b.client.get("/customers");
    expect(srv.sandbox.identity.stats.refreshed).toBe(1); // b used the token a stored
    await control(srv.url, "clock", { advanceMs: 3_601_000 }); // eAccounting's clock: both access tokens expired
    await Promise.all([a.client.get("/customers"), b.client.get("/customers"), a.client.get("/articles"), b.client.get("/units")]);
    expect(srv.sandbox.identity.stats.refreshed).toBe(2);
    expect(srv.sandbox.identity.stats.reused).toBe(0);
    const stored = (await credentialStore(db, dataDir, "ea").read())!;
    expect(stored.refreshToken).not.toBe(refresh_token);
    expect((await control(srv.url, "oauth/check", { refreshToken: refresh_token })).valid).toBe(false);
    expect((await control(srv.url, "oauth/check", { refreshToken: stored.refreshToken })).valid).toBe(true);
    // Secrets never appear in logs: every token the store wrote is masked by the logger.
    expect(redact(`refresh ${stored.refreshToken} access ${stored.accessToken}`)).toBe("refresh [redacted] access [redacted]");
  });

  test("a rotated refresh token survives a SIGKILL between the refresh and its use", async () => {
    const { srv, dataDir, target } = setup();
    const { refresh_token } = await control(srv.url, "oauth/grant");
    const db = openDatabase(`${dataDir}/kontobro.db`);
    cleanups.push(() => db.$client.close());
    const store = credentialStore(db, dataDir, "ea");
    await store.write({
      issuer: tokenUrl(target.settings),
      clientId: "kontobro-sandbox",
      refreshToken: refresh_token,
      accessToken: null,
      accessExpiresAt: null,
      scope: null,
      state: "connected",
      problem: null,
    });
    const child = Bun.spawn([process.execPath, `${import.meta.dir}/eaccounting-kill-child.ts`, dataDir, srv.url], {
      stdout: "pipe",
      stderr: "inherit",
    });
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("WRITTEN")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the child ended before refreshing: ${out}`);
      out += new TextDecoder().decode(value);
    }
    child.kill("SIGKILL");
    expect(await child.exited).not.toBe(0);
    expect(out).not.toContain("USED");
    // The old refresh token is used up at eAccounting; the new one is on disk and works.
    expect((await control(srv.url, "oauth/check", { refreshToken: refresh_token })).valid).toBe(false);
    const after = (await store.read())!;
    expect(after.state).toBe("connected");
    expect(after.refreshToken).not.toBe(refresh_token);
    await control(srv.url, "oauth/expire"); // make the next process refresh again with what the dead one stored
    const next = createConnectors([target], silentLogger, db, { dataDir }).get("ea") as EaccountingConnector;
    expect((await next.client.get("/customers")).Meta).toBeDefined();
    expect((await connectionState(sqliteRunner(db.$client), "ea"))!.state).toBe("connected");
    expect(srv.sandbox.identity.stats.reused).toBe(0);
  });
});

describe("a revoked refresh token", () => {
  let stack: EaStack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  test("becomes the reconnect state: check and the status page say to run kontobro connect; deliveries wait; connect again and they go", async () => {
    const port = freePort();
    stack = await startEaStack({ target: { redirect_uri: `http://127.0.0.1:${port}/callback` } });
    const s = stack;
    await s.send([ev("customer.upserted", customerData())]);
    await s.waitDone(1);
    await s.control("oauth/revoke", {}); // the user removed kontobro's access in eAccounting
    await s.send([ev("customer.upserted", customerData({ name: "Fjordkraft AB" }))]);
    const waiting = await waitFor("the delivery waits for a reconnect", async () =>
      (await s.deliveries("pending")).find((d: any) => d.errorCode === "eaccounting.reconnect"),
    );
    expect(waiting.errorMessage).toContain("reconnect");
    expect(waiting.errorHint).toContain("kontobro connect ea");
    const page = await s.page();
    expect(page).toContain("Reconnect needed");
    expect(page).toContain("kontobro connect ea");
    const connector = s.agent.connectors.get("ea")!;
    const check = await connector.check();
    expect(check[0]).toMatchObject({ ok: false, name: "authorisation" });
    expect(check[0]!.message).toContain("reconnect");
    const requests = (await s.state()).requests.length;
    await Bun.sleep(100);
    expect((await s.state()).requests.length).toBe(requests); // nothing is sent while reconnect lasts

    const { config, targets } = validateConfig(
      {
        agent: { data_dir: s.dataDir },
        targets: [
          { name: "ea", kind: "eaccounting", ...targetConfig(s.sandboxUrl, { redirect_uri: `http://127.0.0.1:${port}/callback` }) },
        ],
      },
      {},
    );
    const lines: string[] = [];
    const done = runConnect({ config, target: targets[0]!, out: (l) => lines.push(l) });
    await signIn(lines);
    expect(await done).toBe(0);
    await s.api(`/api/v1/deliveries/${waiting.id}/retry`, { method: "POST" }); // (it would go within a minute by itself)
    await s.waitDone(2);
    expect((await s.state()).customers.map((c: any) => c.Name)).toEqual(["Fjordkraft AB"]);
    expect(await s.page()).not.toContain("Reconnect needed");
  });
});

describe("the identity server failing", () => {
  test("a 503 or 429 to a token refresh is said plainly, a 429's wait is kept, and the refresh token still works afterwards", async () => {
    const srv = startEaccountingSandbox();
    cleanups.push(() => srv.stop());
    const { refresh_token } = await control(srv.url, "oauth/grant");
    const tokens = new OAuthTokens({
      target: "ea",
      tokenUrl: `${srv.url}/connect/token`,
      clientId: "kontobro-sandbox",
      clientSecret: "sandbox-secret",
      bootstrapRefreshToken: refresh_token,
      store: memoryCredentials(),
      timeoutMs: 5_000,
    });
    let lastFailure: TargetError | null = null;
    for (const fault of [
      { fault: "503", path: "^/connect/token$", count: 1 },
      { fault: "429", path: "^/connect/token$", count: 1, retryAfterSeconds: 2 },
    ]) {
      await control(srv.url, "faults", fault);
      const failed = await tokens.get().then(
        () => null,
        (e: TargetError) => e,
      );
      lastFailure = failed;
      expect(failed).toBeInstanceOf(TargetError);
      expect({ kind: failed!.kind, code: failed!.code }).toEqual({ kind: "retryable", code: "eaccounting.token_error" });
      expect(failed!.message).toStartWith(`eAccounting's identity server answered HTTP ${fault.fault}`);
      expect(failed!.message).toEndWith(" to a token request.");
    }
    // The 429 said how long to wait in its message only: that is the pause (it held back nothing before).
    expect(lastFailure!.retryAfterMs).toBe(2000);
    expect(await tokens.get()).toMatch(/\S/);
    expect(srv.sandbox.identity.stats.reused).toBe(0);
  });
});
