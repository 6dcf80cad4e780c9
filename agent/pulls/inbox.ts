// The inbox: what pulls brought in for the PSA, stored once per (target, remote id), with the stream's
// watermark written in the same transaction. Read back as a feed (stable cursor = seq) and by the PSA
// webhook deliverer.
import { createHash } from "node:crypto";
import type { PullItem } from "../../connectors/contract.ts";
import type { Db } from "../db/index.ts";
import type { Problem } from "../problem.ts";
import type { InboxState } from "../states.ts";

export interface StoreCounts {
  fetched: number;
  /** New items (or items whose project has since become known) that will reach the PSA. */
  imported: number;
  /** Already stored (or, for a status stream, unchanged). */
  duplicates: number;
  /** Kept but not delivered: the PSA does not know the record they belong to. */
  ignored: number;
}

export interface InboxRow {
  id: number;
  seq: number;
  target: string;
  stream: string;
  remoteId: string;
  type: string;
  state: InboxState;
  requires: string | null;
  payload: string;
  attachmentName: string | null;
  attachmentType: string | null;
  attachmentSize: number | null;
  attempts: number;
  nextAttemptAt: number;
  errorCode: string | null;
  errorMessage: string | null;
  errorHint: string | null;
  deliveredVia: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

/** What the PSA sees, in the feed and in webhook bodies. */
export interface InboxItem {
  id: number;
  seq: number;
  target: string;
  stream: string;
  type: string;
  remoteId: string;
  state: InboxState;
  requires?: { entity: string; key: string };
  data: unknown;
  attachment?: { filename: string; contentType: string; size: number; href?: string; contentBase64?: string };
  createdAt: string;
  deliveredAt?: string;
}

const ROW_COLUMNS = `id, seq, target, stream, remote_id AS remoteId, type, state, requires, payload,
  attachment_name AS attachmentName, attachment_type AS attachmentType, length(attachment) AS attachmentSize,
  attempts, next_attempt_at AS nextAttemptAt, error_code AS errorCode, error_message AS errorMessage,
  error_hint AS errorHint, delivered_via AS deliveredVia, created_at AS createdAt, delivered_at AS deliveredAt`;

export const requiresRef = (r: { entity: string; key: string }) => `${r.entity}:${r.key}`;

/** A stored row as the PSA sees it. Attachments are linked (feed) or inlined (webhook). */
export function toInboxItem(row: InboxRow, attachment?: { href?: string; bytes?: Uint8Array }): InboxItem {
  const [entity, ...rest] = row.requires?.split(":") ?? [];
  return {
    id: row.id,
    seq: row.seq,
    target: row.target,
    stream: row.stream,
    type: row.type,
    remoteId: row.remoteId,
    state: row.state,
    ...(row.requires ? { requires: { entity: entity!, key: rest.join(":") } } : {}),
    data: JSON.parse(row.payload),
    ...(row.attachmentName
      ? {
          attachment: {
            filename: row.attachmentName,
            contentType: row.attachmentType ?? "application/octet-stream",
            size: row.attachmentSize ?? 0,
            ...(attachment?.href ? { href: attachment.href } : {}),
            ...(attachment?.bytes ? { contentBase64: Buffer.from(attachment.bytes).toString("base64") } : {}),
          },
        }
      : {}),
    createdAt: new Date(row.createdAt).toISOString(),
    ...(row.deliveredAt ? { deliveredAt: new Date(row.deliveredAt).toISOString() } : {}),
  };
}

const MAX_ITEM_ID = 2 ** 52;

/** Decides, inside storeBatch's transaction, what becomes of a master record read back from a target (agent/master/sync.ts). */
export interface MasterFilter {
  pulled(item: PullItem): "deliver" | "skip" | "report";
}

/** 52 bits of SHA-256 over target and remote id: a positive, exact JavaScript integer. */
export function stableItemId(target: string, remoteId: string): number {
  const h = createHash("sha256").update(`${target}\u0000${remoteId}`).digest();
  return h.readUIntBE(0, 6) * 16 + (h[6]! >> 4) + 1;
}

export class Inbox {
  private readonly q;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    const c = db.$client;
    this.q = {
      // Positions grow with the clock (ms × 1000), not only with the rows kept: after any restore of the
      // data directory, even of the whole folder, a new item lands after every position handed out before.
      nextSeq: c.prepare(`SELECT CASE WHEN coalesce(max(seq), 0) + 1 > ?1 THEN coalesce(max(seq), 0) + 1 ELSE ?1 END AS seq FROM inbox`),
      idTaken: c.prepare(`SELECT 1 AS taken FROM inbox WHERE id = ?1`),
      byRemote: c.prepare(`SELECT id, state FROM inbox WHERE target = ?1 AND remote_id = ?2`),
      known: c.prepare(`SELECT 1 AS ok FROM records WHERE entity = ?1 AND key = ?2`),
      insert:
        c.prepare(`INSERT INTO inbox (seq, target, stream, remote_id, type, state, requires, payload, attachment_name, attachment_type, attachment, next_attempt_at, created_at, updated_at, id, record)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?12, ?13, ?14) ON CONFLICT (target, remote_id) DO NOTHING`),
      release: c.prepare(
        `UPDATE inbox SET state = 'new', seq = ?2, next_attempt_at = ?3, updated_at = ?3 WHERE id = ?1 AND state = 'ignored_unknown_project'`,
      ),
      status: c.prepare(`SELECT value, changes FROM pull_status WHERE target = ?1 AND entity = ?2 AND key = ?3`),
      putStatus:
        c.prepare(`INSERT INTO pull_status (target, entity, key, value, final, changes, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
        ON CONFLICT (target, entity, key) DO UPDATE SET value = ?4, final = ?5, changes = ?6, updated_at = ?7`),
      getCursor: c.prepare(`SELECT value FROM cursors WHERE target = ?1 AND stream = ?2`),
      putCursor: c.prepare(`INSERT INTO cursors (target, stream, value, updated_at) VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT (target, stream) DO UPDATE SET value = ?3, updated_at = ?4`),
      openInvoices: c.prepare(`SELECT l.key, l.remote_id AS remoteId FROM links l
        LEFT JOIN pull_status s ON s.target = l.target AND s.entity = 'invoice' AND s.key = l.key
        WHERE l.target = ?1 AND l.entity = 'invoice' AND (s.final IS NULL OR s.final = 0) ORDER BY l.key`),
    };
  }

