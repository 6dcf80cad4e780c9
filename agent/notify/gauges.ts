// /metrics for alerts: how long the oldest open delivery has waited, what needs a person per target, notices not sent yet,
// refused credentials. Read from the database at scrape time (the /metrics route, agent/http/app.ts), through the SqlRunner.
import type { SqlRunner } from "../db/pg/runner.ts";
import type { Gauge } from "../metrics.ts";
import { listRefusedCredentials } from "./credentials.ts";
import { oldestUndelivered } from "./stalled.ts";

export async function alertGauges(db: SqlRunner, targets: string[]): Promise<Gauge[]> {
  const open = await db.all<{ target: string; kind: string; n: number }>(
    `SELECT target, kind, count(*) AS n FROM alerts WHERE resolved_at IS NULL GROUP BY target, kind ORDER BY target, kind`,
  );
  const unsent = await db.all<{ channel: string; n: number; oldest: number }>(
    `SELECT channel, count(*) AS n, min(created_at) AS oldest FROM notifications WHERE status = 'pending' GROUP BY channel ORDER BY channel`,
  );
  const refused = new Set((await listRefusedCredentials(db)).map((r) => r.target));
  const now = Date.now();
  const waited = [];
  for (const target of targets) {
    const oldest = await oldestUndelivered(db, target);
    waited.push({ labels: { target }, value: oldest ? Math.max(0, (now - oldest.createdAt) / 1000) : 0 });
  }
  return [
    {
      name: "kontobro_delivery_oldest_open_age_seconds",
      help: "Seconds since the oldest delivery that is neither delivered nor needing action was queued, by target; 0 when none. Alert when it keeps growing: the queue is stuck.",
      rows: waited,
    },
    {
      name: "kontobro_alerts_open",
      help: "Problems that need a person, by target and kind (delivery, pull, credentials, storage, stalled), as the notifier last saw them.",
      rows: open.map((r) => ({ labels: { target: r.target, kind: r.kind }, value: r.n })),
    },
    {
      name: "kontobro_notifications_unsent",
      help: "Alert notices stored and not sent yet, by channel (email, webhook); they are retried until sent, or dropped after retention_days.",
      rows: unsent.map((r) => ({ labels: { channel: r.channel }, value: r.n })),
    },
    {
      name: "kontobro_notifications_oldest_unsent_age_seconds",
      help: "Seconds since the oldest notice not sent yet was stored, by channel. Alert when it keeps growing: nobody is told of problems.",
      rows: unsent.map((r) => ({ labels: { channel: r.channel }, value: Math.max(0, (now - Number(r.oldest)) / 1000) })),
    },
    {
      name: "kontobro_target_credentials_refused",
      help: "1 while the target refuses kontobro's credentials (a 401 and no success since), else 0.",
      rows: targets.map((t) => ({ labels: { target: t }, value: refused.has(t) ? 1 : 0 })),
    },
  ];
}
