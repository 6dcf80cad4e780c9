// A real agent with pulls (SQLite file, HTTP server, scheduler, PSA webhook deliverer), a real
// e-conomic sandbox and a fake PSA endpoint that checks signatures itself, all over loopback.
import { createHmac, timingSafeEqual } from "node:crypto";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { addDays, todayIn } from "../agent/pulls/cron.ts";
import { createLogger, silentLogger } from "../agent/log.ts";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";

export const TOKEN = "test-token-0123456789";
export const PSA_SECRET = "psa-secret-0123456789abcdef";
export const TZ = "Europe/Copenhagen";
/** A date relative to today in the jobs' time zone. */
export const day = (offset: number) => addDays(todayIn(TZ), offset);

export interface PsaCall {
  signature: string;
  body: string;
  items: any[];
  verified: boolean;
  status: number;
}

/** The PSA's webhook endpoint: verifies Kontobro-Signature on its own, and can fail on purpose. */
export function startPsaReceiver(secret = PSA_SECRET) {
  const calls: PsaCall[] = [];
  let failNext = 0;
  let failing = false;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = await req.text();
      const signature = req.headers.get("kontobro-signature") ?? "";
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature);
      const expected = m ? createHmac("sha256", secret).update(`${m[1]}.${body}`).digest() : Buffer.alloc(32);
      const verified = !!m && timingSafeEqual(expected, Buffer.from(m[2]!, "hex")) && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
      const refused = failing || failNext > 0;
      if (failNext > 0) failNext--;
      const status = refused ? 503 : verified ? 200 : 401;
      calls.push({ signature, body, items: JSON.parse(body).items, verified, status });
      return new Response(status === 200 ? "ok" : "no", { status });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hooks/kontobro`,
    calls,
    /** Items the PSA accepted (answered 2xx), in arrival order. */
    accepted: () => calls.filter((c) => c.status === 200).flatMap((c) => c.items),
    failNext(n: number) {
      failNext = n;
    },
    /** Answers 503 to every call until told otherwise. */
    down(on: boolean) {
      failing = on;
    },
    stop: () => server.stop(true),
  };
}

export interface PullStack {
  agent: RunningAgent;
  sandbox: StartedEconomicSandbox;
  psa: ReturnType<typeof startPsaReceiver>;
  dataDir: string;
  api(path: string, init?: RequestInit): Promise<{ status: number; body: any }>;
  control(path: string, body?: unknown, method?: string): Promise<any>;
  book(vouchers: object[]): Promise<any>;
  runNow(stream: string): Promise<any>;
  sendPsa(events: object[]): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPullStack(
  options: {
    economic?: Record<string, unknown>;
    psa?: Record<string, unknown>;
    pulls?: Record<string, unknown>;
    notifications?: Record<string, unknown>;
    dataDir?: string;
    sandbox?: StartedEconomicSandbox;
  } = {},
): Promise<PullStack> {
  const sandbox = options.sandbox ?? (await startEconomicSandbox({ port: 0 }));
  const psa = startPsaReceiver();
  const dataDir = options.dataDir ?? tempDir("kontobro-pulls-");
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: dataDir },
      http: { port: 0, api_token: TOKEN },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 },
      psa: { webhook_url: psa.url, webhook_secret: PSA_SECRET, retry_base_ms: 20, retry_max_ms: 200, poll_ms: 50, ...options.psa },
      pulls: { webhook_debounce_ms: 50, ...options.pulls },
      ...(options.notifications ? { notifications: options.notifications } : {}),
      targets: [
        {
          name: "eco",
          kind: "economic",
          rest_url: sandbox.url,
          projects_url: sandbox.projectsUrl,
          app_secret_token: "demo-app-secret",
          agreement_grant_token: "demo-agreement-grant",
          requests_per_second: 0,
          ...options.economic,
        },
      ],
    },
    {},
  );
  const log = process.env.KONTOBRO_TEST_LOG ? createLogger("debug") : silentLogger;
  const stack: PullStack = {
    agent: await startAgent(config, targets, log),
    sandbox,
    psa,
    dataDir,
    async api(path, init = {}) {
      const res = await fetch(`${stack.agent.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) },
      });
      const text = await res.text();
      let body: any = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body };
    },
    async control(path, body, method = body === undefined ? "GET" : "POST") {
      const res = await fetch(`${sandbox.url}/__sandbox/${path}`, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
      const out = (await res.json()) as any;
      if (res.status >= 300) throw new Error(`sandbox ${path}: ${res.status} ${JSON.stringify(out)}`);
      return out;
    },
    book: (vouchers) => stack.control("book/supplier-invoices", { vouchers }),
    async runNow(stream) {
      return (await stack.api(`/api/v1/pulls/eco/${stream}`, { method: "POST" })).body;
    },
    async sendPsa(events) {
      const res = await stack.api("/api/v1/events", {
        method: "POST",
        body: JSON.stringify(events),
        headers: { "content-type": "application/json" },
      });
      if (res.status !== 202) throw new Error(`events refused: ${JSON.stringify(res.body)}`);
    },
    async restart() {
      await stack.agent.stop();
      stack.agent = await startAgent(config, targets, log);
    },
    async stop() {
      await stack.agent.stop();
      psa.stop();
      if (!options.sandbox) await sandbox.stop();
    },
  };
  return stack;
}

/** A customer, two projects and an invoice booked through kontobro; waits until they are at e-conomic. */
export async function seedPsa(stack: PullStack, projects: number[] = [4711, 4712], invoices: number[] = []): Promise<void> {
  await stack.sendPsa([
    customerEvent(10042),
    ...projects.map((p) => projectEvent(p, 10042)),
    ...invoices.map((n) => invoiceEvent(n, 10042)),
  ]);
  await waitFor(
    "PSA records at e-conomic",
    async () =>
      (await stack.api("/api/v1/deliveries?status=done&limit=1000")).body.deliveries.length >= 1 + projects.length + invoices.length,
  );
}

export const PDF = Buffer.from("%PDF-1.4\n% receipt\n%%EOF\n");
