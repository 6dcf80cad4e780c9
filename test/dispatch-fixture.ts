// What the dispatcher tests share: a target "t" taking customers (held in memory, or a loopback server behind the
// shared HTTP client), a Dispatcher of it with the tests' short timings, and customers queued through the real
// intake. The real Outbox, Dispatcher and IntakeWriter on whatever runner the test gives (test/engines.ts).
import type { Connector } from "../connectors/contract.ts";
import { HttpClient } from "../connectors/http.ts";
import { Dispatcher, type DispatcherOptions } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import type { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { customerEvent } from "./helpers.ts";

/** Target "t" in memory, counting its pushes; with `held`, a push answers only when the test calls answerAll(). */
export function memoryTarget(held: boolean) {
  const answers: (() => void)[] = [];
  const pushed: number[] = [];
  const connector = {
    name: "t",
    kind: "test",
    supports: (e: string) => e === "customer",
    check: async () => [],
    validate: () => [],
    push: (_entity: string, payload: { number: string }) => {
      pushed.push(Number(payload.number));
      const answer = { remoteId: `R-${payload.number}` };
      if (!held) return Promise.resolve(answer);
      return new Promise<typeof answer>((resolve) => answers.push(() => resolve(answer)));
    },
    find: async () => null,
  } as unknown as Connector;
  return { connector, pushed, answerAll: () => answers.splice(0).forEach((answer) => answer()) };
}

/** Target "t" behind the shared HTTP client: each customer POSTed to `${url}/customers` with its idempotency key. */
export function loopbackConnector(url: string, timeoutMs: number): Connector {
  const http = new HttpClient({
    baseHeaders: () => ({}),
    timeoutMs,
    targetTitle: "Test target",
    describeError: (res) => ({ code: `http_${res.status}`, message: `HTTP ${res.status}` }),
  });
  return {
    name: "t",
    kind: "test",
    supports: (e) => e === "customer",
    check: async () => [],
    validate: () => [],
    async push(_entity, payload, ctx) {
      const res = await http.request("POST", `${url}/customers`, { json: payload, headers: { "idempotency-key": ctx.idempotencyKey } });
      return { remoteId: String(res.body.id) };
    },
    find: async () => null,
  };
}

/** A Dispatcher of target "t" with the tests' short timings; `options` overrides them. */
export function testDispatcher(
  outbox: Outbox,
  connector: Connector,
  options: Partial<DispatcherOptions> = {},
  metrics = new Metrics(),
): Dispatcher {
  return new Dispatcher(
    "t",
    connector,
    outbox,
    // A lease taken back waits lateAnswerWaitMs: short here, for the tests of other things.
    {
      concurrency: 2,
      leaseMs: 30_000,
      backoff: { baseMs: 10, maxMs: 50 },
      idlePollMs: 20,
      keyPrefix: "k",
      lateAnswerWaitMs: 500,
      ...options,
    },
    silentLogger,
    metrics,
    recordSource(outbox.runner),
  );
}

/** Customers with these numbers, through the real intake, queued for target "t". */
export async function enqueueCustomers(outbox: Outbox, numbers: number[]): Promise<void> {
  const parsed = parseEvents(numbers.map((n) => customerEvent(n)));
  if (!parsed.ok) throw new Error(`test events invalid: ${JSON.stringify(parsed)}`);
  await new IntakeWriter(outbox, () => ["t"]).submit(parsed.events);
}
