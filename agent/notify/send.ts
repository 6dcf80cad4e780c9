// The two ways a notice leaves: e-mail through the configured SMTP server (nodemailer: STARTTLS, TLS,
// login, timeouts) and a JSON POST to the alert webhook. Each throws with a plain message when it fails;
// the notifier keeps the notice and tries again.
import { readFileSync } from "node:fs";
import type { SendMailOptions, Transporter } from "nodemailer";
import { proxyOption } from "../../connectors/http.ts";
import { signatureHeader } from "../pulls/psa-webhook.ts";
import type { AlertWebhookConfig, SmtpConfig } from "./config.ts";
import type { z } from "zod";

export interface OutgoingNotice {
  id: number;
  batch: number;
  target: string;
  recipients: string[];
  subject: string;
  body: string;
  payload: string;
}

export interface NoticeSender {
  /** What it is, for the status page: "e-mail via smtp.example.com:587 (STARTTLS)". */
  describe(): string;
  send(n: OutgoingNotice): Promise<void>;
  close(): void;
}

/** The message nodemailer builds for a notice: the same for the mail server and for the demo's mailbox (demo-mailbox.ts). */
export function mailMessage(n: OutgoingNotice, from: string, userAgent: string): SendMailOptions {
  return {
    from,
    to: n.recipients,
    subject: n.subject,
    text: n.body,
    headers: {
      // RFC 3834: an automatic message; well-behaved auto-responders do not answer it.
      "Auto-Submitted": "auto-generated",
      "X-Auto-Response-Suppress": "All",
      "X-Kontobro-Target": n.target,
      "X-Kontobro-Notice": String(n.batch),
      "X-Mailer": userAgent,
    },
  };
}

/**
 * nodemailer, loaded when the first mail is built: an agent without e-mail alerts never holds it (about 2 MB of
 * its heap, issue 16's idle memory).
 */
export const loadMailer = () => import("nodemailer").then((m) => m.default);

export function mailSender(smtp: z.infer<typeof SmtpConfig>, userAgent: string): NoticeSender {
  let transport: Promise<Transporter> | null = null;
  const make = async () =>
    (await loadMailer()).createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.security === "tls",
      requireTLS: smtp.security === "starttls",
      ignoreTLS: smtp.security === "none",
      ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? "" } } : {}),
      ...(smtp.ca_file ? { tls: { ca: readFileSync(smtp.ca_file, "utf8") } } : {}),
      connectionTimeout: smtp.timeout_ms,
      greetingTimeout: smtp.timeout_ms,
      socketTimeout: smtp.timeout_ms,
      // One connection per mail: notices are rare, and a pooled connection would go stale between them.
      pool: false,
    });
  const close = () => {
    transport?.then((t) => t.close()).catch(() => undefined);
    transport = null;
  };
  return {
    describe: () =>
      `e-mail via ${smtp.host}:${smtp.port} (${smtp.security === "starttls" ? "STARTTLS" : smtp.security === "tls" ? "TLS" : "no TLS"}) from ${smtp.from}`,
    async send(n) {
      transport ??= make();
      try {
        await (await transport).sendMail(mailMessage(n, smtp.from, userAgent));
      } catch (e) {
        // A fresh transport next time (also when building this one failed, e.g. an unreadable ca_file).
        close();
        throw new Error(describeMailError(e, smtp));
      }
    },
    close,
  };
}

/** nodemailer's errors, in words that say where to look. */
function describeMailError(e: unknown, smtp: z.infer<typeof SmtpConfig>): string {
  const err = e as { code?: string; message?: string; responseCode?: number; response?: string };
  const where = `${smtp.host}:${smtp.port}`;
  const msg = (err.message ?? String(e)).slice(0, 300);
  switch (err.code) {
    case "EAUTH":
      return `the mail server ${where} refused the login (${msg}); check notifications.smtp.user and the password`;
    case "ECONNECTION":
    case "ESOCKET":
      return `cannot connect to the mail server ${where} (${msg}); check host, port and security, and that the server runs`;
    case "ETIMEDOUT":
      return `the mail server ${where} did not answer in time (${msg})`;
    case "ETLS":
      return `TLS with the mail server ${where} failed (${msg}); check security (starttls/tls) and ca_file`;
    case "EENVELOPE":
      return `the mail server ${where} refused the sender or recipients (${msg})`;
    case "EMESSAGE":
      return `the mail server ${where} refused the message (${msg})`;
    case "EDNS":
      return `the mail server's name ${smtp.host} could not be resolved (${msg}); check the host name and DNS`;
    default:
      return `sending through ${where} failed: ${msg}`;
  }
}

export function webhookSender(
  hook: z.infer<typeof AlertWebhookConfig>,
  userAgent: string,
  fetchOptions: () => Record<string, unknown> = () => proxyOption(hook.url),
): NoticeSender {
  const shown = (() => {
    try {
      return new URL(hook.url).origin;
    } catch {
      return "the webhook";
    }
  })();
  return {
    describe: () => `webhook to ${shown} (JSON)`,
    async send(n) {
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": userAgent,
        "x-kontobro-notice": String(n.batch),
      };
      if (hook.secret) headers["kontobro-signature"] = signatureHeader(hook.secret, Math.floor(Date.now() / 1000), n.payload);
      let res: Response;
      try {
        res = await fetch(hook.url, {
          method: "POST",
          headers,
          body: n.payload,
          signal: AbortSignal.timeout(hook.timeout_ms),
          redirect: "manual",
          ...fetchOptions(),
        });
      } catch (e) {
        throw new Error(`the alert webhook at ${shown} could not be reached: ${(e as Error).message}`);
      }
      const text = await res.text().catch(() => "");
      if (!res.ok) throw new Error(`the alert webhook at ${shown} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`);
    },
    close() {},
  };
}