  cursor(target: string, stream: string): string | null {
    return (this.q.getCursor.get(target, stream) as { value: string } | null)?.value ?? null;
  }

  /** Invoices booked at `target` by this agent whose payment status is not final yet. */
  openInvoices(target: string): { key: string; remoteId: string }[] {
    return this.q.openInvoices.all(target) as { key: string; remoteId: string }[];
  }

  /**
   * Stores one page of a pull and the stream's new cursor in one transaction: either both are on disk
   * or neither is, so a crash between fetching and storing loses nothing and a repeat stores nothing twice.
   */
  storeBatch(target: string, stream: string, items: PullItem[], cursor: string | null, master?: MasterFilter): StoreCounts {
    return this.db.transaction(
      () => {
        const now = this.now();
        const counts: StoreCounts = { fetched: items.length, imported: 0, duplicates: 0, ignored: 0 };
        for (const item of items) {
          // Master data (agent/master/): delivered only when master per entity says so; in the same transaction.
          const decided = item.master && master ? master.pulled(item) : "deliver";
          const outcome =
            decided === "skip"
              ? "duplicates"
              : decided === "report"
                ? "ignored"
                : item.status
                  ? this.storeStatus(target, stream, item, now)
                  : this.storeItem(target, stream, item, now);
          counts[outcome] += 1;
        }
        if (cursor !== null) this.q.putCursor.run(target, stream, cursor, now);
        return counts;
      },
      { behavior: "immediate" },
    );
  }

