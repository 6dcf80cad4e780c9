// A worker process for test/pull-dead-worker.test.ts: registers on the PostgreSQL at argv[2] and beats (heartbeat
// argv[4] ms, dead after argv[5] ms), then runs one scheduled pull (slot argv[6]) of eco/expenses in tenant argv[3]
// against a fake target of 3 pages whose second page never comes (test/paged-target.ts). It prints {"id": …} once
// registered and {"pulling": cursor} at each page asked for; the test kills it mid-run.
import { SQL } from "bun";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { postgresRunner } from "../agent/db/pg/runner.ts";
import { Worker } from "../agent/db/pg/workers.ts";
import { silentLogger } from "../agent/log.ts";
import { Inbox } from "../agent/pulls/inbox.ts";
import { runPull } from "../agent/pulls/runner.ts";
import { tempDir } from "./helpers.ts";
import { pagedTarget } from "./paged-target.ts";

const [url, tenant, heartbeatMs, deadAfterMs, slot] = [process.argv[2]!, ...process.argv.slice(3, 7).map(Number)] as [
  string,
  number,
  number,
  number,
  number,
];
const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
const client = new SQL({ url, max: 2 });
const worker = await Worker.register(client, { heartbeatMs, deadAfterMs, onError: (e) => print({ error: String(e) }) });
worker.start();
print({ id: worker.id });
const target = pagedTarget({ pages: 3, holdAt: "1" });
const { pull } = target.connector;
target.connector.pull = async (stream, cursor) => {
  print({ pulling: cursor });
  return pull(stream, cursor);
};
const storage = postgresRunner(client, tenant);
const result = await runPull(
  {
    db: openDatabase(join(tempDir("kontobro-pull-child-"), "k.db")),
    storage,
    inbox: new Inbox(storage),
    dataDir: null,
    worker: worker.id,
    connectors: new Map([["eco", target.connector]]),
    log: silentLogger,
  },
  { target: "eco", stream: "expenses", timezone: "UTC" },
  "schedule",
  slot,
);
print({ result });
