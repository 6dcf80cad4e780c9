// The inbox: what pulls brought in for the PSA, stored once per (target, remote id), with the stream's
// watermark written in the same transaction. Read back as a feed (stable cursor = seq) and by the PSA
// webhook deliverer. The SQL is written once and runs through a SqlRunner (agent/db/pg/runner.ts): the
// agent's SQLite file, or one tenant on PostgreSQL.
import { createHash } from "node:crypto";
import type { PullItem } from "../../connectors/contract.ts";
import { documentAmount } from "../credit-room.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
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
const parseRef = (ref: string | null): PullItem["requires"] => {
  if (!ref) return undefined;
  const at = ref.indexOf(":");
  return { entity: ref.slice(0, at) as NonNullable<PullItem["requires"]>["entity"], key: ref.slice(at + 1) };
};

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

/** How long an invoice seen paid is still asked about (a reversed payment reopens it): 35 days. */
export const FINAL_RECHECK_MS = 35 * 86_400_000;

const MAX_ITEM_ID = 2 ** 52;
const nextItemId = (id: number) => (id >= MAX_ITEM_ID ? 1 : id + 1);

/** Decides, inside storeBatch's transaction (`tx`), what becomes of a master record read back from a target (agent/master/sync.ts). */
export interface MasterFilter {
  pulled(item: PullItem, tx: SqlRunner): Promise<"deliver" | "skip" | "report">;
}

/** 52 bits of SHA-256 over target and remote id: a positive, exact JavaScript integer. */
export function stableItemId(target: string, remoteId: string): number {
  const h = createHash("sha256").update(`${target}\u0000${remoteId}`).digest();
  return h.readUIntBE(0, 6) * 16 + (h[6]! >> 4) + 1;
}

/** A status as stored (`partially_paid:40000`: value and detail, see PullItem.status) → its value (`partially_paid`). */
export function statusValue<T extends string | null>(stored: T): T {
  return (stored === null ? stored : stored.split(":")[0]) as T;
}

/** A cost the target changed, or cancelled, after it was pulled (PullItem.version): items naming the first one. */
export const EXPENSE_CHANGED = "expense.changed";
export const EXPENSE_CANCELLED = "expense.cancelled";
const CANCELLED = "\u0000cancelled";

/**
 * An item about a record's state (a status item, or a master record's version: no `requires`, its record named) goes to
 * the PSA webhook only after every older undelivered one of the same record and target: an invoice's "sent" retried
 * after a failure must not reach the PSA after its "paid", nor a customer's older version after its newer one, which
 * the PSA would then take for the record's state. Expenses (they name the project they require) are facts of their own
 * and never wait for each other; a cost's change or cancellation waits for the older undelivered items of the same cost
 * (its first item, its earlier changes), so the PSA never hears a change before the cost, nor an older amount after a
 * newer one.
 */
const IN_TURN = `(inbox.requires IS NOT NULL OR inbox.record IS NULL OR NOT EXISTS (SELECT 1 FROM inbox older
        WHERE older.record = inbox.record AND older.target = inbox.target AND older.requires IS NULL AND older.state = 'new' AND older.seq < inbox.seq))
    AND (inbox.type NOT IN ('${EXPENSE_CHANGED}', '${EXPENSE_CANCELLED}') OR NOT EXISTS (SELECT 1 FROM inbox older
        WHERE older.target = inbox.target AND older.state = 'new' AND older.seq < inbox.seq
          AND (older.remote_id = json_extract(inbox.payload, '$.replacesRemoteId')
            OR json_extract(older.payload, '$.replacesRemoteId') = json_extract(inbox.payload, '$.replacesRemoteId'))))`;

