// A real SMTP server on loopback for the notification tests (smtp-server from npm): STARTTLS with a
// certificate made for the test by openssl, AUTH only after TLS, and every received mail kept raw and
// parsed (headers unfolded, quoted-printable and base64 bodies decoded).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { tempDir } from "./helpers.ts";

export interface ReceivedMail {
  envelopeFrom: string;
  envelopeTo: string[];
  /** The login used (undefined without AUTH). */
  user?: string;
  /** The session ran over TLS (STARTTLS or implicit). */
  secure: boolean;
  raw: string;
  headers: Record<string, string>;
  body: string;
}

export interface TestSmtp {
  port: number;
  /** The CA file a client needs to trust the server's certificate. */
  caFile: string;
  mails: ReceivedMail[];
  stop(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 and localhost, made once per test file. */
export function testCertificate(): { key: string; cert: string; caFile: string } {
  const dir = tempDir("kontobro-smtp-cert-");
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    { stdio: "ignore" },
  );
  return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8"), caFile: cert };
}

/** A port that nothing listens on (yet). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startSmtp(
  opts: { port?: number; user?: string; password?: string; cert?: ReturnType<typeof testCertificate> } = {},
): Promise<TestSmtp> {
  const cert = opts.cert ?? testCertificate();
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    key: cert.key,
    cert: cert.cert,
    secure: false,
    // AUTH is refused before STARTTLS: a mail that arrives with a login came over TLS.
    allowInsecureAuth: false,
    authOptional: !opts.user,
    disabledCommands: opts.user ? [] : ["AUTH"],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === opts.user && auth.password === opts.password) return cb(null, { user: auth.username });
      return cb(new Error("Invalid username or password"));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        mails.push({
          envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          envelopeTo: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          secure: session.secure,
          raw,
          ...parseMail(raw),
        });
        cb();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve((server.server.address() as { port: number }).port));
  });
  return { port, caFile: cert.caFile, mails, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Headers (lower-case names, unfolded, RFC 2047 words decoded) and the decoded text body of a simple text/plain mail. */
export function parseMail(raw: string): { headers: Record<string, string>; body: string } {
  const split = raw.indexOf("\r\n\r\n");
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, " ");
  const headers: Record<string, string> = {};
  for (const line of head.split("\r\n")) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).toLowerCase()] = decodeWords(line.slice(i + 1).trim());
  }
  let body = raw.slice(split + 4);
  const cte = (headers["content-transfer-encoding"] ?? "7bit").toLowerCase();
  if (cte === "quoted-printable") body = decodeQuotedPrintable(body);
  else if (cte === "base64") body = Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  return { headers, body: body.replace(/\r\n/g, "\n") };
}

function decodeQuotedPrintable(s: string): string {
  const joined = s.replace(/=\r?\n/g, "");
  const bytes: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    if (joined[i] === "=" && /^[0-9A-F]{2}$/i.test(joined.slice(i + 1, i + 3))) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(joined[i]!, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

function decodeWords(s: string): string {
  return s.replace(/=\?utf-8\?([QB])\?([^?]*)\?=\s*/gi, (_, enc: string, text: string) =>
    enc.toUpperCase() === "B" ? Buffer.from(text, "base64").toString("utf8") : decodeQuotedPrintable(text.replace(/_/g, " ")),
  );
}
