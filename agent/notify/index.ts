// Alerts: e-mail (SMTP) and a JSON webhook when something needs action or recovers, without storms.
//
// Every check_interval_seconds the notifier (1) syncs the alerts table with what needs a person now
// (alerts.ts), (2) composes at most one notice per target per min_interval_minutes from what was not
// announced yet: one problem or recovery in its own words, several in a digest with counts (compose.ts),
// stored as one row per channel in the same transaction that marks the alerts announced, and (3) sends the
// rows that are due. A notice that cannot be sent stays in the database and is tried again with backoff,
// for as long as it takes; the status page shows it (agent/http/status-notify.ts).
import { hostname } from "node:os";
import { retryDelayMs } from "../backoff.ts";
import type { Db } from "../db/index.ts";
import { registerSecret, type Logger } from "../log.ts";
import { selectAlerts, syncAlerts } from "./alerts.ts";
import { composeNotice } from "./compose.ts";
import type { NotificationsConfig } from "./config.ts";
import { mailboxSender, type DemoMailbox } from "./demo-mailbox.ts";
import { mailSender, webhookSender, type NoticeSender, type OutgoingNotice } from "./send.ts";

export interface NotifierOptions {
  db: Db;
  config: NotificationsConfig;
  /** Configured targets: name and the connector's title. */
  targets: { name: string; title: string }[];
  /** The status page's address for the links (a function: the port may be known only once the server listens). */
  statusUrl: string | (() => string);
  log: Logger;
  version: string;
  /** Sent notices and resolved alerts older than this many days are removed (0 keeps them). */
  retentionDays?: number;
  now?: () => number;
  host?: string;
  /** Replaces the configured channels (tests). */
  senders?: Partial<Record<Channel, NoticeSender>>;
  /** Extra fetch options for the webhook (the outbound proxy). */
  fetchOptions?: () => Record<string, unknown>;
  /** `kontobro demo`: mails are built as for [notifications.smtp] and kept here instead of being sent. */
  mailbox?: DemoMailbox;
}

export type Channel = "email" | "webhook";

const SEND_BATCH = 20;
const PRUNE_EVERY_MS = 3_600_000;

export class Notifier {
  readonly senders: Partial<Record<Channel, NoticeSender>>;
  private readonly now: () => number;
  private readonly host: string;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  /** stop() was called: a round under way sends nothing more (the rest goes after the next start). */
  private stopping = false;
  private lastPrune = 0;

  constructor(private readonly o: NotifierOptions) {
    this.now = o.now ?? Date.now;
    this.host = o.host ?? hostname();
    const ua = `kontobro/${o.version}`;
    // Masked in every log line: the password, and the webhook URL (chat tools put their secret in its path).
    registerSecret(o.config.smtp?.password);
    registerSecret(o.config.webhook?.url);
    registerSecret(o.config.webhook?.secret);
    this.senders = o.senders ?? {
      ...(o.config.smtp ? { email: o.mailbox ? mailboxSender(o.mailbox, o.config.smtp.from, ua) : mailSender(o.config.smtp, ua) } : {}),
      ...(o.config.webhook ? { webhook: webhookSender(o.config.webhook, ua, o.fetchOptions) } : {}),
    };
  }