/** The inbox's statements, written once for both engines. */
const SQL = {
  // Writers of the inbox take turns (PostgreSQL, many workers: feed positions are handed out in commit order, so a
  // reader past a position never misses an item committed later). The upsert locks the tenant's row until commit;
  // on SQLite the write transaction holds the database already.
  takeTurn: `INSERT INTO settings (name, value) VALUES ('inbox_writer', '') ON CONFLICT (name) DO UPDATE SET value = settings.value`,
  // Positions grow with the clock (ms × 1000), not only with the rows kept: after any restore of the
  // data directory, even of the whole folder, a new item lands after every position handed out before.
  nextSeq: `SELECT CASE WHEN coalesce(max(seq), 0) + 1 > ?1 THEN coalesce(max(seq), 0) + 1 ELSE ?1 END AS seq FROM inbox`,
  idTaken: `SELECT 1 AS taken FROM inbox WHERE id = ?1`,
  // The target's current account only: an item of one it was pointed away from (forgotten_at) is another item.
  byRemote: `SELECT id, state, requires FROM inbox WHERE target = ?1 AND remote_id = ?2 AND forgotten_at IS NULL`,
  known: `SELECT 1 AS ok FROM records WHERE entity = ?1 AND key = ?2`,
  insert: `INSERT INTO inbox (seq, target, stream, remote_id, type, state, requires, payload, attachment_name, attachment_type, attachment, next_attempt_at, created_at, updated_at, id, record)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?12, ?13, ?14) ON CONFLICT DO NOTHING`,
  release: `UPDATE inbox SET state = 'new', seq = ?2, next_attempt_at = ?3, updated_at = ?3 WHERE id = ?1 AND state = 'ignored_unknown_project'`,
  status: `SELECT value, changes FROM pull_status WHERE target = ?1 AND entity = ?2 AND key = ?3`,
  // updated_at: when the record came to its present state (kept while it is seen unchanged).
  putStatus: `INSERT INTO pull_status (target, entity, key, value, final, changes, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
        ON CONFLICT (target, entity, key) DO UPDATE SET value = ?4, final = ?5, changes = ?6,
          updated_at = CASE WHEN pull_status.value = ?4 THEN pull_status.updated_at ELSE ?7 END`,
  getCursor: `SELECT value FROM cursors WHERE target = ?1 AND stream = ?2`,
  putCursor: `INSERT INTO cursors (target, stream, value, updated_at) VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT (target, stream) DO UPDATE SET value = ?3, updated_at = ?4`,
  // A run's page: its cursor replaces the one it was pulled from, or is the first (nothing changes when another run
  // wrote one meanwhile; on PostgreSQL the second writer waits for the first and then finds the row changed).
  moveCursor: `UPDATE cursors SET value = ?3, updated_at = ?4 WHERE target = ?1 AND stream = ?2 AND value = ?5`,
  firstCursor: `INSERT INTO cursors (target, stream, value, updated_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (target, stream) DO NOTHING`,
  // A final state (paid) is still asked about for FINAL_RECHECK_MS after it came: a payment can be reversed. Credit notes
  // are not asked about: the customer pays none (records.credits names the invoice a credit note credits).
  openInvoices: `SELECT l.key, l.remote_id AS remoteId, s.value AS status FROM links l
        LEFT JOIN pull_status s ON s.target = l.target AND s.entity = 'invoice' AND s.key = l.key
        WHERE l.target = ?1 AND l.entity = 'invoice' AND (s.final IS NULL OR s.final = 0 OR s.updated_at >= ?2)
          AND NOT EXISTS (SELECT 1 FROM records r WHERE r.entity = 'invoice' AND r.key = l.key AND r.credits IS NOT NULL) ORDER BY l.key`,
  // The credit notes booked at target ?1 (linked there) of the invoices ?2 (a JSON array of numbers: those still asked
  // about), each with the invoice it credits, by records_credits: never the credit notes of every invoice ever paid.
  bookedCredits: `WITH asked AS MATERIALIZED (SELECT value AS invoice FROM json_each(?2))
        SELECT asked.invoice, r.payload FROM asked JOIN records r ON r.credits = asked.invoice AND +r.entity = 'invoice'
         WHERE EXISTS (SELECT 1 FROM links l WHERE l.target = ?1 AND l.entity = 'invoice' AND l.key = r.key)`,
  invoiceTotals: `SELECT asked.value AS key, (SELECT r.payload FROM records r WHERE r.entity = 'invoice' AND r.key = asked.value) AS payload
        FROM json_each(?1) AS asked`,
  feed: `SELECT ${ROW_COLUMNS} FROM inbox WHERE state IN ('new', 'delivered') AND seq > ?1 AND (CAST(?2 AS TEXT) IS NULL OR target = ?2) ORDER BY seq LIMIT ?3`,
  ignored: `SELECT ${ROW_COLUMNS} FROM inbox WHERE state = 'ignored_unknown_project' AND seq > ?1 AND (CAST(?2 AS TEXT) IS NULL OR target = ?2) ORDER BY seq LIMIT ?3`,
  lastSeq: `SELECT coalesce(max(seq), 0) AS s FROM inbox`,
  acknowledge: `UPDATE inbox SET state = 'delivered', delivered_via = 'feed', delivered_at = ?1, updated_at = ?1
        WHERE state = 'new' AND seq <= ?2 AND (CAST(?3 AS TEXT) IS NULL OR target = ?3)`,
  attachment: `SELECT attachment_name AS name, attachment_type AS type, attachment AS bytes FROM inbox WHERE id = ?1 AND attachment IS NOT NULL`,
  // Due and not carried by a request of another worker (lease_until); `?3 = 1`: only those never attempted. An item
  // waiting behind an older one of the same record (IN_TURN) is not due: its turn comes when that one is delivered.
  undelivered: `SELECT ${ROW_COLUMNS} FROM inbox WHERE state = 'new' AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until <= ?2)
        AND (?3 = 0 OR attempts = 0) AND ${IN_TURN} ORDER BY seq LIMIT ?1`,
  nextUndeliveredAt: `SELECT min(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) AS t FROM inbox WHERE state = 'new' AND ${IN_TURN}`,
  // Takes the items for one request. The WHERE is checked again on each row: of two workers that both read an item
  // as due, the second finds it leased once the first commits (PostgreSQL re-reads a row it waited for), and gets
  // nothing for it.
  // The statements given a JSON list of ids (?1 here, ?2 and ?6 below) join it MATERIALIZED: `id IN (SELECT CAST(value
  // AS BIGINT) …)` joins on the cast, which is not leakproof, so under row-level security PostgreSQL keeps it above the
  // policy's filter and walks every item of the tenant; on a plain column it probes the key per id (outbox.ts's lease).
  lease: `WITH listed AS MATERIALIZED (SELECT DISTINCT CAST(value AS BIGINT) AS id FROM json_each(?1))
        UPDATE inbox SET lease_until = ?3 FROM listed WHERE inbox.id = listed.id AND state = 'new'
        AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until <= ?2) RETURNING inbox.id`,
  releaseLeases: `WITH listed AS MATERIALIZED (SELECT DISTINCT CAST(value AS BIGINT) AS id FROM json_each(?1))
        UPDATE inbox SET lease_until = NULL FROM listed WHERE inbox.id = listed.id AND state = 'new'`,
  releaseAllLeases: `UPDATE inbox SET lease_until = NULL WHERE lease_until IS NOT NULL`,
  markDelivered: `WITH listed AS MATERIALIZED (SELECT DISTINCT CAST(value AS BIGINT) AS id FROM json_each(?2))
        UPDATE inbox SET state = 'delivered', delivered_via = 'webhook', delivered_at = ?1, updated_at = ?1, lease_until = NULL, error_code = NULL, error_message = NULL, error_hint = NULL
        FROM listed WHERE inbox.id = listed.id AND state = 'new'`,
  markFailed: `WITH listed AS MATERIALIZED (SELECT DISTINCT CAST(value AS BIGINT) AS id FROM json_each(?6))
        UPDATE inbox SET attempts = attempts + 1, next_attempt_at = ?1, updated_at = ?2, lease_until = NULL, error_code = ?3, error_message = ?4, error_hint = ?5
        FROM listed WHERE inbox.id = listed.id AND state = 'new'`,
  counts: `SELECT target, state, count(*) AS n FROM inbox GROUP BY target, state ORDER BY target, state`,
  recent: `SELECT ${ROW_COLUMNS} FROM inbox WHERE target = ?1 ORDER BY seq DESC LIMIT ?2`,
};

