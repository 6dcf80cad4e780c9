// The status page's notifications card: where alerts go, and every notice not sent yet with the reason
// (the mail server is down, the login was refused, …) and the time of the next try. Rendered from one line
// in status-page.ts, on either engine (a hosted tenant's rows only, through its runner); nothing is shown when
// notifications are off and nothing waits.
import { html } from "hono/html";
import type { SqlRunner } from "../db/pg/runner.ts";
import { showTime } from "../time.ts";

interface Unsent {
  id: number;
  target: string;
  channel: string;
  recipients: string | null;
  subject: string;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
}

/**
 * `channels`: how alerts go now (each sender's description: "e-mail to …", "webhook …"), empty when notifications are
 * off.
 */
export async function renderNotificationsSection(runner: SqlRunner, channels: string[]) {
  let unsent: Unsent[] = [];
  let sent = 0;
  let lastSent: number | null = null;
  try {
    unsent = await runner.all<Unsent>(
      `SELECT id, target, channel, recipients, subject, attempts, next_attempt_at AS nextAttemptAt, last_error AS lastError, created_at AS createdAt
         FROM notifications WHERE status = 'pending' ORDER BY id LIMIT 50`,
    );
    const s = await runner.get<{ n: number; t: number | null }>(
      `SELECT count(*) AS n, max(sent_at) AS t FROM notifications WHERE status = 'sent'`,
    );
    sent = Number(s?.n ?? 0);
    lastSent = s?.t == null ? null : Number(s.t);
  } catch {
    return "";
  }
  if (channels.length === 0 && unsent.length === 0) return "";
  const failed = unsent.filter((u) => u.lastError);
  return html`<section class="card notifications"><h2>Notifications</h2>
${
  channels.length > 0
    ? html`<p>Alerts go by ${channels.join(" and ")}. ${sent} notice(s) sent${lastSent ? html`, the last ${showTime(lastSent)}` : ""}.</p>`
    : html`<p class="paused">Notifications are not configured any more; the notices below are not sent. Add [notifications] to the configuration (kontobro.toml, or the tenant's with kontobro tenant set; see config/kontobro.example.toml).</p>`
}
${
  failed.length > 0
    ? html`<h3>Not sent yet</h3>${failed.map(
        (u) => html`<div class="problem notice-failed" data-notice="${u.id}">
<div><strong>${u.subject}</strong> <span class="muted">${u.channel}${u.recipients ? ` to ${(JSON.parse(u.recipients) as string[]).join(", ")}` : ""} · ${u.attempts} attempt(s) since ${showTime(u.createdAt)}</span></div>
<div class="message">${u.lastError}</div>
<div class="hint">Kept and tried again at ${showTime(u.nextAttemptAt)}; nothing is lost while the ${u.channel === "email" ? "mail server" : "webhook"} is unreachable, unless for longer than retention_days (then the notice is dropped; its problems stay on this page).</div>
</div>`,
      )}`
    : unsent.length > 0
      ? html`<p class="muted">${unsent.length} notice(s) about to be sent.</p>`
      : html`<p class="ok">Every notice was sent.</p>`
}
</section>`;
}
