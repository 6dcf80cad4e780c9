// A record's story, as the status page's record page tells it (agent/http/status-record.ts): what each event
// changed against the version before it, what a record is called, and what a search for a number means.
// Pure functions only; the reads are in agent/record-queries.ts.
import { canonicalNumber, ENTITIES, lineAmount, type Entity } from "./model.ts";

/** One field that differs between two versions, by its path ("name", "lines[1].quantity", "addresses[0].city"). */
export interface FieldChange {
  path: string;
  /** Absent: the field is new in this version. */
  before?: unknown;
  /** Absent: the field is gone in this version. */
  after?: unknown;
}

/**
 * A payload as path → value for every leaf (string, number, boolean, null, and empty arrays and objects).
 * Object keys keep their order; array items are numbered.
 */
export function flattenPayload(value: unknown, path = "", into = new Map<string, unknown>()): Map<string, unknown> {
  if (Array.isArray(value) && value.length > 0) {
    value.forEach((item, i) => flattenPayload(item, `${path}[${i}]`, into));
  } else if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) flattenPayload(v, path ? `${path}.${k}` : k, into);
  } else {
    into.set(path, value);
  }
  return into;
}

/** What differs from `before` to `after`: fields changed or gone in the order of `before`, then the new ones. */
export function payloadChanges(before: unknown, after: unknown): FieldChange[] {
  const a = flattenPayload(before);
  const b = flattenPayload(after);
  const changes: FieldChange[] = [];
  for (const [path, old] of a) {
    if (!b.has(path)) changes.push({ path, before: old });
    else if (!sameLeaf(old, b.get(path))) changes.push({ path, before: old, after: b.get(path) });
  }
  for (const [path, now] of b) if (!a.has(path)) changes.push({ path, after: now });
  return changes;
}

const sameLeaf = (x: unknown, y: unknown) =>
  x === y || (typeof x === "object" && typeof y === "object" && JSON.stringify(x) === JSON.stringify(y));

/** An event as stored (agent/db/schema.ts events); `payload` is '' once retention has pruned it. */
export interface StoredEvent {
  seq: number;
  eventId: string;
  type: string;
  payload: string;
  receivedAt: number;
  occurredAt: number | null;
  stale: boolean;
}

/**
 * What an event did to the record: the first version; changed fields; the same content again; or unknown,
 * because its own content or the previous version's was pruned after the retention period.
 */
export type VersionChange =
  | { kind: "first" }
  | { kind: "changed"; changes: FieldChange[] }
  | { kind: "same" }
  | { kind: "pruned" }
  | { kind: "previous_pruned" };

export interface StoryEvent extends StoredEvent {
  change: VersionChange;
}

/**
 * Each event against the version the record had when it arrived: the last earlier event that was not stale.
 * A stale event (older, by the PSA's occurredAt, than the version kept) was never applied, so it is compared
 * but does not become the version the next one is compared with. `before`: the event just before the first
 * one given, when the list is a page of a longer story. Events are given and returned in arrival order.
 */
export function eventStory(events: StoredEvent[], before?: StoredEvent): StoryEvent[] {
  let previous: StoredEvent | undefined = before && !before.stale ? before : undefined;
  let seenAny = before !== undefined;
  return events.map((e) => {
    const change: VersionChange = !e.payload
      ? { kind: "pruned" }
      : !previous
        ? seenAny
          ? { kind: "previous_pruned" }
          : { kind: "first" }
        : !previous.payload
          ? { kind: "previous_pruned" }
          : diffOf(previous.payload, e.payload);
    seenAny = true;
    if (!e.stale) previous = e;
    return { ...e, change };
  });
}

function diffOf(before: string, after: string): VersionChange {
  const changes = payloadChanges(JSON.parse(before), JSON.parse(after));
  return changes.length === 0 ? { kind: "same" } : { kind: "changed", changes };
}

