// Items pulled for the PSA that nobody takes: the PSA reads the feed (GET /api/v1/inbox) and stopped (or never began),
// or psa.webhook_url is set and nothing sends them. The PSA webhook's own alert (alerts.ts, kind "psa") counts refused
// webhook attempts; in feed mode there are none, so without this check expenses and payment statuses piled up unseen.
// One alert per target (kind "psa", subject "unread"), resolved once nothing ready that long is left.
import type { SqlRunner } from "../db/pg/runner.ts";
import { showTime } from "../time.ts";
import { PSA_ALERT_ATTEMPTS, type Problem } from "./alerts.ts";
import { showAge } from "./stalled.ts";

export const UNREAD_SUBJECT = "unread";

export interface UnreadCheck {
  /** An item ready for the PSA this long and not taken is told; 0: never. */
  afterMs: number;
  /** psa.webhook_url is set: kontobro sends the items; else the PSA reads them from the feed. */
  webhook: boolean;
  now: number;
}

// One range of inbox_state (state, seq) over the items not taken yet. An item's seq is handed out from the clock (in
// microseconds) when it becomes ready for the PSA (stored, or its project arrived): seq / 1000 is when, in ms.
// Targets whose items the webhook has refused that often are told by the PSA webhook's alert already.
const UNREAD = `SELECT target, count(*) AS n, min(seq) AS oldest, max(attempts) AS attempts FROM inbox WHERE state = 'new'
  GROUP BY target ORDER BY target`;

/** The targets whose items have been ready for the PSA longer than `afterMs`, one problem each. */
export async function unreadInbox(db: SqlRunner, check: UnreadCheck): Promise<Problem[]> {
  if (check.afterMs <= 0) return [];
  const rows = await db.all<{ target: string; n: number; oldest: number; attempts: number }>(UNREAD);
  const problems: Problem[] = [];
  for (const r of rows) {
    const n = Number(r.n);
    const since = Math.floor(Number(r.oldest) / 1000);
    if (Number(r.attempts) >= PSA_ALERT_ATTEMPTS || check.now - since < check.afterMs) continue;
    const items = `${n} item${n === 1 ? "" : "s"}`;
    problems.push({
      target: r.target,
      kind: "psa",
      subject: UNREAD_SUBJECT,
      code: "psa_items_unread",
      message: `${items} pulled from ${r.target} (the oldest ready since ${showTime(since)}) ${n === 1 ? "is" : "are"} not taken by the PSA after ${showAge(check.afterMs)}: ${
        check.webhook ? "the PSA webhook has not sent them" : "the PSA has not read them from the feed GET /api/v1/inbox"
      }.`,
      hint: check.webhook
        ? "Nothing sends them to psa.webhook_url: look in kontobro's log for errors of the PSA webhook sender, and restart kontobro. They are also in the feed GET /api/v1/inbox."
        : "Check that the PSA reads the feed GET /api/v1/inbox with kontobro's API token, passing the previous answer's `next` as `after` (that acknowledges what it read), and that its job runs. Or set psa.webhook_url and psa.webhook_secret in kontobro.toml to have kontobro send them. Nothing is lost meanwhile.",
      detail: { items: n, since },
    });
  }
  return problems;
}
