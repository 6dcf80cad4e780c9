// Storing validated events: a group of requests in one durable transaction (group commit), each request
// all or nothing. Every decision (duplicate, id reused, number or PSA id taken, stale, new version) is
// made from a few set-based reads before anything of the request is written, so a refused request writes
// nothing and needs no savepoint; the writes are multi-row statements (issue 16: one call per row was
// most of intake's time). Runs on the thread that holds the connection: the agent's intake worker
// (agent/intake-worker.ts) or an in-process IntakeWriter.
import { multiRowSql } from "./db/multi-row.ts";
import { type SqlRunner, together } from "./db/pg/runner.ts";
import { exportStatusOnStore } from "./exports/status.ts";
import type { RejectedEvent, StoredResult, ValidEvent } from "./intake.ts";
import { canonicalNumber, decodedBase64Length, EVENT_TYPES, type Entity, type EventType, type InvoiceLike } from "./model.ts";
import type { NewDeliveries, Outbox } from "./outbox.ts";
import { capitalise, type Problem } from "./problem.ts";

/** What the writer needs of a validated event: plain data, so it can be handed to the intake worker. */
export interface PreparedEvent {
  id: string;
  type: EventType;
  entity: Entity;
  key: string;
  /** The canonical payload (JSON of the validated data). */
  payload: string;
  occurredAt: number | null;
  /** Invoices and credit notes: what the number, PSA id and credited-document checks need, and the record's payload. */
  doc?: {
    kind: InvoiceLike["kind"];
    number: string;
    psaId: string;
    customerNumber: string;
    currency: string;
    credits?: string;
    recordPayload: string;
  };
}

/** Serialises validated events for the writer (on the caller's thread, off the writer's). Pure. */
export function prepareEvents(events: ValidEvent[]): PreparedEvent[] {
  return events.map((e) => {
    const payload = JSON.stringify(e.data);
    const prepared: PreparedEvent = { id: e.id, type: e.type, entity: e.entity, key: e.key, payload, occurredAt: e.occurredAt ?? null };
    if (e.entity === "invoice") {
      const doc = e.data as InvoiceLike;
      const credits = doc.kind === "credit_note" ? String(doc.creditedInvoiceNumber) : undefined;
      prepared.doc = {
        kind: doc.kind,
        number: String(doc.number),
        psaId: doc.psaId,
        customerNumber: String(doc.customerNumber),
        currency: doc.currency,
        credits,
        recordPayload: recordPayload(doc, payload),
      };
    }
    return prepared;
  });
}

/** The record payload kept in `records`: an invoice's PDF stays in its event only (stored once). */
function recordPayload(doc: any, eventPayload: string): string {
  if (!doc?.pdf?.contentBase64) return eventPayload;
  const { contentBase64, ...pdf } = doc.pdf;
  return JSON.stringify({ ...doc, pdf: { ...pdf, size: decodedBase64Length(contentBase64) } });
}

/** A request's outcome: every event's result, or the conflicts that kept all of it from being stored. */
export type RequestOutcome = { stored: StoredResult[] } | { conflicts: RejectedEvent[] };

/** A record as stored, with the versions earlier events of the same request made of it. */
interface RecordState {
  version: number;
  occurredAt: number | null;
  psaId: string | null;
  /** Invoices: the stored document's kind, PSA id, customer and currency as its payload says. */
  kind?: string;
  payloadPsaId?: string;
  customerNumber?: string;
  currency?: string;
  /** Stored before this request (its open deliveries are superseded by the new version). */
  stored: boolean;
}

const recordKey = (entity: string, key: string) => `${entity}\u0000${key}`;