  private nextSeq(): number {
    return (this.q.nextSeq.get(this.now() * 1000) as { seq: number }).seq;
  }

  /**
   * An item's id follows from what it is (target and remote id), so the same entry pulled again (after a
   * restore rolled the watermark back) reaches the PSA under the id it already knows, and an id never
   * names another item. In the very rare case two items hash alike, the next free number is taken.
   */
  private idFor(target: string, remoteId: string): number {
    let id = stableItemId(target, remoteId);
    while (this.q.idTaken.get(id)) id = id >= MAX_ITEM_ID ? 1 : id + 1;
    return id;
  }

  private storeItem(target: string, stream: string, item: PullItem, now: number): "imported" | "duplicates" | "ignored" {
    const known = !item.requires || this.q.known.get(item.requires.entity, item.requires.key) !== null;
    const existing = this.q.byRemote.get(target, item.remoteId) as { id: number; state: InboxState } | null;
    if (existing) {
      // Seen before on a project the PSA did not know; it knows it now, so the item goes out after all.
      if (existing.state === "ignored_unknown_project") {
        if (!known) return "ignored";
        this.q.release.run(existing.id, this.nextSeq(), now);
        return "imported";
      }
      return "duplicates";
    }
    this.insert(target, stream, item.remoteId, item, known ? "new" : "ignored_unknown_project", item.data, now);
    return known ? "imported" : "ignored";
  }

  /** A status stream item is stored only when the record's state changed since it was last seen. */
  private storeStatus(target: string, stream: string, item: PullItem, now: number): "imported" | "duplicates" {
    const s = item.status!;
    const last = this.q.status.get(target, s.entity, s.key) as { value: string; changes: number } | null;
    const previous = last?.value ?? s.baseline ?? null;
    const changes = (last?.changes ?? 0) + (previous === s.value ? 0 : 1);
    this.q.putStatus.run(target, s.entity, s.key, s.value, s.final ? 1 : 0, changes, now);
    if (previous === s.value) return "duplicates";
    const data = { ...(item.data as object), previousStatus: previous };
    this.insert(target, stream, `${item.remoteId}#${changes}`, item, "new", data, now);
    return "imported";
  }

  private insert(target: string, stream: string, remoteId: string, item: PullItem, state: InboxState, data: unknown, now: number): void {
    const a = item.attachment;
    this.q.insert.run(
      this.nextSeq(),
      target,
      stream,
      remoteId,
      item.type,
      state,
      item.requires ? requiresRef(item.requires) : null,
      JSON.stringify(data),
      a?.filename ?? null,
      a?.contentType ?? null,
      a ? Buffer.from(a.bytes) : null,
      now,
      this.idFor(target, remoteId),
      // The record it is about: a status item's record, else the record it requires.
      item.status ? requiresRef(item.status) : item.requires ? requiresRef(item.requires) : null,
    );
  }

  // ── the feed ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Deliverable items (new or delivered) after the cursor `after` (a seq), oldest first. Items kept as
   * ignored are not in the feed: one becomes deliverable later under a new seq, so a reader sees each item
   * once, when it can use it (see `ignored()` for the others).
   */
  feed(opts: { after: number; limit: number; target?: string }): { rows: InboxRow[]; more: boolean } {
    return this.page(`state IN ('new', 'delivered')`, opts);
  }

  /** Items kept but not delivered (the PSA does not know their project yet), oldest first; acknowledges nothing. */
  ignored(opts: { after: number; limit: number; target?: string }): { rows: InboxRow[]; more: boolean } {
    return this.page(`state = 'ignored_unknown_project'`, opts);
  }

  private page(where: string, opts: { after: number; limit: number; target?: string }): { rows: InboxRow[]; more: boolean } {
    const rows = this.db.$client
      .query(`SELECT ${ROW_COLUMNS} FROM inbox WHERE ${where} AND seq > ?1 AND (?2 IS NULL OR target = ?2) ORDER BY seq LIMIT ?3`)
      .all(opts.after, opts.target ?? null, opts.limit + 1) as InboxRow[];
    return { rows: rows.slice(0, opts.limit), more: rows.length > opts.limit };
  }

