// Delivers new inbox items to the PSA's webhook URL, oldest first, in signed batches, retried with
// backoff until the PSA answers 2xx; an item that failed is retried alone, so it never holds back others. The signature is HMAC-SHA256 over "<timestamp>.<body>":
//   Kontobro-Signature: t=<unix seconds>,v1=<lowercase hex>
import { createHmac } from "node:crypto";
import { failureKindOf, isAuthStatus, networkFailureOf, parseRetryAfter } from "../../connectors/http.ts";
import { retryDelayMs } from "../backoff.ts";
import { toInboxItem, type Inbox, type InboxRow } from "./inbox.ts";
import type { Logger } from "../log.ts";
import type { Problem } from "../problem.ts";
import { WorkerLoop } from "../worker-loop.ts";

export const SIGNATURE_HEADER = "Kontobro-Signature";

/** A request's items stay leased this much longer than its timeout: the response may still be on its way. */
const LEASE_MARGIN_MS = 30_000;

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
export function buildBatch(
  rows: InboxRow[],
  attachmentOf: (id: number) => Uint8Array | undefined,
  maxBodyBytes: number,
): { ids: number[]; body: string } {
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

type SendResult =
  | { ok: true }
  | { ok: false; aborted: true }
  | { ok: false; aborted?: false; ids: number[]; problem: Problem; retryAfterMs?: number; clientError: boolean };

/**
 * One loop, one request at a time. Items never tried go out in batches, oldest first. An item whose delivery
 * has failed before is sent alone, with its own backoff (attempts / next_attempt_at): whatever the PSA does
 * with it (4xx, 5xx, a timeout), the items after it keep flowing. Consecutive failed requests with no success
 * in between may mean the PSA itself is down: then retries of failed items pause with growing delay (new items
 * still go out, and the first success ends the pause). A Retry-After pauses everything at least that long.
 * stop() aborts the request in flight.
 */
export class PsaDeliverer {
  private readonly worker: WorkerLoop;
  private abort = new AbortController();
  /** Failed requests since the last success. */
  private failStreak = 0;
  /** Nothing is sent before this (the PSA's Retry-After). */
  private pausedUntil = 0;
  /** No item that failed before is retried before this (the PSA looks down). */
  private retriesPausedUntil = 0;

  constructor(
    private readonly inbox: Inbox,
    private readonly opts: PsaWebhookOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.worker = new WorkerLoop({
      step: () => this.deliverOnce(),
      onError: (e, repeated) => {
        if (!repeated)
          this.log.error("PSA webhook delivery failed unexpectedly; trying again at every poll, said again only when the error changes", {
            error: e,
          });
        return this.opts.pollMs;
      },
      onRecovered: (failedSteps) => this.log.info("PSA webhook delivery works again", { failedSteps }),
      onCrash: (e) => this.log.error("PSA webhook delivery stopped by an unexpected error", { error: e }),
    });
  }

  start(): void {
    if (this.worker.running) return;
    this.abort = new AbortController();
    this.worker.start();
  }

  notify(): void {
    this.worker.notify();
  }

  /** Returns promptly: a request in flight is aborted (its items stay undelivered and go out after the restart). */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.worker.stop();
  }

  /** Sends one request with what is due; returns how long to wait before the next look. */
  private async deliverOnce(): Promise<number> {
    const now = this.now();
    if (now < this.pausedUntil) return this.pausedUntil - now;
    const retriesWait = Math.max(0, this.retriesPausedUntil - now);
    // Only items that are due: one the PSA keeps failing on backs off alone, the rest keep flowing.
    const rows = await this.inbox.undelivered(this.opts.batchSize, now, retriesWait > 0);
    if (rows.length === 0) {
      const next = await this.inbox.nextUndeliveredAt();
      return next === null ? this.opts.pollMs : Math.max(0, Math.min(this.opts.pollMs, Math.max(retriesWait, next - now)));
    }
    // An item that failed before goes alone (isolated); the others in a batch of those never tried.
    const firstTried = rows.findIndex((r) => r.attempts > 0);
    const candidates = firstTried === 0 ? rows.slice(0, 1) : firstTried > 0 ? rows.slice(0, firstTried) : rows;
    const request = await this.take(candidates, now);
    // Another worker took them first: look again at once.
    if (!request) return 0;
    const { batch, body } = request;
    const sent = await this.send(batch, body);
    if (sent.ok) {
      this.failStreak = 0;
      this.retriesPausedUntil = 0;
      return 0;
    }
    if (sent.aborted) {
      await this.inbox.releaseLeases(batch.map((r) => r.id));
      return 0;
    }
    this.failStreak += 1;
    if (sent.clientError && batch.length > 1) {
      // The PSA refused the batch as such (400, 413, …): one item may be at fault, so they go one by one now.
      await this.inbox.markFailed(
        batch.map((r) => r.id),
        sent.problem,
        now,
      );
      this.log.warn("the PSA webhook refused a batch; sending its items one by one", { items: batch.length, code: sent.problem.code });
    } else {
      await this.fail(batch, sent);
    }
    if (sent.retryAfterMs !== undefined) this.pausedUntil = now + sent.retryAfterMs;
    if (this.failStreak >= 2) {
      const pause = retryDelayMs(this.failStreak - 1, { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs });
      this.retriesPausedUntil = now + pause;
      this.log.warn("the PSA webhook keeps failing; retries of failed items pause", { failures: this.failStreak, inMs: pause });
    }
    return 0;
  }

  /**
   * The next request: the oldest candidates that fit in one body, leased for as long as the request may take (its
   * timeout and a margin), so no other worker sends them meanwhile. Null when another worker took them all first.
   */
  private async take(candidates: InboxRow[], now: number): Promise<{ batch: InboxRow[]; body: string } | null> {
    // Attachments are read for as many items as may fit in the body (base64 takes 4 bytes per 3), not for all.
    const attachments = new Map<number, Uint8Array | undefined>();
    let room = this.opts.maxBodyBytes;
    let readable = 0;
    for (const r of candidates) {
      if (room < 0) break;
      if (r.attachmentName) attachments.set(r.id, (await this.inbox.attachment(r.id))?.bytes);
      room -= r.payload.length + Math.ceil((r.attachmentSize ?? 0) / 3) * 4;
      readable += 1;
    }
    const build = (rows: InboxRow[]) => buildBatch(rows, (id) => attachments.get(id), this.opts.maxBodyBytes);
    const wanted = build(candidates.slice(0, readable));
    const taken = new Set(await this.inbox.lease(wanted.ids, now, now + this.opts.timeoutMs + LEASE_MARGIN_MS));
    if (taken.size === 0) return null;
    const batch = candidates.filter((r) => taken.has(r.id));
    // Some were taken by another worker: the body holds the rest (fewer items, so it still fits).
    return { batch, body: batch.length === wanted.ids.length ? wanted.body : build(batch).body };
  }

  private async send(rows: InboxRow[], body: string): Promise<SendResult> {
    const ids = rows.map((r) => r.id);
    const timestamp = Math.floor(this.now() / 1000);
    const stopping = this.abort.signal;
    try {
      const res = await fetch(this.opts.url, {
        method: "POST",
        body,
        redirect: "manual",
        signal: AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs), stopping]),
        headers: {
          "content-type": "application/json",
          "user-agent": this.opts.userAgent,
          [SIGNATURE_HEADER]: signatureHeader(this.opts.secret, timestamp, body),
        },
      });
      const answer = await res.text().catch(() => "");
      if (res.status >= 200 && res.status < 300) {
        await this.inbox.markDelivered(ids);
        this.log.info("delivered to the PSA webhook", { items: ids.length });
        return { ok: true };
      }
      const auth = isAuthStatus(res.status);
      return {
        ok: false,
        ids,
        retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
        // The PSA refused the content (not the signature, not a redirect): one item of the batch may be at fault.
        clientError: failureKindOf(res.status, true) === "permanent" && res.status >= 400 && !auth,
        problem: {
          code: `psa_http_${res.status}`,
          message: `The PSA webhook answered ${res.status}${answer ? `: ${answer.slice(0, 200)}` : ""}.`,
          hint: auth
            ? "Check that the PSA has the same signing secret as psa.webhook_secret in kontobro.toml. kontobro keeps retrying."
            : "kontobro keeps retrying this item alone with backoff (other items are not held back) until the PSA answers 2xx; check the PSA's logs if this persists.",
        },
      };
    } catch (e) {
      // Stopping: not the PSA's fault; the items stay as they were and go out after the restart.
      if (stopping.aborted) return { ok: false, aborted: true };
      const msg = e instanceof Error ? e.message : String(e);
      const timedOut = networkFailureOf(e) === "timeout";
      return {
        ok: false,
        ids,
        clientError: false,
        problem: {
          code: timedOut ? "psa_timeout" : "psa_unreachable",
          message: timedOut
            ? `The PSA webhook did not answer within ${this.opts.timeoutMs} ms.`
            : `The PSA webhook could not be reached: ${msg}`,
          hint: "Check psa.webhook_url in kontobro.toml and that this server can reach it. kontobro keeps retrying; items are also in the feed GET /api/v1/inbox.",
        },
      };
    }
  }

  /** Schedules the next attempt for items the PSA did not take, by their own number of failures. */
  private async fail(rows: InboxRow[], sent: { problem: Problem; retryAfterMs?: number }): Promise<void> {
    const attempts = Math.max(0, ...rows.map((r) => r.attempts));
    const delay = retryDelayMs(attempts + 1, { baseMs: this.opts.retryBaseMs, maxMs: this.opts.retryMaxMs }, sent.retryAfterMs);
    await this.inbox.markFailed(
      rows.map((r) => r.id),
      sent.problem,
      this.now() + delay,
    );
    this.log.warn("PSA webhook delivery failed; will retry", {
      items: rows.length,
      ...(rows.length === 1 ? { item: rows[0]!.id } : {}),
      code: sent.problem.code,
      message: sent.problem.message,
      inMs: delay,
    });
  }
}