/**
 * Intake's statements, written once for both engines. Each read is driven by the group's list: per item one probe of
 * the table's index (a subquery in the select list is run for each row of the list, on both engines), a row per item
 * with NULL where nothing is stored. As `key IN (SELECT value FROM json_each(?))` or a join, PostgreSQL chose the order:
 * on tables without statistics yet (a new installation, a first import: row-level security's `tenant_id = <setting>`
 * and `entity = ?` guessed at one row) it walked all of the tenant's records once per key of the list, 1.2 s for a
 * batch of 1,000 against 10,000 records, growing with both. A stored row's columns come as one JSON object (one probe).
 */
const SQL = {
  eventsById: `SELECT asked.value AS id,
           (SELECT CAST(json_object('type', e.type, 'payload', e.payload) AS TEXT) FROM events e WHERE e.event_id = asked.value) AS stored
           FROM json_each(?1) AS asked`,
  recordsByKey: `SELECT asked.value AS key,
           (SELECT CAST(json_object('version', r.version, 'occurredAt', r.occurred_at, 'psaId', r.psa_id,
                     'payload', CASE WHEN r.entity = 'invoice' THEN r.payload END) AS TEXT)
              FROM records r WHERE r.entity = ?1 AND r.key = asked.value) AS stored
           FROM json_each(?2) AS asked`,
  // Only whether another document than the one sent holds a PSA id matters: one of the lowest and highest numbers
  // holding it is another unless both are that one.
  invoicesByPsaId: `SELECT asked.value AS psaId, (SELECT min(r.key) FROM records r WHERE r.psa_id = asked.value AND +r.entity = 'invoice') AS lowest,
           (SELECT max(r.key) FROM records r WHERE r.psa_id = asked.value AND +r.entity = 'invoice') AS highest
           FROM json_each(?1) AS asked`,
};
// The invoice each credit note of a group credits (records.credits), ?1 a JSON array of {k: key, c: credited}: its own
// statement, run only for a group with credit notes, so that a group without any writes the columns every version has.
const SET_CREDITS = `WITH credited AS MATERIALIZED (SELECT json_extract(value, '$.k') AS key, json_extract(value, '$.c') AS credits FROM json_each(?1))
  UPDATE records SET credits = credited.credits FROM credited WHERE records.entity = 'invoice' AND records.key = credited.key`;
const insertEvents = multiRowSql(
  "INSERT INTO events (event_id, type, entity, key, payload, received_at, occurred_at, stale)",
  8,
  "RETURNING seq, event_id AS id",
);
const upsertRecords = multiRowSql(
  "INSERT INTO records (entity, key, payload, version, last_event_seq, occurred_at, updated_at, psa_id)",
  8,
  `ON CONFLICT (entity, key) DO UPDATE SET payload = excluded.payload, version = excluded.version, last_event_seq = excluded.last_event_seq,
         occurred_at = excluded.occurred_at, psa_id = excluded.psa_id, updated_at = excluded.updated_at`,
);

// Intake decides a group in memory from what it reads, then writes (duplicates, reused ids, numbers taken, stale and
// superseded versions): that is right only if no other writer of the same tenant commits in between. On SQLite the
// write transaction holds the database. On PostgreSQL, where intake can land on any worker, the writers of a tenant
// take turns on the tenant's `intake_writer` settings row, locked until commit (created by the first writer).
// A restore noticed on PostgreSQL takes each tenant's turn too (agent/db/pg/restore-watch.ts), so a group reads its doubt.
const INTAKE_TURN = `SELECT name FROM settings WHERE name = 'intake_writer' FOR UPDATE`;
const INTAKE_TURN_ROW = `INSERT INTO settings (name, value) VALUES ('intake_writer', '') ON CONFLICT (name) DO NOTHING`;

export async function takeIntakeTurn(tx: SqlRunner): Promise<void> {
  const locked = await tx.lockForUpdate(INTAKE_TURN);
  if (locked !== 0) return; // taken (PostgreSQL), or nothing to take (SQLite: null)
  await tx.run(INTAKE_TURN_ROW);
  await tx.lockForUpdate(INTAKE_TURN);
}

