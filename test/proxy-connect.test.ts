// Behind a corporate proxy: requests to the targets go through a real proxy on loopback: plain http in
// absolute form ([proxy] url in kontobro.toml), https through CONNECT (HTTPS_PROXY in the environment, in a
// `kontobro check` process); NO_PROXY is honoured; `kontobro check` says how each target is reached and
// when it cannot be, and a DNS failure says to check the host name, DNS and proxy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { startAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import { networkError, proxyFor, proxySettings, useProxy } from "../connectors/http.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, tempDir } from "./helpers.ts";
import { freePort, testCertificate } from "./notify-smtp.ts";
import { startProxy, type TestProxy } from "./proxy-server.ts";

let stack: Stack;
let proxy: TestProxy;
let tlsFront: ReturnType<typeof Bun.serve>;
let caFile: string;
beforeAll(async () => {
  stack = await startStack();
  proxy = await startProxy();
  // The sandbox behind TLS, as a real target is: https://127.0.0.1:PORT with a certificate made for the test.
  const cert = testCertificate();
  caFile = cert.caFile;
  tlsFront = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    tls: { key: cert.key, cert: cert.cert },
    fetch: async (req) => {
      const u = new URL(req.url);
      const res = await fetch(`${stack.sandboxUrl}${u.pathname}${u.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        redirect: "manual",
        proxy: false,
      } as RequestInit);
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  });
});
afterAll(async () => {
  useProxy(proxySettings());
  await stack.stop();
  await proxy.stop();
  tlsFront.stop(true);
});

const economic = (name: string, url: string) => ({
  name,
  kind: "economic",
  rest_url: url,
  projects_url: `${url}/projectsapi/v1.1.0`,
  app_secret_token: "demo-app-secret",
  agreement_grant_token: "demo-agreement-grant",
  requests_per_second: 0,
});

describe("outbound proxy", () => {
  test("HTTPS_PROXY, HTTP_PROXY, NO_PROXY and [proxy]: which URL goes where", () => {
    const env = {
      HTTPS_PROXY: "http://proxy.example.com:3128",
      http_proxy: "http://plain.example.com:8080",
      NO_PROXY: "localhost,.intern.example.com,10.0.0.5:8443",
    };
    const s = proxySettings({}, env);
    expect(s.source).toBe("HTTPS_PROXY and http_proxy");
    expect(proxyFor("https://restapi.e-conomic.com/customers", s)).toBe("http://proxy.example.com:3128");
    expect(proxyFor("http://gateway.example.com:5000/post", s)).toBe("http://plain.example.com:8080");
    expect(proxyFor("https://erp.intern.example.com/api", s)).toBeUndefined();
    expect(proxyFor("https://intern.example.com/api", s)).toBeUndefined();
    expect(proxyFor("https://10.0.0.5:8443/x", s)).toBeUndefined();
    expect(proxyFor("https://10.0.0.5/x", s)).toBe("http://proxy.example.com:3128");
    expect(proxyFor("http://localhost:8787/", s)).toBeUndefined();
    const configured = proxySettings({ url: "http://corp:3128", no_proxy: "uniconta.local" }, env);
    expect(configured.source).toBe("[proxy] url in kontobro.toml");
    expect(proxyFor("http://gateway.example.com/", configured)).toBe("http://corp:3128");
    expect(proxyFor("https://odata.uniconta.local/", configured)).toBeUndefined();
    expect(proxyFor("https://restapi.e-conomic.com/", proxySettings({ from_environment: false }, env))).toBeUndefined();
    expect(proxyFor("https://restapi.e-conomic.com/", proxySettings({}, { ...env, NO_PROXY: "*" }))).toBeUndefined();
  });

  test("a DNS failure is described as such: check the host name, DNS and proxy; not 'usually temporary'", async () => {
    const e = await fetch("http://kontobro-no-such-host.invalid/").catch((x) => x);
    const err = networkError(e, true, "POST", "http://kontobro-no-such-host.invalid/customers", "e-conomic");
    expect(err.kind).toBe("retryable");
    expect(err.message).toContain("The host name kontobro-no-such-host.invalid could not be resolved");
    expect(err.hint).toContain("Check the host name in kontobro.toml, the server's DNS, and the proxy settings");
    expect(err.hint).not.toContain("Usually temporary");
  });

  test("the agent pushes through [proxy] url (absolute-form requests through the proxy)", async () => {
    const { config, targets } = validateConfig(
      {
        agent: { data_dir: tempDir("kontobro-proxy-") },
        http: { port: 0, api_token: "test-token-0123456789" },
        proxy: { url: proxy.url },
        targets: [economic("eco", stack.sandboxUrl)],
      },
      {},
    );
    await stack.agent.stop();
    stack.agent = await startAgent(config, targets, silentLogger);
    const before = proxy.log.length;
    expect((await stack.post(customerEvent(7001))).status).toBe(202);
    // It has timed out a few times in full runs under load and never alone: say where the delivery stood.
    await stack.waitDelivered(1).catch(async (e) => {
      const where = { deliveries: await stack.deliveries(), proxy: proxy.log.slice(before) };
      throw new Error(`${(e as Error).message}; ${JSON.stringify(where)}`);
    });
    const seen = proxy.log.slice(before);
    expect(seen.some((l) => l.startsWith(`POST ${stack.sandboxUrl}/customers`) || l.startsWith(`PUT ${stack.sandboxUrl}/customers`))).toBe(
      true,
    );
    expect(seen.every((l) => l.includes(stack.sandboxUrl))).toBe(true);
  });

  test("kontobro check: through the proxy with CONNECT (HTTPS_PROXY), direct for NO_PROXY, and what cannot be reached", async () => {
    const dir = tempDir("kontobro-proxy-check-");
    const closed = await freePort();
    const https = `https://127.0.0.1:${tlsFront.port}`;
    const file = join(dir, "kontobro.toml");
    await Bun.write(
      file,
      `[agent]\ndata_dir = "${join(dir, "data")}"\n` +
        [
          economic("viaproxy", https),
          economic("closed", `http://127.0.0.1:${closed}`),
          economic("nodns", "http://kontobro-no-such-host.invalid"),
        ]
          .map(
            (t) =>
              `[[targets]]\n${Object.entries(t)
                .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
                .join("\n")}\n`,
          )
          .join("\n"),
    );
    const run = async (env: Record<string, string>) => {
      const p = Bun.spawn([process.execPath, join(import.meta.dir, "../agent/main.ts"), "check", "--config", file], {
        env: {
          ...process.env,
          HTTP_PROXY: "",
          http_proxy: "",
          HTTPS_PROXY: "",
          https_proxy: "",
          NO_PROXY: "",
          no_proxy: "",
          NODE_EXTRA_CA_CERTS: caFile,
          ...env,
        },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err, code] = [await new Response(p.stdout).text(), await new Response(p.stderr).text(), await p.exited];
      return { out: out + err, code };
    };
    const before = proxy.log.length;
    const r = await run({ HTTPS_PROXY: proxy.url });
    console.log(`--- kontobro check ---\n${r.out}`);
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      `viaproxy (economic):\n  network: 127.0.0.1:${tlsFront.port} through the proxy ${proxy.url} (from HTTPS_PROXY)\n  ok   reachable: 127.0.0.1:${tlsFront.port} answered`,
    );
    expect(r.out).toMatch(/viaproxy \(economic\):\n(.*\n){2} {2}ok +tokens: Connected/);
    // At least one tunnel: the reachability HEAD and the check's requests may share one pooled tunnel when one ends before
    // the next starts (it failed twice in full runs under load with ≥ 2, never alone).
    expect(proxy.log.slice(before).filter((l) => l === `CONNECT 127.0.0.1:${tlsFront.port}`).length).toBeGreaterThanOrEqual(1);
    // The https target only ever through a tunnel (the agent of the test above may still pull over http).
    expect(
      proxy.log
        .slice(before)
        .filter((l) => l.includes(`:${tlsFront.port}`))
        .every((l) => l === `CONNECT 127.0.0.1:${tlsFront.port}`),
    ).toBe(true);
    expect(r.out).toContain(
      `closed (economic):\n  network: 127.0.0.1:${closed} directly (no proxy for http URLs: HTTP_PROXY is not set)\n  FAIL reachable: Visma e-conomic could not be reached`,
    );
    expect(r.out).toContain("FAIL reachable: The host name kontobro-no-such-host.invalid could not be resolved");
    expect(r.out).toContain("fix: Check the host name in kontobro.toml, the server's DNS, and the proxy settings");

    // NO_PROXY: the https target goes direct; a proxy that is down is named as the proxy.
    const direct = await run({ HTTPS_PROXY: proxy.url, NO_PROXY: "127.0.0.1" });
    expect(direct.out).toContain(
      `network: 127.0.0.1:${tlsFront.port} directly (127.0.0.1:${tlsFront.port} is in NO_PROXY / [proxy] no_proxy)`,
    );
    const down = await run({ HTTPS_PROXY: `http://127.0.0.1:${closed}` });
    expect(down.out).toContain(`FAIL reachable: The proxy http://127.0.0.1:${closed} could not be reached for Visma e-conomic`);
  });
});
