// The demo's mailbox: in `kontobro demo` the alert mails are not sent. nodemailer's stream transport builds each
// message exactly as the mail server would get it (the same options as send.ts's mailSender: headers, MIME
// encoding, Message-ID, Date), and the mailbox keeps it in memory for the page /ui/demo/mail (agent/http/demo-mail.ts).
import type { Transporter } from "nodemailer";
import { loadMailer, mailMessage, type NoticeSender } from "./send.ts";

export interface DemoMail {
  /** 1, 2, … in the order the mails were built. */
  id: number;
  /** When it was built (epoch ms). */
  at: number;
  from: string;
  to: string[];
  subject: string;
  /** The text the recipient reads (the message's text/plain part, before transfer encoding). */
  text: string;
  /** The whole message as it would go to the mail server: headers and encoded body, CRLF line ends. */
  source: string;
}

/** The newest mails are kept; the demo runs for minutes, not months. */
const KEEP = 500;

export class DemoMailbox {
  private readonly mails: DemoMail[] = [];
  private nextId = 1;

  get size(): number {
    return this.mails.length;
  }

  /** Newest first. */
  list(): DemoMail[] {
    return [...this.mails].reverse();
  }

  get(id: number): DemoMail | undefined {
    return this.mails.find((m) => m.id === id);
  }

  add(mail: Omit<DemoMail, "id">): DemoMail {
    const kept = { id: this.nextId++, ...mail };
    this.mails.push(kept);
    if (this.mails.length > KEEP) this.mails.splice(0, this.mails.length - KEEP);
    return kept;
  }
}

/** The e-mail channel of the demo: builds the real message from `from` and keeps it in `mailbox` instead of sending it. */
export function mailboxSender(mailbox: DemoMailbox, from: string, userAgent: string): NoticeSender {
  let transport: Promise<Transporter> | null = null;
  return {
    describe: () => `e-mail from ${from}, kept in the demo mailbox (/ui/demo/mail) instead of being sent`,
    async send(n) {
      transport ??= loadMailer().then((mailer) => mailer.createTransport({ streamTransport: true, buffer: true }));
      const info = await (await transport).sendMail(mailMessage(n, from, userAgent));
      mailbox.add({
        at: Date.now(),
        from,
        to: n.recipients,
        subject: n.subject,
        text: n.body,
        source: (info.message as Buffer).toString("utf8"),
      });
    },
    close() {
      transport?.then((t) => t.close()).catch(() => undefined);
      transport = null;
    },
  };
}