/** Stores events on the outbox's storage, in the transaction that creates their deliveries. */
export class IntakeStore {
  constructor(
    private readonly outbox: Outbox,
    private readonly targetsFor: (entity: Entity) => string[],
    private readonly now: () => number = Date.now,
    /**
     * Runs in each group's transaction once it has the intake turn, before anything is read or written; throwing stores
     * nothing of the group (a hosted tenant: its configuration changed since this runtime started).
     */
    private readonly guard?: (tx: SqlRunner) => Promise<void>,
  ) {}

  /**
   * Stores each request of the group in one IMMEDIATE transaction (one fsync for them all), in order, each
   * seeing what the earlier ones stored. The whole group is read and written with a few statements: the
   * decisions are made per request in memory. Throws, with nothing stored, if the transaction fails.
   * `requests` may be a function: called once the transaction holds the intake turn, it says what the group is, so
   * requests that arrived while another writer held the turn can join it.
   */
  storeGroup(requests: PreparedEvent[][] | (() => PreparedEvent[][])): Promise<RequestOutcome[]> {
    return this.outbox.runner.transaction(async (tx) => {
      await takeIntakeTurn(tx);
      if (typeof requests === "function") requests = requests();
      const all = requests.flat();
      // The guard and the reads are sent together: on PostgreSQL one round trip on the transaction's connection (it
      // runs them in order, each after the turn was taken), where each was one while the tenant's turn is held.
      const [, events, records, owners] = await together([
        this.guard?.(tx) ?? Promise.resolve(),
        this.storedEvents(tx, all),
        this.storedRecords(tx, all),
        this.invoiceOwners(tx, all),
      ] as const);
      const d = new Decisions(events, records, owners);
      const outcomes = requests.map((events) => decide(events, d));
      await this.write(tx, d, this.now());
      return outcomes;
    });
  }

  private async write(tx: SqlRunner, d: Decisions, now: number): Promise<void> {
    if (d.rows.length === 0) return;
    const seqs = new Map<string, number>();
    const inserted = (await insertEvents(
      tx,
      d.rows.map(({ e, stale }) => [e.id, e.type, e.entity, e.key, e.payload, now, e.occurredAt, stale ? 1 : 0]),
    )) as { seq: number; id: string }[];
    for (const r of inserted) seqs.set(r.id, r.seq);
    const recordRows: unknown[][] = [];
    const invoiceKeys: string[] = [];
    const credits: { k: string; c: string }[] = [];
    for (const [rk, i] of d.latest) {
      const { e } = d.rows[i]!;
      const r = d.records.get(rk)!;
      recordRows.push([e.entity, e.key, e.doc?.recordPayload ?? e.payload, r.version, seqs.get(e.id)!, r.occurredAt, now, r.psaId]);
      if (e.entity === "invoice") invoiceKeys.push(e.key);
      if (e.doc?.credits !== undefined) credits.push({ k: e.key, c: e.doc.credits });
    }
    // A group with credit notes then says what each credits, in the rows the upsert made (a round trip more on PostgreSQL).
    const upserted = upsertRecords(tx, recordRows);
    const writes: Promise<unknown>[] = [
      exportStatusOnStore(tx, invoiceKeys, now),
      credits.length === 0 ? upserted : upserted.then(() => tx.run(SET_CREDITS, JSON.stringify(credits))),
    ];
    const deliveries: NewDeliveries[] = [];
    d.rows.forEach(({ e, stale }, i) => {
      if (stale) return;
      const rk = recordKey(e.entity, e.key);
      deliveries.push({
        eventSeq: seqs.get(e.id)!,
        entity: e.entity,
        key: e.key,
        targets: this.targetsFor(e.entity),
        seenBefore: d.records.get(rk)!.stored,
        superseded: d.latest.get(rk) !== i,
        // The record's latest known time, as records.occurred_at keeps it (catchUp and a dependency sent late read that).
        occurredAt: d.records.get(rk)!.occurredAt,
      });
    });
    // Sent with the records' writes (one round trip on PostgreSQL while the tenant's turn is held): none of them
    // needs another's result.
    writes.push(this.outbox.enqueue(tx, deliveries));
    await together(writes);
  }