/**
 * A page of a claimed pull run (agent/pulls/runner.ts). It is stored only while the run is still running and its
 * own, and its cursor only replaces the one the page was pulled from: a worker declared dead (PostgreSQL) that
 * comes back with a late page changes neither the inbox nor the cursor.
 */
export interface PageOfRun {
  /** The cursor the page was pulled from (null: the stream had none). */
  cursorWas: string | null;
  /** First thing in the page's transaction: false when the run is no longer running (its worker was declared dead). */
  stillRunning(tx: SqlRunner): Promise<boolean>;
}

/** A page of a run that was not stored (see PageOfRun); nothing of it was written. */
export class StalePageError extends Error {}

export class Inbox {
  constructor(
    private readonly storage: SqlRunner,
    private readonly now: () => number = Date.now,
  ) {}

  async cursor(target: string, stream: string): Promise<string | null> {
    return (await this.storage.get<{ value: string }>(SQL.getCursor, target, stream))?.value ?? null;
  }

  /**
   * Invoices booked at `target` by this agent whose payment status is not final, or became final (paid) less than
   * FINAL_RECHECK_MS ago: a payment reversed at the target (returned by the bank, booked on the wrong invoice) makes
   * it open again, and the PSA must hear that.
   */
  async openInvoices(target: string): Promise<{ key: string; remoteId: string; status: string | null }[]> {
    const open = await this.storage.all<{ key: string; remoteId: string; status: string | null }>(
      SQL.openInvoices,
      target,
      this.now() - FINAL_RECHECK_MS,
    );
    const credited = await this.fullyCredited(target, open);
    return open.filter((i) => !credited.has(i.key)).map((i) => ({ ...i, status: statusValue(i.status) }));
  }

