// Intake: validates PSA events (pure) and stores them with group commit (many events per durable
// transaction), answering each caller only after its events are on disk.
import { z } from "zod";
import type { Db } from "./db/index.ts";
import { exportStatusOnStore } from "./exports/status.ts";
import { decodedBase64Length, EVENT_TYPES, type Entity, type EventType, type InvoiceLike } from "./model.ts";
import type { Outbox } from "./outbox.ts";
import { issuesToProblems, type Problem } from "./problem.ts";

export const MAX_EVENTS_PER_REQUEST = 1000;

export interface ValidEvent {
  id: string;
  type: EventType;
  entity: Entity;
  key: string;
  data: unknown;
  /** The PSA's occurredAt in ms, when sent: a version older than the stored one is stale. */
  occurredAt?: number;
}

export interface RejectedEvent {
  index: number;
  id?: string;
  problems: Problem[];
}

export type ParseResult =
  | { ok: true; events: ValidEvent[] }
  | { ok: false; status: 400 | 422; message: string; hint: string; events: RejectedEvent[] };

const EVENT_TYPE_NAMES = Object.keys(EVENT_TYPES) as EventType[];

/** Also described in /api/v1/openapi.json (agent/http/openapi.ts). */
export const Envelope = z.object({
  id: z.string({ error: "must be a string: the PSA's unique id of this event (a repeat of it is stored once)" }).trim().min(1).max(200),
  type: z.string({ error: `must be one of ${EVENT_TYPE_NAMES.join(", ")}` }),
  data: z.record(z.string(), z.unknown(), { error: "must be an object with the record's fields" }),
  occurredAt: z.iso
    .datetime({ offset: true, error: "must be an ISO 8601 time with a time zone, e.g. 2026-03-31T14:05:00Z or 2026-03-31T16:05:00+02:00" })
    .optional(),
});

/** Validates one event or an array of them. Nothing is stored unless every event is valid. */
export function parseEvents(body: unknown): ParseResult {
  const list = Array.isArray(body) ? body : [body];
  if (body === null || typeof body !== "object") {
    return {
      ok: false,
      status: 400,
      message: "The body must be one event object or an array of events.",
      hint: 'Send JSON like {"id":"…","type":"customer.upserted","data":{…}}.',
      events: [],
    };
  }
  if (list.length === 0)
    return { ok: false, status: 400, message: "The array of events is empty.", hint: "Send at least one event.", events: [] };
  if (list.length > MAX_EVENTS_PER_REQUEST) {
    return {
      ok: false,
      status: 400,
      message: `Too many events in one request: ${list.length}; the limit is ${MAX_EVENTS_PER_REQUEST}.`,
      hint: `Split the batch into requests of at most ${MAX_EVENTS_PER_REQUEST} events.`,
      events: [],
    };
  }
  const valid: ValidEvent[] = [];
  const rejected: RejectedEvent[] = [];
  list.forEach((raw, index) => {
    const env = Envelope.safeParse(raw);
    const id = typeof (raw as any)?.id === "string" ? (raw as any).id : undefined;
    if (!env.success) return rejected.push({ index, id, problems: issuesToProblems(env.error.issues) });
    const spec = EVENT_TYPES[env.data.type as EventType];
    if (!spec) {
      return rejected.push({
        index,
        id,
        problems: [
          {
            code: "invalid.event_type",
            field: "type",
            message: `type: unknown event type "${env.data.type.slice(0, 60)}"`,
            hint: `Use one of: ${EVENT_TYPE_NAMES.join(", ")}.`,
          },
        ],
      });
    }
    const data = spec.schema.safeParse(env.data.data);
    if (!data.success) return rejected.push({ index, id, problems: issuesToProblems(data.error.issues, { prefix: "data" }) });
    valid.push({
      id: env.data.id,
      type: env.data.type as EventType,
      entity: spec.entity as Entity,
      key: (spec.key as (d: any) => string)(data.data),
      data: data.data,
      ...(env.data.occurredAt ? { occurredAt: Date.parse(env.data.occurredAt) } : {}),
    });
  });
  if (rejected.length > 0) {
    return {
      ok: false,
      status: 422,
      message: `${rejected.length} of ${list.length} event(s) are invalid; nothing in this request was stored.`,
      hint: "Fix the fields named below in the PSA and send the request again (valid events may be resent: repeated ids are stored once).",
      events: rejected,
    };
  }
  return { ok: true, events: valid };
}

export interface StoredResult {
  id: string;
  /**
   * accepted: stored and queued. duplicate: this id with this content was stored before. stale: stored,
   * but older (by occurredAt) than the version already kept, so never pushed.
   */
  status: "accepted" | "duplicate" | "stale";
}

/**
 * A request repeated an event id with other content. Nothing of that request was stored (a batch is
 * all-or-nothing); the API answers 409 with a problem per conflicting event.
 */
