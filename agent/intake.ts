// Intake: validates PSA events (pure) and stores them with group commit (many events per durable
// transaction, agent/intake-store.ts), answering each caller only after its events are on disk.
import { z } from "zod";
import { IntakeStore, type PreparedEvent, prepareEvents, type RequestOutcome } from "./intake-store.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import { storageTrouble } from "./db/storage-trouble.ts";
import { MAX_NESTING } from "./json-keys.ts";
import { lazySchema, once } from "./lazy-schema.ts";
import { EVENT_TYPES, type Entity, type EventType, visibleOnly } from "./model.ts";
import type { Outbox } from "./outbox.ts";
import { issuesToProblems, type Problem } from "./problem.ts";

export const MAX_EVENTS_PER_REQUEST = 1000;

/**
 * The problems one refused event lists at most, then one more saying how many were left out: the list is for a person
 * to read, and an object of a million unknown keys made a million problems (an 80 MB answer built on the main thread).
 */
export const MAX_PROBLEMS_PER_EVENT = 20;

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

/** Also described in /api/v1/openapi.json (agent/http/openapi.ts). Built with the first request (agent/lazy-schema.ts). */
const envelope = once(() =>
  z.object({
    // Each check its own message: the schema's `error` is every issue's message that has none (an empty id was told
    // "must be a string").
    id: z
      .string({ error: "must be a string: the PSA's unique id of this event (a repeat of it is stored once)" })
      .trim()
      .min(1, { error: "must not be empty: send the PSA's unique id of this event" })
      .max(200, { error: "must be at most 200 characters" })
      .refine(visibleOnly.check, { error: visibleOnly.error }),
    type: z.string({ error: `must be one of ${EVENT_TYPE_NAMES.join(", ")}` }),
    data: z.record(z.string(), z.unknown(), { error: "must be an object with the record's fields" }),
    occurredAt: z.iso
      .datetime({
        offset: true,
        error: "must be an ISO 8601 time with a time zone, e.g. 2026-03-31T14:05:00Z or 2026-03-31T16:05:00+02:00",
      })
      .optional(),
  }),
);
export const Envelope = lazySchema(envelope);

/**
 * The envelope without its data: what an event whose data is a plain object is checked against. Envelope's
 * record check would only copy such data key by key before the event type's own schema reads it again.
 */
const envelopeOfObject = once(() => envelope().omit({ data: true }));

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/** The envelope checked once: data that is not a plain object goes through Envelope, whose problems name it. */
function parseEnvelope(raw: unknown) {
  const data = (raw as { data?: unknown } | null)?.data;
  if (!isPlainObject(data)) return envelope().safeParse(raw, { reportInput: true });
  const head = envelopeOfObject().safeParse(raw, { reportInput: true });
  return head.success ? { success: true as const, data: { ...head.data, data } } : head;
}

/**
 * Validates one event or an array of them. Nothing is stored unless every event is valid. `repeatedKeys`: the paths of
 * the keys the JSON text named twice in one object (agent/json-keys.ts), each refusing its event.
 */