  /**
   * The invoices among `open` whose credit notes booked at `target` credit their whole total. Not asked about any more: the target's
   * ledger may keep their remainder open (e-conomic does until someone matches the entries), which would be reported
   * to the PSA as overdue, for an invoice it credited.
   */
  private async fullyCredited(target: string, open: { key: string }[]): Promise<Set<string>> {
    const credited = new Map<string, number>();
    if (open.length === 0) return new Set();
    const asked = JSON.stringify(open.map((i) => String(i.key)));
    for (const r of await this.storage.all<{ invoice: string; payload: string }>(SQL.bookedCredits, target, asked)) {
      const key = String(r.invoice);
      credited.set(key, (credited.get(key) ?? 0) + documentAmount(JSON.parse(r.payload).lines ?? []));
    }
    const full = new Set<string>();
    if (credited.size === 0) return full;
    const invoices = await this.storage.all<{ key: string; payload: string | null }>(
      SQL.invoiceTotals,
      JSON.stringify([...credited.keys()]),
    );
    for (const i of invoices) {
      if (i.payload !== null && credited.get(String(i.key))! >= documentAmount(JSON.parse(i.payload).lines ?? [])) full.add(String(i.key));
    }
    return full;
  }

  /**
   * Stores one page of a pull and the stream's new cursor in one transaction: either both are on disk
   * or neither is, so a crash between fetching and storing loses nothing and a repeat stores nothing twice.
   * `run`: the page is a run's, kept only while that run is still running and the cursor is still the one it was
   * pulled from; otherwise nothing is written and a StalePageError says why.
   */
  storeBatch(
    target: string,
    stream: string,
    items: PullItem[],
    cursor: string | null,
    master?: MasterFilter,
    run?: PageOfRun,
  ): Promise<StoreCounts> {
    return this.storage.transaction(async (tx) => {
      if (run && !(await run.stillRunning(tx)))
        throw new StalePageError(
          `The page of ${target}/${stream} was not stored: its run was ended by another worker (this one was declared dead after missing its heartbeats, or the target was pointed at another account meanwhile). The job's next run pulls what is due.`,
        );
      await tx.run(SQL.takeTurn);
      const now = this.now();
      const counts: StoreCounts = { fetched: items.length, imported: 0, duplicates: 0, ignored: 0 };
      for (const item of items) {
        // Master data (agent/master/): delivered only when master per entity says so; in the same transaction.
        const decided = item.master && master ? await master.pulled(item, tx) : "deliver";
        const outcome =
          decided === "skip"
            ? "duplicates"
            : decided === "report"
              ? "ignored"
              : item.status
                ? await this.storeStatus(tx, target, stream, item, now)
                : item.version !== undefined
                  ? await this.storeVersion(tx, target, stream, item, now)
                  : await this.storeItem(tx, target, stream, item, now);
        if (outcome === "none") counts.fetched -= 1;
        else counts[outcome] += 1;
      }
      if (cursor !== null && !(await this.putCursor(tx, target, stream, cursor, now, run)))
        throw new StalePageError(
          `The page of ${target}/${stream} was not stored: the cursor moved from ${JSON.stringify(run!.cursorWas)} while the page was fetched (another run stored pages meanwhile). That run has these items.`,
        );
      return counts;
    });
  }