  /** The stored events with the group's ids (a repeat is a duplicate or a reused id). */
  private async storedEvents(tx: SqlRunner, events: PreparedEvent[]): Promise<Map<string, { type: string; payload: string }>> {
    const stored = new Map<string, { type: string; payload: string }>();
    const ids = JSON.stringify([...new Set(events.map((e) => e.id))]);
    for (const r of await tx.all<{ id: string; stored: string | null }>(SQL.eventsById, ids))
      if (r.stored !== null) stored.set(r.id, JSON.parse(r.stored));
    return stored;
  }

  /**
   * The stored records the request's events are versions of (invoices with their kind and PSA id), and the documents
   * its credit notes credit.
   */
  private async storedRecords(tx: SqlRunner, events: PreparedEvent[]): Promise<Map<string, RecordState>> {
    const keysByEntity = new Map<Entity, Set<string>>();
    const add = (entity: Entity, key: string) => {
      const keys = keysByEntity.get(entity);
      if (keys) keys.add(key);
      else keysByEntity.set(entity, new Set([key]));
    };
    for (const e of events) {
      add(e.entity, e.key);
      if (e.doc?.credits !== undefined) add("invoice", e.doc.credits);
    }
    const records = new Map<string, RecordState>();
    const read = [...keysByEntity].map(
      async ([entity, keys]) =>
        [entity, await tx.all<{ key: string; stored: string | null }>(SQL.recordsByKey, entity, JSON.stringify([...keys]))] as const,
    );
    for (const [entity, rows] of await together(read)) {
      for (const { key, stored } of rows) {
        if (stored === null) continue;
        const r = JSON.parse(stored) as { version: number; occurredAt: number | null; psaId: string | null; payload: string | null };
        const doc = r.payload
          ? (JSON.parse(r.payload) as { kind?: string; psaId?: string; customerNumber?: string | number; currency?: string })
          : undefined;
        records.set(recordKey(entity, key), {
          version: r.version,
          occurredAt: r.occurredAt,
          psaId: r.psaId,
          kind: doc?.kind,
          payloadPsaId: doc?.psaId,
          customerNumber: doc?.customerNumber === undefined ? undefined : canonicalNumber(doc.customerNumber),
          currency: doc?.currency,
          stored: true,
        });
      }
    }
    return records;
  }

  /** The stored invoices and credit notes holding the PSA ids the request's documents name. */
  private async invoiceOwners(tx: SqlRunner, events: PreparedEvent[]): Promise<Map<string, string[]>> {
    const owners = new Map<string, string[]>();
    const psaIds = new Set(events.flatMap((e) => (e.doc ? [e.doc.psaId] : [])));
    if (psaIds.size === 0) return owners;
    const rows = await tx.all<{ psaId: string; lowest: string | null; highest: string | null }>(
      SQL.invoicesByPsaId,
      JSON.stringify([...psaIds]),
    );
    for (const r of rows) for (const key of new Set([r.lowest, r.highest])) if (key !== null) addOwner(owners, r.psaId, key);
    return owners;
  }
}

/**
 * What the group's requests have decided so far: the events and records as stored plus the accepted
 * requests' changes, and the rows to write. A request refused part-way is undone from its log.
 */
class Decisions {
  /** Events to insert (stale ones too), and per record the index in `rows` of its latest accepted version. */
  readonly rows: { e: PreparedEvent; stale: boolean }[] = [];
  readonly latest = new Map<string, number>();
  /** What each `set` of the current request replaced: the map, the key, whether it had one, the old value. */
  private undo: [Map<unknown, unknown>, unknown, boolean, unknown][] = [];
  private rowsBefore = 0;

  constructor(
    readonly events: Map<string, { type: string; payload: string }>,
    readonly records: Map<string, RecordState>,
    readonly psaOwners: Map<string, string[]>,
  ) {}