export function parseEvents(body: unknown, repeatedKeys: readonly (string | number)[][] = []): ParseResult {
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
  const repeated = new Map<number, Problem[]>();
  for (const path of repeatedKeys) {
    const [index, ...field] = Array.isArray(body) ? path : [0, ...path];
    const problems = repeated.get(index as number) ?? [];
    problems.push(repeatedKey(field.join(".")));
    repeated.set(index as number, problems);
  }
  list.forEach((raw, index) => {
    const id = typeof (raw as any)?.id === "string" ? (raw as any).id : undefined;
    /** Refuses the event with its first MAX_PROBLEMS_PER_EVENT problems of `total` (more were found than given). */
    const reject = (problems: Problem[], total = problems.length) => rejected.push({ index, id, problems: listed(problems, total) });
    const twice = repeated.get(index);
    if (twice) return reject(twice);
    const malformed = textFaultAt(raw, "");
    if (malformed !== null) return reject([malformed.deep ? tooDeep(malformed.path) : malformedText(malformed)]);
    const env = parseEnvelope(raw);
    if (!env.success) return reject(issuesToProblems(env.error.issues));
    // Own keys only: "constructor" or "toString" found Object's (a 500 saying to try again, for ever).
    const spec = Object.hasOwn(EVENT_TYPES, env.data.type) ? EVENT_TYPES[env.data.type as EventType] : undefined;
    if (!spec) {
      return reject([
        {
          code: "invalid.event_type",
          field: "type",
          message: `type: unknown event type "${env.data.type.slice(0, 60)}"`,
          hint: `Use one of: ${EVENT_TYPE_NAMES.join(", ")}.`,
        },
      ]);
    }
    const data = spec.schema.safeParse(env.data.data, { reportInput: true });
    if (!data.success) return reject(issuesToProblems(data.error.issues, { prefix: "data" }));
    const unknown = droppedFields(raw, { ...env.data, data: data.data }, MAX_PROBLEMS_PER_EVENT);
    if (unknown.count > 0)
      return reject(
        unknown.fields.map((f) => unknownField(f, env.data.type)),
        unknown.count,
      );
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

/**
 * The first MAX_PROBLEMS_PER_EVENT of an event's `total` problems (`problems` may hold only those), and then, when
 * there were more, one saying how many are not listed.
 */
function listed(problems: Problem[], total: number): Problem[] {
  if (total <= MAX_PROBLEMS_PER_EVENT) return problems;
  const more = total - MAX_PROBLEMS_PER_EVENT;
  return [
    ...problems.slice(0, MAX_PROBLEMS_PER_EVENT),
    {
      code: "invalid.more_problems",
      message: `and ${more} more problem(s) of this event, not listed: the first ${MAX_PROBLEMS_PER_EVENT} of ${total} are`,
      hint: "Fix the problems listed and send the event again: the answer lists the next ones. Hundreds of unknown fields mostly mean the PSA sends a map of its own (one key per custom field or per id) as the event's fields; send only the fields the event type names (GET /api/v1/openapi.json).",
    },
  ];
}

/** What makes a string unstorable, or null: a lone UTF-16 surrogate, a NUL character. */
function textFault(s: string): string | null {
  if (!s.isWellFormed()) return "a lone UTF-16 surrogate (such as \\ud800 without its pair)";
  return s.includes("\u0000") ? "a NUL character (\\u0000)" : null;
}

/**
 * Where `value` holds text kontobro cannot store: the path of the first string or object key with a lone UTF-16
 * surrogate ("\ud800" without its pair, which JSON can spell but UTF-8 cannot hold) or a NUL ("\u0000"). Stored, SQLite
 * would turn a surrogate into U+FFFD (an id that is not the one sent: the group's commit failed); PostgreSQL refuses
 * both in text and in what it reads out of JSON (->>), so it would fail every request committed with it, and a target
 * would get replacement or invisible characters. null when all is well formed. Pure.
 */
export function malformedTextAt(value: unknown, path = ""): string | null {
  return textFaultAt(value, path)?.path ?? null;
}

/** A fault of text (textFault), or `deep`: the value nests deeper than MAX_NESTING, where nothing is looked at further. */
function textFaultAt(value: unknown, path: string, depth = 0): { path: string; fault: string; deep?: true } | null {
  if (typeof value === "string") {
    const fault = textFault(value);
    return fault ? { path, fault } : null;
  }
  if (typeof value !== "object" || value === null) return null;
  // Each level is a call here and in the schemas' parse: a body nested 100,000 deep overflowed the stack (a 500).
  if (depth === MAX_NESTING) return { path, fault: `nesting deeper than ${MAX_NESTING} levels`, deep: true };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = textFaultAt(value[i], `${path}.${i}`, depth + 1);
      if (at !== null) return at;
    }
    return null;
  }
  for (const key in value) {
    const keyPath = path ? `${path}.${key}` : key;
    const fault = textFault(key);
    if (fault) return { path: keyPath, fault };
    const at = textFaultAt((value as Record<string, unknown>)[key], keyPath, depth + 1);
    if (at !== null) return at;
  }
  return null;
}

function tooDeep(field: string): Problem {
  return {
    code: "invalid.too_deep",
    field,
    message: `${field}: nests objects or arrays deeper than ${MAX_NESTING} levels; no field of an event does`,
    hint: "Send the fields the event type names (see the OpenAPI description), each with a value of its own type: a list or object nested in itself this deep is no record.",
  };
}

function malformedText({ path: field, fault }: { path: string; fault: string }): Problem {
  return {
    code: "invalid.text",
    field,
    message: `${field}: is not text kontobro can store: it holds ${fault}`,
    hint: "Send text as UTF-8 without NUL characters. In JSON a \\uD800-\\uDBFF escape must be followed by its \\uDC00-\\uDFFF pair (an emoji is two escapes); remove any \\u0000.",
  };
}

/**
 * The fields of `sent` that parsing dropped from `parsed`: names the schema does not know (vat_code for vatCode, a
 * discount, a line amount, an invoice total). Refused rather than ignored, since the target would book the document
 * without what they meant. `fields`: the paths of the first `max` ("data.lines.0.vat_code"), in the order sent;
 * `count`: how many there are. Pure.
 */
export function droppedFields(sent: unknown, parsed: unknown, max = Number.POSITIVE_INFINITY): { fields: string[]; count: number } {
  const dropped = { fields: [] as string[], count: 0, max };
  collectDropped(sent, parsed, [], dropped);
  return { fields: dropped.fields, count: dropped.count };
}

/** droppedFields' walk: `at` is the path so far, joined only for a field listed (intake's hot path, issue 16). */
function collectDropped(
  sent: unknown,
  parsed: unknown,
  at: (string | number)[],
  dropped: { fields: string[]; count: number; max: number },
): void {
  if (Array.isArray(sent)) {
    if (!Array.isArray(parsed)) return;
    for (let i = 0; i < sent.length; i++) {
      at.push(i);
      collectDropped(sent[i], parsed[i], at, dropped);
      at.pop();
    }
    return;
  }
  if (!isPlainObject(sent) || !isPlainObject(parsed)) return;
  for (const key in sent) {
    // A key holding undefined is absent (JSON cannot send it: a caller in-process can). A record's keys are trimmed
    // (tag groups): " Avdeling " is kept as "Avdeling".
    const value = sent[key];
    if (value === undefined) continue;
    const kept = Object.hasOwn(parsed, key) ? key : Object.hasOwn(parsed, key.trim()) ? key.trim() : null;
    at.push(key);
    if (kept === null) {
      if (dropped.count < dropped.max) dropped.fields.push(at.join("."));
      dropped.count += 1;
    } else if (typeof value === "object" && value !== null) collectDropped(value, parsed[kept], at, dropped);
    at.pop();
  }
}

function repeatedKey(field: string): Problem {
  return {
    code: "invalid.duplicate_key",
    field,
    message: `${field}: is sent twice in the same object; JSON keeps only the last, so which value the PSA meant is unknown`,
    hint: "Send each field once per object. Check how the PSA writes this JSON: a field written by two parts of its code (a base class and an override, two merged maps) appears twice.",
  };
}

function unknownField(field: string, type: string): Problem {
  return {
    code: "invalid.unknown_field",
    field,
    message: `${field}: unknown field: kontobro has no such field for ${type}, so it would be ignored`,
    hint: `Remove it, or spell it as the API names it (GET /api/v1/openapi.json, the schema of ${type}; e.g. vatCode, not vat_code). An ignored discount, amount or VAT code would book the document wrong, so it is refused.`,
  };
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

/**
 * Thrown when the database cannot take the events right now; nothing of the batch was stored. `lasting`: it will not
 * pass by itself (a full disk, a read-only or damaged database, an I/O error), unlike a busy database; /readyz says it.
 */
export class IntakeUnavailable extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    readonly lasting = false,
  ) {
    super(message);
    this.name = "IntakeUnavailable";
  }
}