/**
 * A request conflicts with what is stored: an event id repeated with other content, or an invoice or
 * credit note whose number or PSA id is already another document's. Nothing of that request was stored
 * (a batch is all-or-nothing); the API answers 409 with a problem per conflicting event.
 */
export class EventConflict extends Error {
  constructor(readonly events: RejectedEvent[]) {
    super(`${events.length} event(s) conflict with what is already stored; nothing in this request was stored.`);
    this.name = "EventConflict";
  }
  readonly hint =
    "Each problem below says what is taken. An event id names one change for ever; an invoice or credit note number and a PSA id each name one document.";
}

/** The record payload kept in `records`: an invoice's PDF stays in its event only (stored once). */
function recordPayload(entity: Entity, data: any, eventPayload: string): string {
  if (entity !== "invoice" || !data?.pdf?.contentBase64) return eventPayload;
  const { contentBase64, ...pdf } = data.pdf;
  return JSON.stringify({ ...data, pdf: { ...pdf, size: decodedBase64Length(contentBase64) } });
}

/** Thrown when the database cannot take the events right now; nothing of the batch was stored. */
export class IntakeUnavailable extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = "IntakeUnavailable";
  }
}

interface Waiting {
  events: ValidEvent[];
  resolve: (r: StoredResult[]) => void;
  reject: (e: unknown) => void;
}

/**
 * Stores validated events. Calls made while a commit is running are gathered and committed together in
 * the next transaction (group commit), so durability (synchronous=FULL) costs one fsync per group, not
 * per event. Each caller's promise resolves only after its transaction has committed.
 */
export class IntakeWriter {
  /** Sees every stored batch's results, whoever submitted it (the agent counts them for /metrics). */
  observer?: (results: StoredResult[]) => void;
  private queue: Waiting[] = [];
  private scheduled = false;
  private readonly insertEvent;
  private readonly storedEvent;
  private readonly upsertRecord;
  private readonly markStale;
  private readonly invoiceByKey;
  private readonly invoiceByPsaId;
  /** A finalized invoice starts as "to transfer" for the file exports, in the same transaction. */
  private readonly markForExport;

  constructor(
    private readonly db: Db,
    private readonly outbox: Outbox,
    private readonly targetsFor: (entity: Entity) => string[],
    private readonly onStored: () => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    this.insertEvent = db.$client.prepare(
      `INSERT INTO events (event_id, type, entity, key, payload, received_at, occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
       ON CONFLICT (event_id) DO NOTHING RETURNING seq`,
    );
    this.storedEvent = db.$client.prepare(`SELECT type, payload FROM events WHERE event_id = ?1`);
    // A version older (by the PSA's occurredAt) than the stored one changes nothing and returns no row.
    this.upsertRecord = db.$client.prepare(
      `INSERT INTO records (entity, key, payload, version, last_event_seq, occurred_at, updated_at, psa_id) VALUES (?1, ?2, ?3, 1, ?4, ?6, ?5, ?7)
       ON CONFLICT (entity, key) DO UPDATE SET payload = excluded.payload, version = version + 1,
         last_event_seq = excluded.last_event_seq, occurred_at = excluded.occurred_at, psa_id = excluded.psa_id, updated_at = excluded.updated_at
       WHERE excluded.occurred_at IS NULL OR records.occurred_at IS NULL OR excluded.occurred_at >= records.occurred_at
       RETURNING version`,
    );
    this.markStale = db.$client.prepare(`UPDATE events SET stale = 1 WHERE seq = ?1`);
    this.invoiceByKey = db.$client.prepare(`SELECT payload, psa_id AS psaId FROM records WHERE entity = 'invoice' AND key = ?1`);
    this.invoiceByPsaId = db.$client.prepare(`SELECT key FROM records WHERE psa_id = ?1 AND entity = 'invoice' AND key <> ?2 LIMIT 1`);
    this.markForExport = exportStatusOnStore(db);
  }

