// A hosted worker's heartbeat has a connection of its own (agent/hosted/worker.ts: storage.separatePool(1)). On
// PostgreSQL a token refresh holds one of the main pool's connections for its whole token request
// (agent/credentials.ts), so with as many slow refreshes under way as the pool has connections (tokens of ten targets
// expiring together, an identity server answering slowly), a heartbeat on that pool waited for a connection: the worker
// fenced itself, and past dead_after the others would have declared it dead. Real parts: a real PostgreSQL server, the
// e-accounting OAuth sandbox with a slow token endpoint, the real credential store and worker.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { tenantCredentialStore } from "../agent/credentials.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { OAuthTokens } from "../connectors/eaccounting/auth.ts";
import { tokenUrl } from "../connectors/eaccounting/config.ts";
import { eaccounting } from "../connectors/eaccounting/index.ts";
import { DEMO, startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";
import { targetConfig } from "./eaccounting-fixtures.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`the heartbeat's own connection skipped: ${unavailable}`);

let server: PgServer;
let storage: PostgresStorage;
beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  storage = await openPostgres(server.url, { connection: { idle_in_transaction_session_timeout: 5000 } });
}, 120_000);
afterAll(async () => {
  await storage?.close();
  await server?.stop();
});

describe.skipIf(!!unavailable)("a worker's heartbeat", () => {
  test("is not held up by ten slow token refreshes that take every connection of the main pool", async () => {
    const srv = startEaccountingSandbox();
    try {
      const ctl = async (path: string, body: unknown = {}) =>
        (await (await fetch(`${srv.url}/__sandbox/${path}`, { method: "POST", body: JSON.stringify(body) })).json()) as any;
      const [row] = (await storage.client.unsafe(
        `INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ('t', 't', 't', 1, 1) RETURNING id`,
      )) as { id: number }[];
      const runner = storage.runner(row!.id);
      const url = tokenUrl(eaccounting.configSchema.parse(targetConfig(srv.url)));
      const tokens = [];
      for (let i = 0; i < 10; i++) {
        const { refresh_token } = await ctl("oauth/grant");
        tokens.push(
          new OAuthTokens({
            target: `ledger${i}`,
            tokenUrl: url,
            clientId: DEMO.clientId,
            clientSecret: DEMO.clientSecret,
            bootstrapRefreshToken: refresh_token,
            store: tenantCredentialStore(runner, `ledger${i}`),
            timeoutMs: 4000,
          }),
        );
      }
      await ctl("faults", { path: "^/connect/token", fault: "latency", latencyMs: 2500, count: 10 });
      const worker = await Worker.register(storage.separatePool(1), { heartbeatMs: 100, deadAfterMs: 1200 });
      worker.start();
      await Bun.sleep(300);
      expect(worker.fence()).toBeNull();
      const refreshes = Promise.all(tokens.map((t) => t.get()));
      const fenced: string[] = [];
      let done = false;
      void refreshes.finally(() => (done = true));
      while (!done) {
        const why = worker.fence();
        if (why) fenced.push(why);
        await Bun.sleep(50);
      }
      await refreshes;
      await worker.stop();
      expect(fenced).toEqual([]);
    } finally {
      await srv.stop();
    }
  }, 60_000);
});