/** Intake's requests refused since `since` for a lasting reason (IntakeUnavailable.lasting), none stored since. */
export interface IntakeFailure {
  message: string;
  since: number;
  requests: number;
  /** Told until then unless another request is refused (the last refusal's time, plus twice its Retry-After or more). */
  until: number;
}

/** Stores validated events: in process (IntakeWriter) or on the writer's own thread (IntakeThread, agent/intake-thread.ts). */
export interface Intake {
  /** Resolves after the events' transaction has committed (synchronous=FULL), or rejects with nothing stored. */
  submit(events: ValidEvent[]): Promise<StoredResult[]>;
  /** Sees every stored batch's results, whoever submitted it (the agent counts them for /metrics). */
  observer?: (results: StoredResult[]) => void;
  /** Finishes what was submitted; nothing more is taken. */
  close(): Promise<void>;
  /** Its requests failing now for a lasting reason, none stored since (for /readyz), or null. */
  failing?(now?: number): IntakeFailure | null;
}

interface Waiting {
  events: PreparedEvent[];
  resolve: (r: StoredResult[]) => void;
  reject: (e: unknown) => void;
}

/**
 * Stores validated events. Calls made while a commit is running are gathered and committed together in
 * the next transaction (group commit), so durability (synchronous=FULL) costs one fsync per group, not
 * per event. Each caller's promise resolves only after its transaction has committed.
 */
