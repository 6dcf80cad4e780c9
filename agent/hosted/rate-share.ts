// A target's request rate (requests_per_second and burst of its [[targets]] settings) is per agreement, not per
// process: with N hosted workers pushing to the same targets, each takes 1/N of it (setRateShare), N being the
// workers heard from within dead_after on the database's clock, counted again at every heartbeat. When a worker
// joins, the others learn it at their next beat (within heartbeat_ms): until then the sum may exceed the rate by
// one worker's share, which a target answers with 429 and Retry-After, paused for every worker (target_state).
import type { SQL } from "bun";
import { setRateShare } from "../../connectors/http.ts";

const LIVE_WORKERS = `SELECT count(*)::integer AS n FROM workers WHERE heartbeat_at >= clock_timestamp() - make_interval(secs => $1::float8)`;

/** Counts the live workers (this one included) and sets this process's share of every target's rate; returns the count. */
export async function shareTargetRates(client: SQL, deadAfterMs: number): Promise<number> {
  const [row] = (await client.unsafe(LIVE_WORKERS, [deadAfterMs / 1000])) as { n: number }[];
  const live = Math.max(1, row?.n ?? 1);
  setRateShare(1 / live);
  return live;
}