  /** The newest position in the feed (0 when empty). */
  lastSeq(): number {
    return (this.db.$client.query(`SELECT coalesce(max(seq), 0) AS s FROM inbox`).get() as { s: number }).s;
  }

  /** A reader asking for items after `after` has taken everything up to it: those count as delivered. */
  acknowledge(after: number, target?: string): number {
    const now = this.now();
    return this.db.$client.run(
      `UPDATE inbox SET state = 'delivered', delivered_via = 'feed', delivered_at = ?1, updated_at = ?1
        WHERE state = 'new' AND seq <= ?2 AND (CAST(?3 AS TEXT) IS NULL OR target = ?3)`,
      [now, after, target ?? null],
    ).changes;
  }

  attachment(id: number): { name: string; type: string; bytes: Uint8Array } | null {
    const row = this.db.$client
      .query(
        `SELECT attachment_name AS name, attachment_type AS type, attachment AS bytes FROM inbox WHERE id = ?1 AND attachment IS NOT NULL`,
      )
      .get(id) as any;
    return row ? { name: row.name, type: row.type ?? "application/octet-stream", bytes: new Uint8Array(row.bytes) } : null;
  }

  // ── delivery to the PSA webhook ──────────────────────────────────────────────────────────────────

  /** The oldest undelivered items that are due, in feed order; `untriedOnly`: only those never attempted. */
  undelivered(limit: number, now: number = this.now(), untriedOnly = false): InboxRow[] {
    return this.db.$client
      .query(
        `SELECT ${ROW_COLUMNS} FROM inbox WHERE state = 'new' AND next_attempt_at <= ?2 AND (?3 = 0 OR attempts = 0) ORDER BY seq LIMIT ?1`,
      )
      .all(limit, now, untriedOnly ? 1 : 0) as InboxRow[];
  }

  /** When the next undelivered item is due, or null when none waits. */
  nextUndeliveredAt(): number | null {
    return (this.db.$client.query(`SELECT min(next_attempt_at) AS t FROM inbox WHERE state = 'new'`).get() as { t: number | null }).t;
  }

  markDelivered(ids: number[]): void {
    if (ids.length === 0) return;
    const now = this.now();
    this.db.$client.run(
      `UPDATE inbox SET state = 'delivered', delivered_via = 'webhook', delivered_at = ?1, updated_at = ?1, error_code = NULL, error_message = NULL, error_hint = NULL
        WHERE state = 'new' AND id IN (SELECT CAST(value AS BIGINT) FROM json_each(?2))`,
      [now, JSON.stringify(ids)],
    );
  }

  markFailed(ids: number[], problem: Problem, nextAttemptAt: number): void {
    if (ids.length === 0) return;
    this.db.$client.run(
      `UPDATE inbox SET attempts = attempts + 1, next_attempt_at = ?1, updated_at = ?2, error_code = ?3, error_message = ?4, error_hint = ?5
        WHERE state = 'new' AND id IN (SELECT CAST(value AS BIGINT) FROM json_each(?6))`,
      [nextAttemptAt, this.now(), problem.code, problem.message, problem.hint ?? null, JSON.stringify(ids)],
    );
  }

  // ── status page ──────────────────────────────────────────────────────────────────────────────────

  counts(): { target: string; state: InboxState; n: number }[] {
    return this.db.$client
      .query(`SELECT target, state, count(*) AS n FROM inbox GROUP BY target, state ORDER BY target, state`)
      .all() as any[];
  }

  recent(target: string, limit = 15): InboxRow[] {
    return this.db.$client
      .query(`SELECT ${ROW_COLUMNS} FROM inbox WHERE target = ?1 ORDER BY seq DESC LIMIT ?2`)
      .all(target, limit) as InboxRow[];
  }
}