  /** One round: sync the alerts, compose what may be sent, send what is due. Never throws. */
  async tick(): Promise<void> {
    try {
      const now = this.now();
      syncAlerts(this.o.db, now);
      this.compose(now);
      await this.sendDue();
      if (now - this.lastPrune >= PRUNE_EVERY_MS) {
        this.prune(now);
        this.lastPrune = now;
      }
    } catch (e) {
      this.o.log.warn("notifications: could not check for problems or send notices; trying again", { error: e });
    }
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick().finally(() => {
        this.running = null;
        if (!this.stopped) this.timer = setTimeout(loop, this.o.config.check_interval_seconds * 1000);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    for (const s of Object.values(this.senders)) s?.close();
  }

  private recipientsFor(target: string): string[] {
    return [...new Set([...this.o.config.recipients, ...(this.o.config.target_recipients[target] ?? [])])];
  }

  /** Per target with news and no notice within min_interval_minutes: one notice, per channel a row. */
  private compose(now: number): void {
    const c = this.o.db.$client;
    const targets = (
      c
        .query(`SELECT DISTINCT target FROM alerts WHERE opened_batch IS NULL OR (resolved_at IS NOT NULL AND resolved_batch IS NULL)`)
        .all() as { target: string }[]
    ).map((r) => r.target);
    const intervalMs = this.o.config.min_interval_minutes * 60_000;
    for (const target of targets) {
      const last = (c.query(`SELECT max(created_at) AS t FROM notifications WHERE target = ?1`).get(target) as { t: number | null }).t;
      if (last !== null && now - last < intervalMs) continue;
      c.transaction(() => {
        const news = selectAlerts(
          this.o.db,
          "target = ?1 AND (opened_batch IS NULL OR (resolved_at IS NOT NULL AND resolved_batch IS NULL))",
          target,
        );
        const opened = news.filter((a) => a.openedBatch === null && a.resolvedAt === null);
        const wentAway = news.filter((a) => a.openedBatch === null && a.resolvedAt !== null);
        const resolved = news.filter((a) => a.openedBatch !== null && a.resolvedAt !== null);
        const channels = this.channelsFor(target);
        const tell = opened.length + resolved.length > 0 && channels.length > 0;
        const batch = tell ? (c.query(`SELECT coalesce(max(batch), 0) + 1 AS b FROM notifications`).get() as { b: number }).b : 0;
        // Problems that came and went before anyone was told are only counted; with no channel for the
        // target (no recipients, no webhook) everything is marked as told (batch 0).
        for (const a of [...opened, ...wentAway]) c.run(`UPDATE alerts SET opened_batch = ?2 WHERE id = ?1`, [a.id, batch]);
        for (const a of [...resolved, ...wentAway]) c.run(`UPDATE alerts SET resolved_batch = ?2 WHERE id = ?1`, [a.id, batch]);
        if (!tell) return;
        const stillOpen = (
          c.query(`SELECT count(*) AS n FROM alerts WHERE target = ?1 AND resolved_at IS NULL`).get(target) as { n: number }
        ).n;
        const notice = composeNotice({
          target,
          targetTitle: this.o.targets.find((t) => t.name === target)?.title ?? target,
          host: this.host,
          statusUrl: typeof this.o.statusUrl === "string" ? this.o.statusUrl : this.o.statusUrl(),
          opened,
          resolved,
          cameAndWent: wentAway.length,
          stillOpen,
          minIntervalMinutes: this.o.config.min_interval_minutes,
          version: this.o.version,
          now,
        });
        for (const { channel, recipients } of channels) {
          c.run(
            `INSERT INTO notifications (batch, target, channel, recipients, subject, body, payload, status, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)`,
            [
              batch,
              target,
              channel,
              recipients ? JSON.stringify(recipients) : null,
              notice.subject,
              notice.text,
              JSON.stringify(notice.payload),
              now,
            ],
          );
        }
      }).immediate();
    }
  }

  private channelsFor(target: string): { channel: Channel; recipients?: string[] }[] {
    const out: { channel: Channel; recipients?: string[] }[] = [];
    const recipients = this.recipientsFor(target);
    if (this.senders.email && recipients.length > 0) out.push({ channel: "email", recipients });
    if (this.senders.webhook) out.push({ channel: "webhook" });
    return out;
  }

  /** Sends the due rows one by one, oldest first; a failure is recorded and retried with backoff. */
  private async sendDue(): Promise<void> {
    const c = this.o.db.$client;
    const due = c
      .query(`SELECT id, batch, target, channel, recipients, subject, body, payload, attempts FROM notifications
                          WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2`)
      .all(this.now(), SEND_BATCH) as any[];
    for (const row of due) {
      if (this.stopping) break;
      const sender = this.senders[row.channel as Channel];
      const notice: OutgoingNotice = { ...row, recipients: row.recipients ? JSON.parse(row.recipients) : [] };
      const attempts = row.attempts + 1;
      try {
        if (!sender) throw new Error(`the ${row.channel} channel is no longer configured ([notifications] in kontobro.toml)`);
        await sender.send(notice);
        c.run(`UPDATE notifications SET status = 'sent', attempts = ?2, sent_at = ?3, last_error = NULL WHERE id = ?1`, [
          row.id,
          attempts,
          this.now(),
        ]);
        this.o.log.info("notice sent", { channel: row.channel, target: row.target, subject: row.subject });
      } catch (e) {
        const delay = retryDelayMs(attempts, { baseMs: this.o.config.retry_base_ms, maxMs: this.o.config.retry_max_ms });
        const message = e instanceof Error ? e.message : String(e);
        c.run(`UPDATE notifications SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE id = ?1`, [
          row.id,
          attempts,
          this.now() + delay,
          message,
        ]);
        this.o.log.warn("a notice could not be sent; it is kept and tried again", {
          channel: row.channel,
          target: row.target,
          attempt: attempts,
          error: message,
        });
      }
    }
  }

  /** Sent notices and told, resolved alerts older than the retention period. */
  private prune(now: number): void {
    const days = this.o.retentionDays ?? 0;
    if (days <= 0) return;
    const cutoff = now - days * 86_400_000;
    const c = this.o.db.$client;
    c.run(`DELETE FROM notifications WHERE status = 'sent' AND sent_at < ?1`, [cutoff]);
    c.run(`DELETE FROM alerts WHERE resolved_at < ?1 AND resolved_batch IS NOT NULL`, [cutoff]);
  }
}

/** The status page as the recipients reach it: status_page_url, else the address kontobro listens on. */
export function statusPageUrl(config: NotificationsConfig, http: { host: string; port: number }): string {
  if (config.status_page_url) return config.status_page_url;
  const host = http.host === "0.0.0.0" || http.host === "::" ? hostname() : http.host.includes(":") ? `[${http.host}]` : http.host;
  return `http://${host}:${http.port}/`;
}
