// A real agent (SQLite file, HTTP server, dispatcher, pulls, PSA webhook) against the eAccounting sandbox and a
// fake PSA endpoint, all over loopback. Pulls run only when a test asks (their schedules are switched off).
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { createLogger, silentLogger } from "../agent/log.ts";
import { startEaccountingSandbox, type EaccountingSandboxOptions } from "../connectors/eaccounting/sandbox/index.ts";
import { targetConfig } from "./eaccounting-fixtures.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { PSA_SECRET, startPsaReceiver } from "./pull-harness.ts";

export const TOKEN = "test-token-0123456789";
const OFF = { cron: "0 0 1 1 *", timezone: "Europe/Stockholm", enabled: false };
export const STREAMS = ["customers", "products", "invoices", "expenses"];

export interface EaStack {
  agent: RunningAgent;
  sandboxUrl: string;
  dataDir: string;
  psa: ReturnType<typeof startPsaReceiver>;
  send(events: object[]): Promise<void>;
  deliveries(status?: string): Promise<any[]>;
  api(path: string, init?: RequestInit): Promise<{ status: number; body: any }>;
  control(path: string, body?: unknown, method?: string): Promise<any>;
  state(): Promise<any>;
  runNow(stream: string): Promise<any>;
  /** Everything in the feed (acknowledging nothing): items the PSA can read. */
  feed(): Promise<any[]>;
  page(): Promise<string>;
  waitDone(n: number): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startEaStack(
  o: { target?: Record<string, unknown>; sandbox?: EaccountingSandboxOptions; dataDir?: string } = {},
): Promise<EaStack> {
  const srv = startEaccountingSandbox(o.sandbox);
  const psa = startPsaReceiver();
  const dataDir = o.dataDir ?? tempDir("kontobro-ea-e2e-");
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: dataDir },
      http: { port: 0, api_token: TOKEN },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50, missing_record_grace_minutes: 60 },
      psa: { webhook_url: psa.url, webhook_secret: PSA_SECRET, retry_base_ms: 20, retry_max_ms: 200, poll_ms: 50 },
      pulls: { webhook_debounce_ms: 50 },
      targets: [
        { name: "ea", kind: "eaccounting", ...targetConfig(srv.url), pulls: Object.fromEntries(STREAMS.map((s) => [s, OFF])), ...o.target },
      ],
    },
    {},
  );
  const log = process.env.KONTOBRO_TEST_LOG ? createLogger("debug") : silentLogger;
  const control = async (path: string, body?: unknown, method = body === undefined ? "GET" : "POST") => {
    const res = await fetch(`${srv.url}/__sandbox/${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
    const out = (await res.json()) as any;
    if (res.status >= 300) throw new Error(`sandbox ${path}: ${res.status} ${JSON.stringify(out)}`);
    return out;
  };
  const s: EaStack = {
    agent: await startAgent(config, targets, log),
    sandboxUrl: srv.url,
    dataDir,
    psa,
    control,
    async api(path, init = {}) {
      const res = await fetch(`${s.agent.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...(init.headers as Record<string, string>) },
      });
      const text = await res.text();
      let body: any = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body };
    },
    async send(events) {
      const res = await s.api("/api/v1/events", { method: "POST", body: JSON.stringify(events) });
      if (res.status !== 202) throw new Error(`events refused: ${JSON.stringify(res.body)}`);
    },
    deliveries: async (status) => (await s.api(`/api/v1/deliveries?limit=1000${status ? `&status=${status}` : ""}`)).body.deliveries,
    state: () => control("state"),
    runNow: async (stream) => (await s.api(`/api/v1/pulls/ea/${stream}`, { method: "POST" })).body,
    feed: async () => [...(await s.api("/api/v1/inbox/ignored?limit=1000")).body.items, ...s.psa.accepted()],
    page: async () => (await fetch(`${s.agent.url}/`)).text(),
    waitDone: (n) => waitFor(`${n} deliveries done`, async () => (await s.deliveries("done")).length >= n).then(() => {}),
    async restart() {
      await s.agent.stop();
      s.agent = await startAgent(config, targets, log);
    },
    async stop() {
      await s.agent.stop();
      psa.stop();
      await srv.stop();
    },
  };
  return s;
}

let n = 0;
export const ev = (type: string, data: object) => ({ id: `${type}-${++n}-${Math.random()}`, type, data });
