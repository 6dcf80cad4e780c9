// Hosted workers for tests: a real PostgreSQL server (test/pg-server.ts) with one tenant, and workers each with a pool of
// its own, a registered row with real heartbeats, and a dispatcher fenced by them, as `kontobro run` sets them up.
import type { Connector } from "../connectors/contract.ts";
import { openPostgres, type PostgresStorage } from "../agent/db/pg/open.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { Dispatcher, type DispatcherOptions } from "../agent/dispatcher.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { TargetStateStore } from "../agent/target-state.ts";
import { startPgServer, type PgServer } from "./pg-server.ts";

/** The server, the first tenant's id, and every pool opened on it (closed by `stop`). */
export interface HostedCluster {
  server: PgServer;
  tenant: number;
  pools: PostgresStorage[];
  /** A pool of the test's own on the server, closed with the others. */
  pool(): Promise<PostgresStorage>;
  /** One more tenant, by slug; its id. */
  addTenant(slug: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startHostedCluster(): Promise<HostedCluster> {
  const server = await startPgServer();
  const pools: PostgresStorage[] = [];
  const pool = async () => {
    const p = await openPostgres(server.url);
    pools.push(p);
    return p;
  };
  const admin = await pool();
  const addTenant = async (slug: string) => {
    const [row] = (await admin.client.unsafe(
      `INSERT INTO tenants (slug, name, api_token_hash, created_at, updated_at) VALUES ($1, $1, $1, 1, 1) RETURNING id`,
      [slug],
    )) as { id: number }[];
    return Number(row!.id);
  };
  return {
    server,
    tenant: await addTenant("acme"),
    pools,
    pool,
    addTenant,
    stop: async () => {
      for (const p of pools) await p.close().catch(() => {});
      await server.stop();
    },
  };
}

export interface HostedWorkerOptions {
  /** The target's name in the outbox. */
  target: string;
  connector: Connector;
  /** The tenant the worker's outbox serves (default: the cluster's first). */
  tenant?: number;
  timing?: { heartbeatMs: number; deadAfterMs: number };
  /** A fence of the test's own, asked before the worker's (a reason stops every push). */
  fence?: () => string | null;
  /** Started at once (default), or left for the test to start. */
  start?: boolean;
  /** Dispatcher options beside the defaults: concurrency 2, a lease of 60 s, backoff 10-50 ms, idle poll 20 ms, late answers waited for 1 s. */
  dispatcher?: Partial<DispatcherOptions>;
}

/** A worker of its own: a pool, a registered row with real heartbeats, and a dispatcher fenced by them. */
export async function startHostedWorker(cluster: HostedCluster, o: HostedWorkerOptions) {
  const pool = await cluster.pool();
  const worker = await Worker.register(pool.client, o.timing ?? { heartbeatMs: 100, deadAfterMs: 5_000 });
  worker.start();
  const outbox = new Outbox(pool.runner(o.tenant ?? cluster.tenant), Date.now, 900_000, { leaseOwner: worker.id });
  const dispatcher = new Dispatcher(
    o.target,
    o.connector,
    outbox,
    {
      concurrency: 2,
      leaseMs: 60_000,
      backoff: { baseMs: 10, maxMs: 50 },
      idlePollMs: 20,
      keyPrefix: `k-${worker.id}`,
      targetState: new TargetStateStore(outbox.runner),
      soleWorker: false,
      fence: () => o.fence?.() ?? worker.fence(),
      lateAnswerWaitMs: 1_000,
      ...o.dispatcher,
    },
    silentLogger,
    new Metrics(),
    recordSource(outbox.runner),
  );
  if (o.start !== false) dispatcher.start();
  return { pool, worker, outbox, dispatcher };
}