  /** Writes the stream's cursor; false when it is a run's page and the cursor is no longer the one it was pulled from. */
  private async putCursor(tx: SqlRunner, target: string, stream: string, cursor: string, now: number, run?: PageOfRun): Promise<boolean> {
    if (!run) {
      await tx.run(SQL.putCursor, target, stream, cursor, now);
      return true;
    }
    const { changes } =
      run.cursorWas === null
        ? await tx.run(SQL.firstCursor, target, stream, cursor, now)
        : await tx.run(SQL.moveCursor, target, stream, cursor, now, run.cursorWas);
    return changes > 0;
  }

  private async nextSeq(tx: SqlRunner): Promise<number> {
    return (await tx.get<{ seq: number }>(SQL.nextSeq, this.now() * 1000))!.seq;
  }

  /**
   * An item's id follows from what it is (target and remote id), so the same entry pulled again (after a
   * restore rolled the watermark back) reaches the PSA under the id it already knows, and an id never
   * names another item. In the very rare case two items hash alike, the next free number is taken.
   */
  private async idFor(tx: SqlRunner, target: string, remoteId: string): Promise<number> {
    let id = stableItemId(target, remoteId);
    while (await tx.get(SQL.idTaken, id)) id = nextItemId(id);
    return id;
  }

  private async storeItem(
    tx: SqlRunner,
    target: string,
    stream: string,
    item: PullItem,
    now: number,
  ): Promise<"imported" | "duplicates" | "ignored"> {
    const known = !item.requires || (await tx.get(SQL.known, item.requires.entity, item.requires.key)) !== null;
    const existing = await tx.get<{ id: number; state: InboxState }>(SQL.byRemote, target, item.remoteId);
    if (existing) {
      // Seen before on a project the PSA did not know; it knows it now, so the item goes out after all.
      if (existing.state === "ignored_unknown_project") {
        if (!known) return "ignored";
        await tx.run(SQL.release, existing.id, await this.nextSeq(tx), now);
        return "imported";
      }
      return "duplicates";
    }
    await this.insert(tx, target, stream, item.remoteId, item, known ? "new" : "ignored_unknown_project", item.data, now);
    return known ? "imported" : "ignored";
  }

  /**
   * An item the target can change after it was pulled (PullItem.version: a supplier invoice's cost row). The first
   * sighting is stored as any item, under its remote id (`expense.posted`). A later sighting with another version (a
   * new amount, project or date), or cancelled, is a new item: `expense.changed` (the new data) or `expense.cancelled`,
   * naming the first item (`replaces`: its id, `replacesRemoteId`: its remote id), so the PSA sets, or removes, the one
   * cost it keeps for it. The version standing for the cost is kept in pull_status (entity "expense"). A change's remote id
   * carries its count and the time it was seen, as a status change's does: after a restore rolled the count back, a change
   * never gets the id of one the PSA took before (and is dropped there as a duplicate); one seen again is heard again,
   * which sets the cost to the same amount. An item stored before versions were kept is taken as unchanged the first time.
   */
  private async storeVersion(
    tx: SqlRunner,
    target: string,
    stream: string,
    item: PullItem,
    now: number,
  ): Promise<"imported" | "duplicates" | "ignored" | "none"> {
    const version = item.cancelled ? CANCELLED : item.version!;
    const first = await tx.get<{ id: number; state: InboxState; requires: string | null }>(SQL.byRemote, target, item.remoteId);
    const last = await tx.get<{ value: string; changes: number }>(SQL.status, target, "expense", item.remoteId);
    const stands: { v: string; id: string } = last ? JSON.parse(last.value) : { v: version, id: item.remoteId };
    const put = (v: string, id: string, changes: number) =>
      tx.run(SQL.putStatus, target, "expense", item.remoteId, JSON.stringify({ v, id }), 0, changes, now);
    if (!first) {
      // Never reported (a row that was never a cost: no project, a draft): nothing to cancel, and nothing fetched.
      if (item.cancelled) return "none";
      await put(version, item.remoteId, 0);
      return this.storeItem(tx, target, stream, item, now);
    }
    if (stands.v === version) {
      if (!last) await put(version, item.remoteId, 0);
      // The same version again: released if it waited for its project (as storeItem does for any item).
      const standing = await tx.get<{ id: number; state: InboxState; requires: string | null }>(SQL.byRemote, target, stands.id);
      if (standing?.state !== "ignored_unknown_project") return "duplicates";
      if (!(await this.known(tx, standing.requires))) return "ignored";
      await tx.run(SQL.release, standing.id, await this.nextSeq(tx), now);
      return "imported";
    }
    const changes = (last?.changes ?? 0) + 1;
    const remoteId = `${item.remoteId}#${changes}@${now}`;
    // A cancellation is about the cost's project as last reported (the target may no longer name one).
    const requires = item.cancelled ? parseRef(first.requires) : item.requires;
    const known = await this.known(tx, requires ? requiresRef(requires) : null);
    const data = { ...(item.data as object), replaces: first.id, replacesRemoteId: item.remoteId };
    const type = item.cancelled ? EXPENSE_CANCELLED : EXPENSE_CHANGED;
    await this.insert(tx, target, stream, remoteId, { ...item, type, requires }, known ? "new" : "ignored_unknown_project", data, now);
    await put(version, remoteId, changes);
    return known ? "imported" : "ignored";
  }

