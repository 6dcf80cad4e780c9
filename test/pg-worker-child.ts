// A worker process for test/pg-workers.test.ts: registers on the PostgreSQL at argv[2], prints {"id": …}, then
// beats (heartbeat + recovery of dead workers) and prints {"beat": n, "recovered": …} after each beat, until it is
// killed, stopped with SIGTERM (it leaves cleanly and prints {"stopped": …}), or declared dead ({"lost": true}).
// CLOCK_OFFSET_MS sets this process's clock (Date.now, new Date()) that far off the machine's, as on a server
// whose clock is wrong: the worker must be judged by the database's clock all the same.
import { SQL } from "bun";

const offset = Number(process.env.CLOCK_OFFSET_MS ?? 0);
if (offset !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offset);
      else super(...(args as [string]));
    }
    static override now() {
      return realNow() + offset;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}

// Imported once the clock is set, so nothing below could have kept the machine's.
const { Worker } = await import("../agent/db/pg/workers.ts");
const [url, heartbeatMs, deadAfterMs] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const client = new SQL({ url, max: 2 });
const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
let beats = 0;
const worker = await Worker.register(client, {
  heartbeatMs,
  deadAfterMs,
  onBeat: (recovered) => print({ beat: ++beats, recovered }),
  onError: (e) => print({ error: String(e) }),
  onLost: () => print({ lost: true }),
});
process.on("SIGTERM", async () => {
  print({ stopped: await worker.stop() });
  await client.close();
  process.exit(0);
});
print({ id: worker.id, clock: Date.now(), now: worker.now() });
worker.start();