export class IntakeWriter implements Intake {
  /** Sees every stored batch's results, whoever submitted it (the agent counts them for /metrics). */
  observer?: (results: StoredResult[]) => void;
  private queue: Waiting[] = [];
  private scheduled = false;
  private readonly store: IntakeStore;

  /** The events go to the outbox's storage, in the transaction that creates their deliveries. */
  constructor(
    outbox: Outbox,
    targetsFor: (entity: Entity) => string[],
    private readonly onStored: () => void = () => {},
    now: () => number = Date.now,
    /** IntakeStore's guard: a throw (an IntakeUnavailable) refuses the whole group, nothing stored. */
    guard?: (tx: SqlRunner) => Promise<void>,
  ) {
    this.store = new IntakeStore(outbox, targetsFor, now, guard);
  }

  submit(events: ValidEvent[]): Promise<StoredResult[]> {
    const prepared = prepareEvents(events);
    return new Promise((resolve, reject) => {
      this.queue.push({ events: prepared, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits what is queued now (the connection is the caller's to close). */
  close(): Promise<void> {
    return this.flush();
  }

  /** The groups being committed, in order: closing waits for them. */
  private flushing: Promise<void> = Promise.resolve();

  private flush(): Promise<void> {
    return (this.flushing = this.flushing.then(() => this.commitQueued()));
  }

  private async commitQueued(): Promise<void> {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    let group: Waiting[] | null = null;
    const take = (): Waiting[] => {
      group ??= this.queue.splice(0);
      return group;
    };
    let outcomes: RequestOutcome[];
    try {
      // One transaction (one fsync) for every waiting caller; a conflict in one request stores nothing of
      // it and leaves the others' events in place. The group is what is queued once the transaction holds the
      // tenant's intake turn: on PostgreSQL the tenant's writers on other workers take turns with this one, and
      // what arrived here while one of them held it goes in this turn, not the next (with 4 workers, groups were a
      // quarter of the size, so a tenant's intake a quarter of the rate).
      outcomes = await this.store.storeGroup(() => take().map((w) => w.events));
    } catch (e) {
      const err = describeWriteError(e);
      for (const w of take()) w.reject(err);
      return;
    }
    group = take();
    // Never throws: a throw here would end the chain of groups (later callers would wait for ever, close() too).
    // A listener that fails fails this group's callers (their events are stored: sent again, they are duplicates).
    try {
      this.onStored();
    } catch (e) {
      for (const w of group) w.reject(e);
      return;
    }
    group.forEach((w, i) => {
      try {
        settle(w, outcomes[i]!, this.observer);
      } catch (e) {
        w.reject(e);
      }
    });
  }
}

/** Answers one caller: its results (seen by the observer too), or its conflicts. */
export function settle(w: Omit<Waiting, "events">, outcome: RequestOutcome, observer?: (results: StoredResult[]) => void): void {
  if ("conflicts" in outcome) w.reject(new EventConflict(outcome.conflicts));
  else {
    observer?.(outcome.stored);
    w.resolve(outcome.stored);
  }
}

/**
 * A failed write in plain language: busy, disk full, read-only, an I/O error and a damaged database become
 * IntakeUnavailable (503, Retry-After), by SQLite's words (agent/db/storage-trouble.ts).
 */
export function describeWriteError(e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const pg = postgresTrouble(e);
  if (pg) return new IntakeUnavailable(pg, 2);
  if (/busy|locked/i.test(msg)) return new IntakeUnavailable("The database is busy; nothing was stored. Send the events again shortly.", 1);
  switch (storageTrouble(msg)) {
    case "full":
      return new IntakeUnavailable(
        "The disk is full; nothing was stored. Free disk space on the kontobro server, then send the events again.",
        30,
        true,
      );
    case "read-only":
      return new IntakeUnavailable("The database is read-only; nothing was stored. Fix the permissions of the data directory.", 30, true);
    case "damaged":
      return new IntakeUnavailable(
        `The database is damaged (${msg}); nothing was stored. kontobro's administrator must restore a backup (kontobro restore), then send the events again.`,
        300,
        true,
      );
    case "io":
      return new IntakeUnavailable(
        `The database could not be written (${msg}); nothing was stored. Check the kontobro server's disk (free space, errors in the system log) and its /readyz, then send the events again.`,
        30,
        true,
      );
    case null:
      return e instanceof Error ? e : new Error(msg);
  }
}

/**
 * PostgreSQL (hosted mode) failures that pass: the server unreachable, restarting or failing over, out of
 * connections, a deadlock or serialization failure. Bun's client names them by `code` (its own, for the
 * connection) and `errno` (the SQLSTATE). A connection lost during COMMIT may have committed, so the answer
 * says the events may be stored: sent again, an event is stored once (its id).
 */
export function postgresTrouble(e: unknown, depth = 0): string | null {
  const { code, errno, cause } = (e ?? {}) as { code?: unknown; errno?: unknown; cause?: unknown };
  // drizzle-orm wraps the client's error (DrizzleQueryError) and keeps it as the cause.
  if (cause && depth < 3) {
    const inner = postgresTrouble(cause, depth + 1);
    if (inner) return inner;
  }
  const state = typeof errno === "string" ? errno : "";
  // 25P03 and 57P05: the server ended the session for idling (a worker stalled inside its transaction past the
  // idle_in_transaction_session_timeout it set, agent/hosted/worker.ts): the transaction was not committed.
  const lostConnection =
    (typeof code === "string" && code.startsWith("ERR_POSTGRES_CONNECTION")) ||
    state.startsWith("08") ||
    /^57P0[1235]$/.test(state) ||
    state === "25P03";
  if (lostConnection)
    return "The database could not be reached; the events may not have been stored. Send them again shortly (an event sent twice is stored once).";
  if (state.startsWith("53") || state === "40001" || state === "40P01")
    return "The database is busy; nothing was stored. Send the events again shortly.";
  return null;
}