  private async known(tx: SqlRunner, requires: string | null): Promise<boolean> {
    const r = parseRef(requires);
    return !r || (await tx.get(SQL.known, r.entity, r.key)) !== null;
  }

  /**
   * A status stream item is stored only when the record's state changed since it was last seen. Its remote id names
   * the change: the record, how many changes it has had, and the state it changed to. A restore rolls the count
   * back, so the count alone could name a change the PSA already took (overdue) for another (paid), and the PSA,
   * deduping on the id, would drop it; with the state in it, the same id is only ever the same news.
   */
  private async storeStatus(
    tx: SqlRunner,
    target: string,
    stream: string,
    item: PullItem,
    now: number,
  ): Promise<"imported" | "duplicates"> {
    const s = item.status!;
    const state = s.detail === undefined ? s.value : `${s.value}:${s.detail}`;
    const last = await tx.get<{ value: string; changes: number }>(SQL.status, target, s.entity, s.key);
    const previous = last?.value ?? s.baseline ?? null;
    const changes = (last?.changes ?? 0) + (previous === state ? 0 : 1);
    await tx.run(SQL.putStatus, target, s.entity, s.key, state, s.final ? 1 : 0, changes, now);
    if (previous === state) return "duplicates";
    const data = { ...(item.data as object), previousStatus: statusValue(previous) };
    // The change's time makes its id one a restore cannot hand out again: the count and the stored status roll back with
    // the database, so a change after a restore (a part of a payment returned) could otherwise get the id of one the PSA
    // took before it (the same count, status and remainder) and be dropped there as a duplicate. A change seen again
    // after a restore reaches the PSA again under a new id: news it had, never news it misses.
    await this.insert(tx, target, stream, `${item.remoteId}#${changes}:${state}@${now}`, item, "new", data, now);
    return "imported";
  }

  private async insert(
    tx: SqlRunner,
    target: string,
    stream: string,
    remoteId: string,
    item: PullItem,
    state: InboxState,
    data: unknown,
    now: number,
  ): Promise<void> {
    const a = item.attachment;
    const row = [
      await this.nextSeq(tx),
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
    ];
    // The record it is about: a status item's record, a master record's own (its versions reach the PSA in turn, as a
    // status item's do: IN_TURN), else the record it requires.
    const about = item.status ?? item.master ?? item.requires;
    const record = about ? requiresRef(about) : null;
    let id = await this.idFor(tx, target, remoteId);
    for (let tries = 0; (await tx.run(SQL.insert, ...row, id, record)).changes === 0; tries++) {
      // Stored already; or, on PostgreSQL, the id is another tenant's item (ids are unique across the database,
      // and a tenant sees only its own rows): the next free number is taken, as for a hash collision.
      if (await tx.get(SQL.byRemote, target, remoteId)) return;
      if (tries >= 1000) throw new Error(`inbox item ${target}/${remoteId} could not be stored: no free id or feed position found`);
      id = nextItemId(id);
    }
  }

