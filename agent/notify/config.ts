// [notifications] in kontobro.toml: who is told when something needs action or recovers, by e-mail
// (SMTP) and/or a JSON webhook for chat tools, and how often at most.
import { z } from "zod";
import { lazySchema } from "../lazy-schema.ts";

const addressSchema = () => z.email({ error: "must be an e-mail address, e.g. regnskap@example.com" });

export const smtpConfigSchema = () =>
  z
    .strictObject({
      host: z.string().min(1),
      /** 587 for STARTTLS, 465 for TLS, 25 for a relay without TLS. */
      port: z.number().int().min(1).max(65535).default(587),
      /** starttls: plain connection upgraded with STARTTLS (required); tls: TLS from the start; none: no TLS (a local relay only). */
      security: z.enum(["starttls", "tls", "none"]).default("starttls"),
      user: z.string().min(1).optional(),
      password: z.string().min(1).optional(),
      /** The sender, e.g. "kontobro <kontobro@example.com>". */
      from: z.string().min(3),
      /** A PEM file with the CA that signed the mail server's certificate (an internal CA); else the system's CAs. */
      ca_file: z.string().min(1).optional(),
      timeout_ms: z.number().int().min(100).default(30_000),
    })
    .refine((s) => !s.password || s.user, {
      error: "password is set but user is not; set both, or neither for a relay without login",
      path: ["user"],
    });
export const SmtpConfig = lazySchema(smtpConfigSchema);

export const alertWebhookConfigSchema = () =>
  z.strictObject({
    /** Receives a JSON POST per notice; its "text" field suits Slack, Mattermost, Rocket.Chat and Google Chat incoming webhooks. */
    url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }),
    /** Optional: signs the body like the PSA webhook (Kontobro-Signature: t=…,v1=HMAC-SHA256). */
    secret: z.string().min(16, { error: "must be at least 16 characters" }).optional(),
    timeout_ms: z.number().int().min(100).default(10_000),
  });
export const AlertWebhookConfig = lazySchema(alertWebhookConfigSchema);

export const notificationsConfigSchema = () =>
  z.strictObject({
    /** Addresses that get every notice. */
    recipients: z.array(addressSchema()).default([]),
    /** More addresses per target name, on top of recipients: { books = ["regnskap@example.com"] } (books: a [[targets]] name). */
    target_recipients: z.record(z.string(), z.array(addressSchema())).default({}),
    /** The status page as the recipients reach it (linked from every notice). Default: http://<http.host>:<http.port>/ */
    status_page_url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
    /** At most one notice per target in this many minutes; what happens meanwhile comes in one digest. */
    min_interval_minutes: z.number().min(0).default(15),
    /**
     * A target's queue is stuck (one alert) when a delivery that does not need action is still not delivered this many
     * minutes after it was queued: a target down or throttling for hours, a paused target, a dispatcher that stopped. 0: never.
     */
    stalled_after_minutes: z.number().min(0).default(60),
    /**
     * Items pulled for the PSA (expenses, payment statuses) that the PSA has not taken this many minutes after they were
     * ready are told, one alert per target: a PSA that stopped reading the feed, a webhook sender that stopped. 0: never.
     */
    psa_unread_after_minutes: z.number().min(0).default(60),
    /**
     * A target whose problems are still open this many hours after its last notice gets them again (one reminder listing
     * them), so a mail missed or filtered does not leave them unseen for days. 0: told once only.
     */
    remind_after_hours: z.number().min(0).default(24),
    /**
     * A credential with a known end (a Uni Micro client certificate) opens an alert this many days before it, naming
     * the date and how to renew; it stays open once the date has passed, until renewed. 0: never.
     */
    credential_expiry_warn_days: z.number().min(0).default(30),
    /** How often kontobro looks for new and resolved problems. */
    check_interval_seconds: z.number().min(0.01).default(10),
    /** First retry of a notice that could not be sent; doubles up to retry_max_ms. Notices are never dropped. */
    retry_base_ms: z.number().int().min(1).default(30_000),
    retry_max_ms: z.number().int().min(1).default(1_800_000),
    smtp: smtpConfigSchema().optional(),
    webhook: alertWebhookConfigSchema().optional(),
  });
export const NotificationsConfig = lazySchema(notificationsConfigSchema);
export type NotificationsConfig = z.infer<typeof NotificationsConfig>;

/** Problems that need the list of targets (kontobro.toml's [[targets]]), one line each. */
export function notificationProblems(n: NotificationsConfig, targetNames: string[]): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(n.target_recipients)) {
    if (!targetNames.includes(name))
      problems.push(
        `notifications.target_recipients.${name}: there is no target named "${name}"; use one of ${targetNames.join(", ") || "(none configured)"}`,
      );
  }
  const anyone = n.recipients.length > 0 || Object.values(n.target_recipients).some((r) => r.length > 0);
  if (n.smtp && !anyone)
    problems.push("notifications.recipients: [notifications.smtp] is set but nobody gets mail; add recipients (or target_recipients)");
  if (!n.smtp && anyone)
    problems.push("notifications.smtp: recipients are set but there is no mail server; add [notifications.smtp] with host and from");
  return problems;
}

/** Notices go somewhere: e-mail or the webhook is configured. */
export const notificationsEnabled = (n: NotificationsConfig) => Boolean(n.smtp || n.webhook);