  submit(events: ValidEvent[]): Promise<StoredResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const group = this.queue;
    this.queue = [];
    if (group.length === 0) return;
    let results: (StoredResult[] | EventConflict)[];
    try {
      // One transaction (one fsync) for every waiting caller; each caller's batch in its own savepoint,
      // so a conflict in one request leaves the others' events in place.
      results = this.db.$client.transaction(() => group.map((w) => this.storeBatch(w.events))).immediate();
    } catch (e) {
      const err = describeWriteError(e);
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => {
      const r = results[i]!;
      if (r instanceof EventConflict) w.reject(r);
      else {
        this.observer?.(r);
        w.resolve(r);
      }
    });
    this.onStored();
  }

  private storeBatch(events: ValidEvent[]): StoredResult[] | EventConflict {
    try {
      return this.db.$client.transaction(() => {
        const conflicts: RejectedEvent[] = [];
        const out = events.map((e, index) => {
          const r = this.store(e);
          if (!("status" in r)) conflicts.push({ index, id: e.id, problems: [r] });
          return r;
        });
        if (conflicts.length > 0) throw new EventConflict(conflicts);
        return out as StoredResult[];
      })();
    } catch (e) {
      if (e instanceof EventConflict) return e;
      throw e;
    }
  }

  private store(e: ValidEvent): StoredResult | Problem {
    const now = this.now();
    const payload = JSON.stringify(e.data);
    const row = this.insertEvent.get(e.id, e.type, e.entity, e.key, payload, now, e.occurredAt ?? null) as { seq: number } | null;
    if (!row) {
      const before = this.storedEvent.get(e.id) as { type: string; payload: string };
      return sameEvent(before, e, payload) ? { id: e.id, status: "duplicate" } : idReused(e);
    }
    const taken = e.entity === "invoice" ? this.documentTaken(e.data as InvoiceLike) : null;
    if (taken) return taken;
    const psaId = e.entity === "invoice" ? (e.data as InvoiceLike).psaId : null;
    const stored = this.upsertRecord.get(
      e.entity,
      e.key,
      recordPayload(e.entity, e.data, payload),
      row.seq,
      now,
      e.occurredAt ?? null,
      psaId,
    ) as { version: number } | null;
    if (!stored) {
      this.markStale.run(row.seq);
      return { id: e.id, status: "stale" };
    }
    this.markForExport(e.entity, e.key, now);
    // A record seen for the first time has no older deliveries to coalesce.
    this.outbox.enqueue(row.seq, e.entity, e.key, this.targetsFor(e.entity), stored.version > 1);
    return { id: e.id, status: "accepted" };
  }

  /**
   * One document per number and per PSA id: a credit note numbered like a stored invoice (or the other
   * way round), or a PSA id already used by another number, would replace or be mistaken for the other
   * document at the target. A new version of the same document keeps both its number and its PSA id.
   */
  private documentTaken(doc: InvoiceLike): Problem | null {
    const what = doc.kind === "credit_note" ? "credit note" : "invoice";
    const sameNumber = this.invoiceByKey.get(doc.number) as { payload: string; psaId: string | null } | null;
    if (sameNumber) {
      const other = JSON.parse(sameNumber.payload) as { kind?: string; psaId?: string };
      const otherWhat = other.kind === "credit_note" ? "credit note" : "invoice";
      if (other.kind !== doc.kind || sameNumber.psaId !== doc.psaId) {
        return {
          code: "invoice.number_taken",
          field: "data.number",
          message: `${capitalise(what)} number ${doc.number} (PSA id "${doc.psaId}") is already ${otherWhat} ${doc.number} with PSA id "${sameNumber.psaId ?? other.psaId}"; it was not stored.`,
          hint: "Invoices and credit notes share one number series in the accounting systems: give the credit note a number of its own (or resend the document with its original PSA id if it is the same one).",
        };
      }
    }
    const samePsaId = this.invoiceByPsaId.get(doc.psaId, doc.number) as { key: string } | null;
    if (samePsaId) {
      return {
        code: "invoice.psa_id_taken",
        field: "data.psaId",
        message: `PSA id "${doc.psaId}" already belongs to document ${samePsaId.key}; ${what} ${doc.number} was not stored.`,
        hint: "Every invoice and credit note needs its own psaId (the PSA's id of that document); kontobro finds documents at the target by it.",
      };
    }
    return null;
  }
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Is a repeated event id the same event? Compared as the current model would store the earlier one:
 * after an upgrade a payload stored by an older version ("0101") equals its resend ("101").
 * '' = retention kept only the id: the content can no longer be compared, so it is a repeat.
 */
function sameEvent(before: { type: string; payload: string }, e: ValidEvent, payload: string): boolean {
  if (before.payload === "") return true;
  if (before.type !== e.type) return false;
  if (before.payload === payload) return true;
  const again = EVENT_TYPES[e.type].schema.safeParse(JSON.parse(before.payload));
  return again.success && JSON.stringify(again.data) === payload;
}

function idReused(e: ValidEvent): Problem {
  return {
    code: "event.id_reused",
    field: "id",
    message: `Event id "${e.id.slice(0, 100)}" was already stored with other content (a different ${e.entity} or other fields); the new content was not stored.`,
    hint: "Give every change its own event id (for example the PSA's change-log id); repeat an id only to resend exactly the same event.",
  };
}

function describeWriteError(e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  if (/busy|locked/i.test(msg)) return new IntakeUnavailable("The database is busy; nothing was stored. Send the events again shortly.", 1);
  if (/full|disk|SQLITE_FULL|no space/i.test(msg))
    return new IntakeUnavailable(
      "The disk is full; nothing was stored. Free disk space on the kontobro server, then send the events again.",
      30,
    );
  if (/readonly|read-only/i.test(msg))
    return new IntakeUnavailable("The database is read-only; nothing was stored. Fix the permissions of the data directory.", 30);
  return e instanceof Error ? e : new Error(msg);
}