  // ── the feed ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Deliverable items (new or delivered) after the cursor `after` (a seq), oldest first. Items kept as
   * ignored are not in the feed: one becomes deliverable later under a new seq, so a reader sees each item
   * once, when it can use it (see `ignored()` for the others).
   */
  feed(opts: { after: number; limit: number; target?: string }): Promise<{ rows: InboxRow[]; more: boolean }> {
    return this.page(SQL.feed, opts);
  }

  /** Items kept but not delivered (the PSA does not know their project yet), oldest first; acknowledges nothing. */
  ignored(opts: { after: number; limit: number; target?: string }): Promise<{ rows: InboxRow[]; more: boolean }> {
    return this.page(SQL.ignored, opts);
  }

  private async page(text: string, opts: { after: number; limit: number; target?: string }): Promise<{ rows: InboxRow[]; more: boolean }> {
    const rows = await this.storage.all<InboxRow>(text, opts.after, opts.target ?? null, opts.limit + 1);
    return { rows: rows.slice(0, opts.limit), more: rows.length > opts.limit };
  }

  /** The newest position in the feed (0 when empty). */
  async lastSeq(): Promise<number> {
    return (await this.storage.get<{ s: number }>(SQL.lastSeq))!.s;
  }

  /** A reader asking for items after `after` has taken everything up to it: those count as delivered. */
  async acknowledge(after: number, target?: string): Promise<number> {
    return (await this.storage.run(SQL.acknowledge, this.now(), after, target ?? null)).changes;
  }

  async attachment(id: number): Promise<{ name: string; type: string; bytes: Uint8Array } | null> {
    const row = await this.storage.get<{ name: string; type: string | null; bytes: Uint8Array }>(SQL.attachment, id);
    return row ? { name: row.name, type: row.type ?? "application/octet-stream", bytes: new Uint8Array(row.bytes) } : null;
  }

  // ── delivery to the PSA webhook ──────────────────────────────────────────────────────────────────

  /** The oldest undelivered items that are due, in feed order; `untriedOnly`: only those never attempted. */
  undelivered(limit: number, now: number = this.now(), untriedOnly = false): Promise<InboxRow[]> {
    return this.storage.all<InboxRow>(SQL.undelivered, limit, now, untriedOnly ? 1 : 0);
  }

  /** When the next undelivered item is due, or null when none waits. */
  async nextUndeliveredAt(): Promise<number | null> {
    return (await this.storage.get<{ t: number | null }>(SQL.nextUndeliveredAt))!.t;
  }

  /**
   * Takes items for one webhook request until `until`: returns the ids taken, those no other worker took first
   * (an item stays due for nobody else until it is marked delivered or failed, its lease released, or `until`).
   */
  async lease(ids: number[], now: number, until: number): Promise<number[]> {
    if (ids.length === 0) return [];
    const rows = await this.storage.all<{ id: number }>(SQL.lease, JSON.stringify(ids), now, until);
    return rows.map((r) => r.id);
  }

  /** Gives leased items back untouched (a request that was stopped): they are due again at once. */
  async releaseLeases(ids: number[]): Promise<void> {
    if (ids.length > 0) await this.storage.run(SQL.releaseLeases, JSON.stringify(ids));
  }

  /** Gives every lease back: for a single process at start (SQLite), whose leases can only be a dead run's. */
  async releaseAllLeases(): Promise<number> {
    return (await this.storage.run(SQL.releaseAllLeases)).changes;
  }

  async markDelivered(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.storage.run(SQL.markDelivered, this.now(), JSON.stringify(ids));
  }

  async markFailed(ids: number[], problem: Problem, nextAttemptAt: number): Promise<void> {
    if (ids.length === 0) return;
    await this.storage.run(
      SQL.markFailed,
      nextAttemptAt,
      this.now(),
      problem.code,
      problem.message,
      problem.hint ?? null,
      JSON.stringify(ids),
    );
  }

  // ── status page ──────────────────────────────────────────────────────────────────────────────────

  counts(): Promise<{ target: string; state: InboxState; n: number }[]> {
    return this.storage.all(SQL.counts);
  }

  recent(target: string, limit = 15): Promise<InboxRow[]> {
    return this.storage.all<InboxRow>(SQL.recent, target, limit);
  }
}
