// Delivers new inbox items to the PSA's webhook URL, oldest first, in signed batches, retried with
// backoff until the PSA answers 2xx. The signature is HMAC-SHA256 over "<timestamp>.<body>":
//   Kontobro-Signature: t=<unix seconds>,v1=<lowercase hex>
import { createHmac } from "node:crypto";
import { parseRetryAfter } from "../connectors/http.ts";
import { retryDelayMs } from "./backoff.ts";
import { toInboxItem, type Inbox, type InboxRow } from "./inbox.ts";
import type { Logger } from "./log.ts";
import type { Problem } from "./problem.ts";
import { WakeableSleep } from "./wakeable.ts";

export const SIGNATURE_HEADER = "Kontobro-Signature";

export interface PsaWebhookOptions {
  url: string;
  secret: string;
  batchSize: number;
  maxBodyBytes: number;
  timeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Longest idle sleep; new items wake the deliverer at once. */
  pollMs: number;
  userAgent: string;
}

/** The Kontobro-Signature header value for a body sent at `timestampSeconds`. */
export function signatureHeader(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex");
  return `t=${timestampSeconds},v1=${mac}`;
}

/** The next batch: oldest items first, as many as fit in maxBodyBytes (always at least one). */
export function buildBatch(rows: InboxRow[], attachmentOf: (id: number) => Uint8Array | undefined, maxBodyBytes: number): { ids: number[]; body: string } {
  const items: string[] = [];
  const ids: number[] = [];
  let size = 12; // {"items":[]}
  for (const row of rows) {
    const item = JSON.stringify(toInboxItem(row, row.attachmentName ? { bytes: attachmentOf(row.id) } : undefined));
    if (items.length > 0 && size + item.length + 1 > maxBodyBytes) break;
    items.push(item);
    ids.push(row.id);
    size += item.length + 1;
  }
  return { ids, body: `{"items":[${items.join(",")}]}` };
}

export class PsaDeliverer {
  private running = false;
  private readonly sleeper = new WakeableSleep();
  private loopDone: Promise<void> = Promise.resolve();

  constructor(private readonly inbox: Inbox, private readonly opts: PsaWebhookOptions, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((e) => this.log.error("PSA webhook delivery stopped by an unexpected error", { error: e }));
  }

  notify(): void {
    this.sleeper.wakeUp();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let wait = this.opts.pollMs;
      try {
        wait = await this.deliverOnce();
      } catch (e) {
        this.log.error("PSA webhook delivery failed unexpectedly; trying again later", { error: e });
      }
      if (wait > 0) await this.sleep(wait);
    }
  }

  /** Sends one batch of the items that are due; returns how long to wait before the next look. */
  private async deliverOnce(): Promise<number> {
    const now = this.now();
    // Only items that are due: one the PSA keeps refusing backs off alone, the rest keep flowing.
    const rows = this.inbox.undelivered(this.opts.batchSize, now);
    if (rows.length === 0) {
      const next = this.inbox.nextUndeliveredAt();
      return next === null ? this.opts.pollMs : Math.max(0, Math.min(this.opts.pollMs, next - now));
    }
    const sent = await this.send(rows);
    if (sent.ok) return 0;
    if (sent.clientError && sent.ids.length > 1) {
      // The PSA refused the batch as such (400, 413, …): one item may be at fault, so send them one by one.
      for (const row of rows.filter((r) => sent.ids.includes(r.id))) {
        const one = await this.send([row]);
        if (!one.ok) this.fail([row], one);
      }
      return 0;
    }
    return this.fail(rows.filter((r) => sent.ids.includes(r.id)), sent);
  }

  private async send(rows: InboxRow[]): Promise<{ ok: true } | { ok: false; ids: number[]; problem: Problem; retryAfterMs?: number; clientError: boolean }> {
    const { ids, body } = buildBatch(rows, (id) => this.inbox.attachment(id)?.bytes, this.opts.maxBodyBytes);
    const timestamp = Math.floor(this.now() / 1000);
    try {
      const res = await fetch(this.opts.url, {
        method: "POST", body, redirect: "manual", signal: AbortSignal.timeout(this.opts.timeoutMs),
        headers: { "content-type": "application/json", "user-agent": this.opts.userAgent, [SIGNATURE_HEADER]: signatureHeader(this.opts.secret, timestamp, body) },
      });
      const answer = await res.text().catch(() => "");
      if (res.status >= 200 && res.status < 300) {
        this.inbox.markDelivered(ids);
        this.log.info("delivered to the PSA webhook", { items: ids.length });
        return { ok: true };
      }
      const auth = res.status === 401 || res.status === 403;
      return {
        ok: false, ids, retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
        clientError: res.status >= 400 && res.status < 500 && !auth && res.status !== 408 && res.status !== 429,
        problem: {
          code: `psa_http_${res.status}`,
          message: `The PSA webhook answered ${res.status}${answer ? `: ${answer.slice(0, 200)}` : ""}.`,
          hint: auth
            ? "Check that the PSA has the same signing secret as psa.webhook_secret in kontobro.toml. kontobro keeps retrying."
            : "kontobro keeps retrying with backoff until the PSA answers 2xx; check the PSA's logs if this persists.",
        },
      };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
      return {
        ok: false, ids, clientError: false,
        problem: {
          code: timedOut ? "psa_timeout" : "psa_unreachable",
          message: timedOut ? `The PSA webhook did not answer within ${this.opts.timeoutMs} ms.` : `The PSA webhook could not be reached: ${msg}`,
          hint: "Check psa.webhook_url in kontobro.toml and that this server can reach it. kontobro keeps retrying; items are also in the feed GET /api/v1/inbox.",
        },
      };
    }
  }

  /** Schedules the next attempt for items the PSA did not take; returns how long to wait. */
  private fail(rows: InboxRow[], sent: { problem: Problem; retryAfterMs?: number }): number {
    const attempts = Math.max(0, ...rows.map((r) => r.attempts));
    const delay = retryDelayMs(attempts + 1, { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs }, sent.retryAfterMs);
    this.inbox.markFailed(rows.map((r) => r.id), sent.problem, this.now() + delay);
    this.log.warn("PSA webhook delivery failed; will retry", { items: rows.length, code: sent.problem.code, message: sent.problem.message, inMs: delay });
    return Math.min(this.opts.pollMs, delay);
  }

  private sleep(ms: number): Promise<void> {
    return this.sleeper.sleep(ms);
  }
}
