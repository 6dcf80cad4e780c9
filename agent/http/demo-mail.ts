// The demo's mailbox page (`kontobro demo` only): the alert mails the demo built instead of sending them
// (agent/notify/demo-mailbox.ts), newest first, and each mail as the recipient reads it with its full source.
import type { Hono } from "hono";
import { html, raw } from "hono/html";
import type { DemoMail, DemoMailbox } from "../notify/demo-mailbox.ts";
import { showTime } from "../time.ts";
import type { AppContext } from "./context.ts";

const CSS = `body{font-family:system-ui,sans-serif;max-width:960px;margin:24px auto;padding:0 12px;color:#1d2330}
table{border-collapse:collapse;width:100%}caption{text-align:left;font-weight:600;padding:6px 0}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ec;vertical-align:top} tbody th{font-weight:normal}
a:focus-visible,summary:focus-visible{outline:3px solid #2e90fa;outline-offset:2px}
.muted{color:#5b6472}pre{white-space:pre-wrap;background:#f6f7f9;padding:12px;border-radius:6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px}dt{font-weight:600}dd{margin:0}`;

function page(title: string, body: unknown) {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kontobro demo: ${title}</title><style>${raw(CSS)}</style></head>
<body><header><p><a href="/">Back to the status page</a></p><h1>${title}</h1></header><main>${body}</main></body></html>`;
}

function listPage(mails: DemoMail[]) {
  return page(
    "Demo mailbox",
    html`<p class="muted">In the demo, alert mails are built exactly as kontobro sends them through [notifications.smtp], and kept
here instead of being sent. In a real installation they go to the recipients of [notifications] in kontobro.toml.</p>
${
  mails.length === 0
    ? html`<p>No mail yet. One arrives within seconds of something needing action.</p>`
    : html`<table class="mails"><caption>Alert mails, newest first</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Subject</th><th scope="col">To</th></tr></thead><tbody>
${mails.map(
  (m) =>
    html`<tr data-mail="${m.id}"><td>${showTime(m.at)}</td><th scope="row"><a href="/ui/demo/mail/${m.id}">${m.subject}</a></th><td>${m.to.join(", ")}</td></tr>`,
)}
</tbody></table>`
}`,
  );
}

function mailPage(m: DemoMail) {
  return page(
    m.subject,
    html`<dl><dt>From</dt><dd>${m.from}</dd><dt>To</dt><dd>${m.to.join(", ")}</dd><dt>Time</dt><dd>${showTime(m.at)}</dd></dl>
<h2>Text</h2><pre class="mail-text">${m.text}</pre>
<details><summary>Message source (as the mail server would get it)</summary><pre class="mail-source">${m.source}</pre></details>
<p><a href="/ui/demo/mail">All demo mails</a></p>`,
  );
}

/** /ui/demo/mail and /ui/demo/mail/:id, when the agent has a demo mailbox (the status page's guard covers /ui/*). */
export function registerDemoMailUi(app: Hono, ctx: AppContext): void {
  const mailbox: DemoMailbox | undefined = ctx.mailbox;
  if (!mailbox) return;
  app.get("/ui/demo/mail", (c) => c.html(listPage(mailbox.list())));
  app.get("/ui/demo/mail/:id", (c) => {
    const mail = mailbox.get(Number(c.req.param("id")));
    if (!mail)
      return c.html(
        page("No such mail", html`<p>The demo mailbox has no mail ${c.req.param("id")}. <a href="/ui/demo/mail">All demo mails</a></p>`),
        404,
      );
    return c.html(mailPage(mail));
  });
}

/** The status page's link to the mailbox, in demo mode only. */
export function demoMailLink(ctx: AppContext) {
  return ctx.mailbox ? html` · <a href="/ui/demo/mail">demo mailbox (${ctx.mailbox.size})</a>` : "";
}
