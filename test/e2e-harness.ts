// A real agent (SQLite file, HTTP server, dispatcher) and a real e-conomic sandbox, over loopback.
import { join } from "node:path";
import { startAgent, type AgentExtras, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { createLogger, type Logger, silentLogger } from "../agent/log.ts";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { tempDir, waitFor } from "./helpers.ts";

export interface Stack {
  agent: RunningAgent;
  sandboxUrl: string;
  dataDir: string;
  post(body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  deliveries(status?: string): Promise<any[]>;
  sandboxState(): Promise<any>;
  addFaults(...rules: object[]): Promise<void>;
  waitDelivered(count: number): Promise<void>;
  restart(): Promise<void>;
  /** Restart with changed settings of the target (e.g. unpaused). */
  restartWith(target: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

export async function startStack(
  options: {
    dataDir?: string;
    economic?: Record<string, unknown>;
    dispatch?: Record<string, unknown>;
    http?: Record<string, unknown>;
    agent?: Record<string, unknown>;
    /** Other sections of kontobro.toml as they are (exports, notifications, psa, pulls). */
    sections?: Record<string, unknown>;
    /** What only `kontobro demo` adds (the demo mailbox). */
    extras?: AgentExtras;
    /** Where the agent logs (default: nowhere, or stderr with KONTOBRO_TEST_LOG set). */
    log?: Logger;
  } = {},
): Promise<Stack> {
  const sandbox = await startEconomicSandbox({ port: 0 });
  const dataDir = options.dataDir ?? tempDir("kontobro-e2e-");
  const { config, targets } = validateConfig(
    {
      ...options.sections,
      agent: { data_dir: dataDir, ...options.agent },
      http: { port: 0, api_token: "test-token-0123456789", ...options.http },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50, lease_seconds: 30, ...options.dispatch },
      targets: [
        {
          name: "eco",
          kind: "economic",
          rest_url: sandbox.url,
          projects_url: `${sandbox.url}/projectsapi/v1.1.0`,
          app_secret_token: "demo-app-secret",
          agreement_grant_token: "demo-agreement-grant",
          requests_per_second: 0,
          ...options.economic,
        },
      ],
    },
    {},
  );
  const log = options.log ?? (process.env.KONTOBRO_TEST_LOG ? createLogger("debug") : silentLogger);
  const stack: Stack = {
    agent: await startAgent(config, targets, log, options.extras),
    sandboxUrl: sandbox.url,
    dataDir,
    async post(body, headers = {}) {
      const res = await fetch(`${stack.agent.url}/api/v1/events`, {
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
        headers: { authorization: "Bearer test-token-0123456789", "content-type": "application/json", ...headers },
      });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    async deliveries(status) {
      const res = await fetch(`${stack.agent.url}/api/v1/deliveries?limit=1000${status ? `&status=${status}` : ""}`, {
        headers: { authorization: "Bearer test-token-0123456789" },
      });
      return ((await res.json()) as any).deliveries;
    },
    async sandboxState() {
      return (await fetch(`${sandbox.url}/__sandbox/state`)).json();
    },
    async addFaults(...rules) {
      const res = await fetch(`${sandbox.url}/__sandbox/faults`, {
        method: "POST",
        body: JSON.stringify({ rules }),
        headers: { "content-type": "application/json" },
      });
      if (res.status !== 201) throw new Error(`fault rules refused: ${await res.text()}`);
    },
    async waitDelivered(count) {
      await waitFor(`${count} delivered`, async () => (await stack.deliveries("done")).length >= count);
    },
    async restart() {
      await stack.agent.stop();
      stack.agent = await startAgent(config, targets, log, options.extras);
    },
    async restartWith(change) {
      await stack.agent.stop();
      stack.agent = await startAgent(
        config,
        targets.map((t) => ({ ...t, ...change })),
        log,
        options.extras,
      );
    },
    async stop() {
      await stack.agent.stop();
      await sandbox.stop();
    },
  };
  return stack;
}

export { join };