  begin(): void {
    this.undo = [];
    this.rowsBefore = this.rows.length;
  }

  set<K, V>(map: Map<K, V>, key: K, value: V): void {
    this.undo.push([map as Map<unknown, unknown>, key, map.has(key), map.get(key)]);
    map.set(key, value);
  }

  rollback(): void {
    for (const [map, key, had, old] of this.undo.reverse()) {
      if (had) map.set(key, old);
      else map.delete(key);
    }
    this.rows.length = this.rowsBefore;
  }
}

/** Decides one request against what is stored and what the group's earlier requests decided. Pure but for `d`. */
function decide(events: PreparedEvent[], d: Decisions): RequestOutcome {
  d.begin();
  const results: StoredResult[] = [];
  const conflicts: RejectedEvent[] = [];
  events.forEach((e, index) => {
    const before = d.events.get(e.id);
    if (before) {
      if (sameEvent(before, e)) results.push({ id: e.id, status: "duplicate" });
      else conflicts.push({ index, id: e.id, problems: [idReused(e)] });
      return;
    }
    d.set(d.events, e.id, e);
    const taken = e.doc ? (documentTaken(e.doc, d.records, d.psaOwners) ?? creditedElsewhere(e.doc, d.records)) : null;
    if (taken) return conflicts.push({ index, id: e.id, problems: [taken] });
    const rk = recordKey(e.entity, e.key);
    const record = d.records.get(rk);
    // A version older (by the PSA's occurredAt) than the stored one changes nothing: kept, never pushed.
    if (record && e.occurredAt !== null && record.occurredAt !== null && e.occurredAt < record.occurredAt) {
      d.rows.push({ e, stale: true });
      return results.push({ id: e.id, status: "stale" });
    }
    d.set(d.records, rk, {
      version: (record?.version ?? 0) + 1,
      // A version without a time keeps the record's latest known one: else a late resend of a version older than that
      // would not be stale, and would be pushed over the newer one. (Not older than it, so this is the latest.)
      occurredAt: e.occurredAt ?? record?.occurredAt ?? null,
      psaId: e.doc?.psaId ?? null,
      kind: e.doc?.kind,
      payloadPsaId: e.doc?.psaId,
      customerNumber: e.doc?.customerNumber,
      currency: e.doc?.currency,
      stored: record?.stored ?? false,
    });
    if (e.doc) d.set(d.psaOwners, e.doc.psaId, [...(d.psaOwners.get(e.doc.psaId) ?? []), e.key]);
    d.set(d.latest, rk, d.rows.length);
    d.rows.push({ e, stale: false });
    results.push({ id: e.id, status: "accepted" });
  });
  if (conflicts.length === 0) return { stored: results };
  d.rollback();
  return { conflicts };
}

/**
 * One document per number and per PSA id: a credit note numbered like a stored invoice (or the other
 * way round), or a PSA id already used by another number, would replace or be mistaken for the other
 * document at the target. A new version of the same document keeps both its number and its PSA id.
 */
function documentTaken(
  doc: NonNullable<PreparedEvent["doc"]>,
  records: Map<string, RecordState>,
  psaOwners: Map<string, string[]>,
): Problem | null {
  const what = doc.kind === "credit_note" ? "credit note" : "invoice";
  const sameNumber = records.get(recordKey("invoice", doc.number));
  if (sameNumber && (sameNumber.kind !== doc.kind || sameNumber.psaId !== doc.psaId)) {
    const otherWhat = sameNumber.kind === "credit_note" ? "credit note" : "invoice";
    return {
      code: "invoice.number_taken",
      field: "data.number",
      message: `${capitalise(what)} number ${doc.number} (PSA id "${doc.psaId}") is already ${otherWhat} ${doc.number} with PSA id "${sameNumber.psaId ?? sameNumber.payloadPsaId}"; it was not stored.`,
      hint: "Invoices and credit notes share one number series in the accounting systems: give the credit note a number of its own (or resend the document with its original PSA id if it is the same one).",
    };
  }
  const other = psaOwners.get(doc.psaId)?.find((key) => key !== doc.number);
  if (other !== undefined) {
    return {
      code: "invoice.psa_id_taken",
      field: "data.psaId",
      message: `PSA id "${doc.psaId}" already belongs to document ${other}; ${what} ${doc.number} was not stored.`,
      hint: "Every invoice and credit note needs its own psaId (the PSA's id of that document); kontobro finds documents at the target by it.",
    };
  }
  return null;
}

