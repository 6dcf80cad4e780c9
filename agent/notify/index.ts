// Alerts: e-mail (SMTP) and a JSON webhook when something needs action or recovers, without storms.
//
// Every check_interval_seconds the notifier (1) syncs the alerts table with what needs a person now
// (alerts.ts), (2) composes at most one notice per target per min_interval_minutes from what was not
// announced yet: one problem or recovery in its own words, several in a digest with counts (compose.ts),
// stored as one row per channel in the same transaction that marks the alerts announced, and (3) sends the
// rows that are due. A notice that cannot be sent stays in the database and is tried again with backoff,
// for as long as it takes; the status page shows it (agent/http/status-notify.ts).
//
// Many workers (a hosted tenant, agent/hosted/tenant-runtime.ts) run the same tenant's notifier at once, on the
// tenant's SqlRunner. Steps (1) and (2) are one transaction that first takes the tenant's round turn (the
// `notifier_round` settings row, FOR UPDATE SKIP LOCKED): one round at a time per tenant; a worker that finds the
// turn taken skips its round, as the other composes. Step (3) claims one due notice at a time with a lease: the
// claim moves its next_attempt_at to the end of the lease (noticeLeaseMs), so no other worker finds it due while
// it is being sent; sent, it is marked sent; failed, it gets its backoff (only while the lease is still this
// worker's). A worker that dies mid-send leaves the notice to be sent again once the lease has run out. The
// guarantee is at least once, never a storm: a notice goes twice only when a worker dies (or its send outlasts
// the lease) between the mail server's or webhook's answer and the commit that marks it sent. SQLite: one
// process, the same statements; its write transaction holds the database, so the round turn takes nothing, and
// a claim holds no lease (soleProcess): no other worker is there to keep off, so a notice whose send a crash cut is
// due again at once after the restart, as before leases, instead of waiting out a lease of at least five minutes.
import { hostname } from "node:os";
import { retryDelayMs } from "../backoff.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { registerSecret, type Logger } from "../log.ts";
import { type AlertRow, type Problem, selectAlerts, syncAlerts } from "./alerts.ts";
import { composeNotice } from "./compose.ts";
import type { ScheduledPull } from "./overdue-pulls.ts";
import type { NotificationsConfig } from "./config.ts";
import { mailboxSender, type DemoMailbox } from "./demo-mailbox.ts";
import { mailSender, webhookSender, type NoticeSender, type OutgoingNotice } from "./send.ts";