/** A changed value as a person reads it: text quoted, long text shortened, an absent field as "(none)". */
export function showValue(v: unknown, max = 80): string {
  if (v === undefined) return "(none)";
  const s = typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// ── what a record is called ───────────────────────────────────────────────────────────────────────────

/** The kinds a person searches and opens on the status page (a credit note is an invoice record of kind credit_note). */
export const RECORD_KINDS = ["customer", "project", "invoice", "credit_note", "product"] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];
export const RECORD_KIND_LABELS: Record<RecordKind, string> = {
  customer: "Customer",
  project: "Project",
  invoice: "Invoice",
  credit_note: "Credit note",
  product: "Product",
};

export const isEntity = (s: string): s is Entity => (ENTITIES as readonly string[]).includes(s);

/** Invoice or credit note, from a stored invoice payload; the entity itself for the others. */
export function kindOf(entity: Entity, payload: any): RecordKind {
  return entity === "invoice" && payload?.kind === "credit_note" ? "credit_note" : entity;
}

/** The kind of record an event is about: a credit note is sent as invoice.credited. */
export function kindOfEvent(entity: Entity, eventType: string): RecordKind {
  return entity === "invoice" && eventType === "invoice.credited" ? "credit_note" : entity;
}

/** "invoice 10042", "credit note 5001", "customer 31": how buttons, links and headings name a record. */
export function recordName(kind: RecordKind, key: string): string {
  return `${RECORD_KIND_LABELS[kind].toLowerCase()} ${key}`;
}

/** What a retry button says: the record and the target it acts on, "Retry invoice 10042 at eco". */
export function retryLabel(kind: RecordKind, key: string, target: string): string {
  return `Retry ${recordName(kind, key)} at ${target}`;
}

/** Amount in minor units as "11,375.00 NOK". */
export function showMoney(minor: number, currency = ""): string {
  const s = (minor / 100).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return currency ? `${s} ${currency}` : s;
}

/** One line about a record for search results and headings: name, customer, date, total. */
export function recordSummary(entity: Entity, payload: any): string {
  if (!payload || typeof payload !== "object") return "";
  switch (entity) {
    case "customer":
      return [payload.name, payload.orgNumber && `org. no. ${payload.orgNumber}`].filter(Boolean).join(" · ");
    case "project":
      return [payload.name, payload.customerNumber && `customer ${payload.customerNumber}`, payload.status].filter(Boolean).join(" · ");
    case "product":
      return [payload.name, payload.unit].filter(Boolean).join(" · ");
    case "invoice": {
      const lines: { quantity: number; unitPrice: number }[] = Array.isArray(payload.lines) ? payload.lines : [];
      const total = lines.reduce((sum, l) => sum + lineAmount(l), 0);
      return [
        payload.kind === "credit_note" && payload.creditedInvoiceNumber && `credits invoice ${payload.creditedInvoiceNumber}`,
        payload.customerNumber && `customer ${payload.customerNumber}`,
        payload.date,
        lines.length > 0 && showMoney(total, payload.currency),
      ]
        .filter(Boolean)
        .join(" · ");
    }
  }
}

// ── search ────────────────────────────────────────────────────────────────────────────────────────────

export interface SearchRequest {
  /** The keys to look up: the number as typed (trimmed) and its canonical spelling ("0101" → "101"). */
  keys: string[];
  /** Limited to one kind, or any. */
  kind: RecordKind | null;
}

/** A search form's input read, or why it cannot be searched. */
export function searchRequest(number: unknown, kind: unknown): { ok: true; request: SearchRequest } | { ok: false; message: string } {
  const typed = typeof number === "string" ? number.trim() : "";
  if (typed === "")
    return { ok: false, message: "Type a number to search for, e.g. an invoice number such as 10042 or a customer number." };
  if (typed.length > 50) return { ok: false, message: "A number is at most 50 characters long; check what was typed." };
  const k = typeof kind === "string" && kind !== "" && kind !== "any" ? kind : null;
  if (k !== null && !(RECORD_KINDS as readonly string[]).includes(k))
    return { ok: false, message: `"${k.slice(0, 30)}" is not a kind of record; choose one of ${RECORD_KINDS.join(", ")} or any.` };
  return { ok: true, request: { keys: [...new Set([typed, canonicalNumber(typed)])], kind: k as RecordKind | null } };
}

/** The entity a kind is stored as. */
export const entityOfKind = (k: RecordKind): Entity => (k === "credit_note" ? "invoice" : k);