/**
 * What a credit note credits must be an invoice of the same customer in the same currency, where kontobro holds it.
 * A credit note lowers what the customer owes, whatever its signs (agent/model.ts): one crediting a credit note would
 * credit the customer a second time; one for another customer lowers that customer's balance against an invoice it
 * never had (and marks the other's invoice credited).
 */
function creditedElsewhere(doc: NonNullable<PreparedEvent["doc"]>, records: Map<string, RecordState>): Problem | null {
  const credited = doc.credits === undefined ? undefined : records.get(recordKey("invoice", doc.credits));
  if (!credited) return null;
  const hint = `Set creditedInvoiceNumber to the invoice this credit note credits, of the same customer and currency; to take credit note ${doc.credits} back (the customer owes that amount again), send an invoice (invoice.finalized) with its own number.`;
  const refused = (what: string) => `Credit note ${doc.number} credits ${what}; it was not stored.`;
  if (credited.kind === "credit_note")
    return {
      code: "invoice.credits_credit_note",
      field: "data.creditedInvoiceNumber",
      message: refused(
        `credit note ${doc.credits}: a credit note always lowers what the customer owes, so it would credit the customer a second time`,
      ),
      hint,
    };
  if (credited.customerNumber !== undefined && credited.customerNumber !== doc.customerNumber)
    return {
      code: "invoice.credits_other_customer",
      field: "data.customerNumber",
      message: refused(`invoice ${doc.credits} of customer ${credited.customerNumber}, but is for customer ${doc.customerNumber}`),
      hint: `Credit invoice ${doc.credits} to customer ${credited.customerNumber} (and invoice customer ${doc.customerNumber} separately if needed). ${hint}`,
    };
  if (credited.currency !== undefined && credited.currency !== doc.currency)
    return {
      code: "invoice.credits_other_currency",
      field: "data.currency",
      message: refused(`invoice ${doc.credits} in ${credited.currency}, but is in ${doc.currency}`),
      hint: `Write the credit note in ${credited.currency}, the currency of invoice ${doc.credits}. ${hint}`,
    };
  return null;
}

function addOwner(owners: Map<string, string[]>, psaId: string, key: string): void {
  const keys = owners.get(psaId);
  if (keys) keys.push(key);
  else owners.set(psaId, [key]);
}

/**
 * Is a repeated event id the same event? Compared as the current model would store the earlier one:
 * after an upgrade a payload stored by an older version ("0101") equals its resend ("101").
 * '' = retention kept only the id: the content can no longer be compared, so it is a repeat.
 */
function sameEvent(before: { type: string; payload: string }, e: PreparedEvent): boolean {
  if (before.payload === "") return true;
  if (before.type !== e.type) return false;
  if (before.payload === e.payload) return true;
  const again = EVENT_TYPES[e.type].schema.safeParse(JSON.parse(before.payload));
  return again.success && JSON.stringify(again.data) === e.payload;
}

function idReused(e: PreparedEvent): Problem {
  return {
    code: "event.id_reused",
    field: "id",
    message: `Event id "${e.id.slice(0, 100)}" was already stored with other content (a different ${e.entity} or other fields); the new content was not stored.`,
    hint: "Give every change its own event id (for example the PSA's change-log id); repeat an id only to resend exactly the same event.",
  };
}