export interface NotifierOptions {
  /** The tenant's storage: sqliteRunner(db) for the SQLite agent, the tenant's runner on PostgreSQL. */
  storage: SqlRunner;
  config: NotificationsConfig;
  /** Configured targets: name, the connector's title, and whether kontobro.toml pauses it. */
  targets: { name: string; title: string; paused?: boolean }[];
  /** The scheduled pull jobs (the scheduler's): one that has not completed for too long is told (overdue-pulls.ts). */
  pulls?: ScheduledPull[];
  /** psa.webhook_url is set (kontobro sends the pulled items), else the PSA reads the feed: said when they pile up. */
  psaWebhook?: boolean;
  /** Problems only this process knows of, not the database (the SQLite agent's failed WAL fsync, agent/durability.ts). */
  problems?: () => Problem[];
  /** The status page's address for the links (a function: the port may be known only once the server listens). */
  statusUrl: string | (() => string);
  log: Logger;
  version: string;
  /** Sent notices and resolved alerts older than this many days are removed (0 keeps them). */
  retentionDays?: number;
  now?: () => number;
  /**
   * This process is the only one that sends the storage's notices (the SQLite agent, holding the data directory's
   * instance lock): a notice is claimed without a lease, so one left claimed by a process that died is due at once.
   */
  soleProcess?: boolean;
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
/** Rounds that failed in a row (the database cannot be read or written) before that is told directly: a minute at the default interval. */
const FAILED_ROUNDS_TOLD = 6;
const PRUNE_EVERY_MS = 3_600_000;

/**
 * How long a claimed notice is not due for anyone else: far longer than a send may take (every channel's timeout
 * applies per step, connect, greeting, each reply), so a live worker's send is never taken over. Pure.
 */
export function noticeLeaseMs(config: NotificationsConfig): number {
  return Math.max(300_000, 4 * Math.max(config.smtp?.timeout_ms ?? 0, config.webhook?.timeout_ms ?? 0));
}

// The tenant's round turn (see the top of this file): created by the first round, then locked by each, or skipped.
const ROUND_TURN = `SELECT name FROM settings WHERE name = 'notifier_round' FOR UPDATE SKIP LOCKED`;
const ROUND_TURN_ROW = `INSERT INTO settings (name, value) VALUES ('notifier_round', '') ON CONFLICT (name) DO NOTHING`;

/** Takes the tenant's round turn for `tx`; false when another worker's round holds it (PostgreSQL). */
async function takeRoundTurn(tx: SqlRunner): Promise<boolean> {
  const locked = await tx.lockForUpdate(ROUND_TURN);
  if (locked !== 0) return true; // taken (PostgreSQL), or nothing to take (SQLite: null)
  // No row yet (the tenant's first round), or held by another round: the INSERT does nothing then.
  await tx.run(ROUND_TURN_ROW);
  return (await tx.lockForUpdate(ROUND_TURN)) !== 0;
}

// Claims the oldest due notice: its next_attempt_at becomes the end of the lease. Two workers may pick the same id;
// the second's UPDATE finds it no longer due (PostgreSQL checks the row again after the first commits) and claims
// nothing this round.
const CLAIM = `UPDATE notifications SET next_attempt_at = ?2
  WHERE id = (SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT 1)
    AND status = 'pending' AND next_attempt_at <= ?1
  RETURNING id, batch, target, channel, recipients, subject, body, payload, attempts`;
const MARK_SENT = `UPDATE notifications SET status = 'sent', attempts = ?2, sent_at = ?3, last_error = NULL WHERE id = ?1 AND status = 'pending'`;
// Only while the lease is still this worker's: a late failure never shortens another worker's lease.
const MARK_FAILED = `UPDATE notifications SET attempts = ?2, next_attempt_at = ?3, last_error = ?4
  WHERE id = ?1 AND status = 'pending' AND next_attempt_at = ?5`;
// The clock went back (NTP correcting a clock that ran ahead, a VM restored): a notice's retry or lease end, set by the
// clock as it was, lies ahead by as much, and the notice would wait that long (a day back: a day with no alert). No
// time this file sets lies further ahead than the longest backoff or lease (?1 is now plus that and a slack), so one
// beyond it was set by a clock ahead of now: it is due then instead. One range of notifications_due; none normally.
const CAP_AHEAD = `UPDATE notifications SET next_attempt_at = ?1 WHERE status = 'pending' AND next_attempt_at > ?1`;
/** CAP_AHEAD's slack: workers' clocks (each the database's as its heartbeat measured it) differ by far less. */
const CAP_SLACK_MS = 60_000;

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
  /**
   * Rounds failing in a row: the database cannot be read or written (full, read-only, gone), so no problem can be stored
   * or told the usual way; after FAILED_ROUNDS_TOLD it is told directly, once, and so is its end (tellDirectly).
   */
  private failing: { rounds: number; message: string; told: boolean } | null = null;

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
      await this.o.storage.transaction(async (tx) => {
        if (!(await takeRoundTurn(tx))) return; // another worker's round of this tenant is under way
        await syncAlerts(tx, now, this.o.problems?.(), {
          targets: this.o.targets,
          stalledAfterMs: this.o.config.stalled_after_minutes * 60_000,
          ...(this.o.pulls ? { pulls: this.o.pulls } : {}),
          unread: { afterMs: this.o.config.psa_unread_after_minutes * 60_000, webhook: this.o.psaWebhook === true },
          now,
        });
        await this.compose(tx, now);
      });
      await this.sendDue();
      if (now - this.lastPrune >= PRUNE_EVERY_MS) {
        await this.prune(now);
        this.lastPrune = now;
      }
      if (this.failing?.told)
        await this.tellDirectly(
          "kontobro writes its database again",
          `kontobro on ${this.host} reads and writes its database again; the problems and notices it could not store meanwhile follow as usual.`,
        );
      this.failing = null;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.failing = { rounds: (this.failing?.rounds ?? 0) + 1, message, told: this.failing?.told ?? false };
      this.o.log.warn("notifications: could not check for problems or send notices; trying again", { error: e });
      if (this.failing.rounds >= FAILED_ROUNDS_TOLD && !this.failing.told) {
        this.failing.told = true;
        await this.tellDirectly(
          "the database cannot be written: nothing is delivered",
          [
            `kontobro on ${this.host} cannot use its database: ${message}`,
            "",
            "Nothing is delivered to the targets and the PSA's events are refused (it sends them again later) until it can.",
            "How to fix: check the free disk space and that the user running kontobro may write the data directory (a read-only",
            "file system, permissions); /readyz says what fails. kontobro goes on by itself once the database takes writes.",
          ].join("\n"),
        );
      }
    }
  }

  /**
   * A notice that cannot be stored first (the database is what fails): sent at once on every channel, to every recipient
   * of every target, and not retried (the next failing stretch tells it again). Never throws.
   */
  private async tellDirectly(headline: string, text: string): Promise<void> {
    const recipients = [...new Set([...this.o.config.recipients, ...Object.values(this.o.config.target_recipients).flat()])];
    const statusUrl = typeof this.o.statusUrl === "string" ? this.o.statusUrl : this.o.statusUrl();
    const subject = `[kontobro] ${headline}`;
    const body = `${text}\n\nStatus page: ${statusUrl}\n\n--\nkontobro ${this.o.version}.\nRecipients are set in kontobro.toml, [notifications].\n`;
    const payload = JSON.stringify({
      type: "kontobro.notice",
      version: this.o.version,
      host: this.host,
      target: "",
      subject,
      text: `kontobro: ${headline}\n${text}`,
      statusPage: statusUrl,
      at: new Date(this.now()).toISOString(),
      problems: [],
      resolved: [],
    });
    const notice = { id: 0, batch: 0, target: "", subject, body, payload };
    for (const [channel, sender] of Object.entries(this.senders) as [Channel, NoticeSender | undefined][]) {
      if (!sender || (channel === "email" && recipients.length === 0)) continue;
      try {
        await sender.send({ ...notice, recipients: channel === "email" ? recipients : [] });
      } catch (e) {
        this.o.log.error("could not send the notice that the database cannot be written", { channel, subject, error: e });
      }
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

  /** Per target with news and no notice within min_interval_minutes: one notice, per channel a row (in the round's `tx`). */
  private async compose(tx: SqlRunner, now: number): Promise<void> {
    const targets = (
      await tx.all<{ target: string }>(
        `SELECT DISTINCT target FROM alerts WHERE opened_batch IS NULL OR (resolved_at IS NOT NULL AND resolved_batch IS NULL) ORDER BY target`,
      )
    ).map((r) => r.target);
    const intervalMs = this.o.config.min_interval_minutes * 60_000;
    for (const target of targets) {
      const last = (await tx.get<{ t: number | null }>(`SELECT max(created_at) AS t FROM notifications WHERE target = ?1`, target))!.t;
      if (last !== null && now - last < intervalMs) continue;
      const news = await selectAlerts(
        tx,
        "target = ?1 AND (opened_batch IS NULL OR (resolved_at IS NOT NULL AND resolved_batch IS NULL))",
        target,
      );
      const opened = news.filter((a) => a.openedBatch === null && a.resolvedAt === null);
      const wentAway = news.filter((a) => a.openedBatch === null && a.resolvedAt !== null);
      const resolved = news.filter((a) => a.openedBatch !== null && a.resolvedAt !== null);
      const channels = this.channelsFor(target);
      const tell = opened.length + resolved.length > 0 && channels.length > 0;
      const batch = tell ? (await tx.get<{ b: number }>(`SELECT coalesce(max(batch), 0) + 1 AS b FROM notifications`))!.b : 0;
      // Problems that came and went before anyone was told are only counted; with no channel for the
      // target (no recipients, no webhook) everything is marked as told (batch 0).
      for (const a of [...opened, ...wentAway]) await tx.run(`UPDATE alerts SET opened_batch = ?2 WHERE id = ?1`, a.id, batch);
      for (const a of [...resolved, ...wentAway]) await tx.run(`UPDATE alerts SET resolved_batch = ?2 WHERE id = ?1`, a.id, batch);
      if (!tell) continue;
      await this.store(tx, target, channels, { opened, resolved, cameAndWent: wentAway.length, now, batch });
    }
    await this.remind(tx, now, targets);
  }

  /**
   * Targets with problems still open remind_after_hours after their last notice (and no news now) get them all again in
   * one reminder: a first mail missed, filtered or deleted does not leave a problem unseen for days.
   */
  private async remind(tx: SqlRunner, now: number, toldNow: string[]): Promise<void> {
    const afterMs = this.o.config.remind_after_hours * 3_600_000;
    if (afterMs <= 0) return;
    const open = await tx.all<{ target: string }>(
      `SELECT DISTINCT target FROM alerts WHERE resolved_at IS NULL AND opened_batch > 0 ORDER BY target`,
    );
    for (const { target } of open) {
      if (toldNow.includes(target)) continue;
      const channels = this.channelsFor(target);
      if (channels.length === 0) continue;
      const last = (await tx.get<{ t: number | null }>(`SELECT max(created_at) AS t FROM notifications WHERE target = ?1`, target))!.t;
      if (last !== null && now - last < afterMs) continue;
      const still = await selectAlerts(tx, "target = ?1 AND resolved_at IS NULL AND opened_batch > 0", target);
      const batch = (await tx.get<{ b: number }>(`SELECT coalesce(max(batch), 0) + 1 AS b FROM notifications`))!.b;
      await this.store(tx, target, channels, { opened: still, resolved: [], cameAndWent: 0, now, batch, reminderSince: last });
    }
  }

  /** Composes one notice for `target` and stores it, one row per channel (in the round's `tx`). */
  private async store(
    tx: SqlRunner,
    target: string,
    channels: { channel: Channel; recipients?: string[] }[],
    n: { opened: AlertRow[]; resolved: AlertRow[]; cameAndWent: number; now: number; batch: number; reminderSince?: number | null },
  ): Promise<void> {
    const { now, batch } = n;
    const stillOpen = (await tx.get<{ n: number }>(`SELECT count(*) AS n FROM alerts WHERE target = ?1 AND resolved_at IS NULL`, target))!
      .n;
    const notice = composeNotice({
      target,
      targetTitle: this.o.targets.find((t) => t.name === target)?.title ?? target,
      host: this.host,
      statusUrl: typeof this.o.statusUrl === "string" ? this.o.statusUrl : this.o.statusUrl(),
      opened: n.opened,
      resolved: n.resolved,
      cameAndWent: n.cameAndWent,
      ...(n.reminderSince !== undefined ? { reminderSince: n.reminderSince } : {}),
      stillOpen,
      minIntervalMinutes: this.o.config.min_interval_minutes,
      version: this.o.version,
      now,
    });
    for (const { channel, recipients } of channels) {
      await tx.run(
        `INSERT INTO notifications (batch, target, channel, recipients, subject, body, payload, status, next_attempt_at, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)`,
        batch,
        target,
        channel,
        recipients ? JSON.stringify(recipients) : null,
        notice.subject,
        notice.text,
        JSON.stringify(notice.payload),
        now,
      );
    }
  }

  private channelsFor(target: string): { channel: Channel; recipients?: string[] }[] {
    const out: { channel: Channel; recipients?: string[] }[] = [];
    const recipients = this.recipientsFor(target);
    if (this.senders.email && recipients.length > 0) out.push({ channel: "email", recipients });
    if (this.senders.webhook) out.push({ channel: "webhook" });
    return out;
  }

  /** Sends the due notices one by one, oldest first, each claimed with a lease; a failure is recorded and retried with backoff. */
  private async sendDue(): Promise<void> {
    // A lease keeps other workers off a notice being sent; a sole process has none to keep off (see the top).
    const leaseMs = this.o.soleProcess ? 0 : noticeLeaseMs(this.o.config);
    const latest = Math.max(this.o.config.retry_max_ms, leaseMs) + CAP_SLACK_MS;
    await this.o.storage.run(CAP_AHEAD, this.now() + latest);
    for (let sent = 0; sent < SEND_BATCH && !this.stopping; sent++) {
      const now = this.now();
      const leaseEnd = now + leaseMs;
      const row = await this.o.storage.get<any>(CLAIM, now, leaseEnd);
      if (!row) return; // nothing due, or another worker claimed it first
      const sender = this.senders[row.channel as Channel];
      const notice: OutgoingNotice = { ...row, recipients: row.recipients ? JSON.parse(row.recipients) : [] };
      const attempts = row.attempts + 1;
      try {
        if (!sender) throw new Error(`the ${row.channel} channel is no longer configured ([notifications] in kontobro.toml)`);
        await sender.send(notice);
      } catch (e) {
        const delay = retryDelayMs(attempts, { baseMs: this.o.config.retry_base_ms, maxMs: this.o.config.retry_max_ms });
        const message = e instanceof Error ? e.message : String(e);
        await this.o.storage.run(MARK_FAILED, row.id, attempts, this.now() + delay, message, leaseEnd);
        this.o.log.warn("a notice could not be sent; it is kept and tried again", {
          channel: row.channel,
          target: row.target,
          attempt: attempts,
          error: message,
        });
        continue;
      }
      // Sent: a worker that dies before this commit leaves it to be sent again after the lease (at least once).
      await this.o.storage.run(MARK_SENT, row.id, attempts, this.now());
      this.o.log.info("notice sent", { channel: row.channel, target: row.target, subject: row.subject });
    }
  }

  /**
   * Sent notices and told, resolved alerts older than the retention period; and notices never sent in that time (a mail
   * server or webhook broken for good): they would otherwise pile up for years, each retried, and all arrive at once,
   * long stale, when the channel works again. Their problems stay on the status page, and a reminder tells those still
   * open anew (remind_after_hours). The drop is logged; /metrics showed the oldest unsent notice's age before it.
   */
  private async prune(now: number): Promise<void> {
    const days = this.o.retentionDays ?? 0;
    if (days <= 0) return;
    const cutoff = now - days * 86_400_000;
    await this.o.storage.run(`DELETE FROM notifications WHERE status = 'sent' AND sent_at < ?1`, cutoff);
    const stale = await this.o.storage.run(`DELETE FROM notifications WHERE status = 'pending' AND created_at < ?1`, cutoff);
    if (stale.changes > 0)
      this.o.log.warn(
        `dropped ${stale.changes} notice(s) not sent in ${days} days (retention_days); the problems they told of are on the status page`,
        {
          dropped: stale.changes,
          hint: "Check [notifications] in kontobro.toml (the mail server, the webhook URL): the status page's Notifications card shows why notices are not sent.",
        },
      );
    await this.o.storage.run(`DELETE FROM alerts WHERE resolved_at < ?1 AND resolved_batch IS NOT NULL`, cutoff);
  }
}

/** The status page as the recipients reach it: status_page_url, else the address kontobro listens on. */
export function statusPageUrl(config: NotificationsConfig, http: { host: string; port: number }): string {
  if (config.status_page_url) return config.status_page_url;
  return listenUrl(http);
}

/**
 * A hosted tenant's status page as its recipients reach it: the tenant's own status_page_url, else /t/<slug>/ on the
 * installation's [http] public_url, else on the address this worker listens on. Pure.
 */
export function tenantStatusPageUrl(
  config: NotificationsConfig,
  http: { host: string; port: number; public_url?: string },
  slug: string,
): string {
  if (config.status_page_url) return config.status_page_url;
  const base = http.public_url ?? listenUrl(http);
  return `${base.endsWith("/") ? base : `${base}/`}t/${encodeURIComponent(slug)}/`;
}

function listenUrl(http: { host: string; port: number }): string {
  const host = http.host === "0.0.0.0" || http.host === "::" ? hostname() : http.host.includes(":") ? `[${http.host}]` : http.host;
  return `http://${host}:${http.port}/`;
}
