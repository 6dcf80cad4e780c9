// What the chaos run's PSA sends, and what every target must end up with. Pure: no I/O.
//
// The events: customers, projects, invoices (some with a discount line, written both as a negative
// quantity and as a negative unit price) and credit notes (written with positive lines, negative
// quantities, negative unit prices or mixed signs, as PSAs do). The expected documents come from the
// canonical model itself (its parsing and customerQuantity / customerTotal), never from a second copy of
// the sign rules here.
import { customerQuantity, customerTotal, EVENT_TYPES, type EventType, type InvoiceLike } from "../agent/model.ts";

/** A small seeded PRNG (mulberry32), so a failing run can be repeated. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChaosEvent {
  id: string;
  type: EventType;
  data: Record<string, unknown>;
}

/** One in this many invoices gets a credit note. */
const CREDIT_EVERY = 8;

function invoiceLines(i: number): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [{ text: `Work ${i}`, quantity: 1 + (i % 5), unitPrice: 100000 + 2 * i, kind: "hours" }];
  if (i % 3 === 0) lines.push({ text: `Travel ${i}`, quantity: 0.5, unitPrice: 2000 + 2 * (i % 50), kind: "expenses" });
  // A discount line, written either way round (the model keeps the sign in the quantity).
  if (i % 4 === 1)
    lines.push(
      i % 8 === 1
        ? { text: `Discount ${i}`, quantity: -1, unitPrice: 5000 + (i % 7) * 100, kind: "hours" }
        : { text: `Discount ${i}`, quantity: 2, unitPrice: -(1500 + (i % 7) * 100), kind: "hours" },
    );
  return lines;
}

/** A credit note's lines in one of the ways PSAs write them; all of them credit the customer. */
function creditLines(i: number, style: number): Record<string, unknown>[] {
  const amount = 20000 + 2 * (i % 100);
  switch (style) {
    case 0:
      return [{ text: `Credit for work ${i}`, quantity: 1, unitPrice: amount, kind: "hours" }];
    case 1:
      return [{ text: `Credit for work ${i}`, quantity: -1, unitPrice: amount, kind: "hours" }];
    case 2:
      return [{ text: `Credit for work ${i}`, quantity: 2, unitPrice: -amount, kind: "hours" }];
    // Mixed signs, written negative: credits `amount`, less a part that stays charged.
    default:
      return [
        { text: `Credit for work ${i}`, quantity: -1, unitPrice: amount, kind: "hours" },
        { text: `Kept charge ${i}`, quantity: 1, unitPrice: 5000, kind: "hours" },
      ];
  }
}

/**
 * Customers, projects, invoices and credit notes, shuffled so that many arrive before what they depend
 * on. A credit note always comes after the invoice it credits (a PSA cannot credit what it has not sent).
 */
export function chaosEvents(invoices: number, random: () => number): ChaosEvent[] {
  const customers = Math.max(5, Math.ceil(invoices / 20));
  const projects = Math.max(5, Math.ceil(invoices / 10));
  const events: ChaosEvent[] = [];
  for (let c = 1; c <= customers; c++)
    events.push({
      id: `chaos-c-${c}`,
      type: "customer.upserted",
      // A full address, as a PSA sends it: a target may need every part of it on a customer (and refuse the customer without).
      data: {
        number: 100 + c,
        name: `Chaos customer ${c}`,
        currency: "NOK",
        addresses: [{ kind: "postal", street: `Kaosgata ${c}`, zip: "0150", city: "Oslo", country: "NO" }],
      },
    });
  for (let p = 1; p <= projects; p++)
    events.push({
      id: `chaos-p-${p}`,
      type: "project.upserted",
      data: { number: 1000 + p, name: `Chaos project ${p}`, customerNumber: 100 + ((p - 1) % customers) + 1 },
    });
  const invoiceOf = (i: number) => {
    const project = ((i - 1) % projects) + 1;
    return { customerNumber: 100 + ((project - 1) % customers) + 1, projectNumber: 1000 + project };
  };
  for (let i = 1; i <= invoices; i++) {
    events.push({
      id: `chaos-i-${i}`,
      type: "invoice.finalized",
      data: {
        number: 100000 + i,
        psaId: `CHAOS-${i}`,
        ...invoiceOf(i),
        date: "2026-11-20",
        dueDate: "2026-12-04",
        lines: invoiceLines(i),
      },
    });
  }
  // Mostly in order, with local shuffles: dependents often arrive first.
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.max(0, i - Math.floor(random() * 40));
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  // Credit notes, each somewhere after its invoice (sometimes in the same batch).
  const keyed = events.map((e, at) => ({ e, key: at }));
  const position = new Map(events.map((e, at) => [e.id, at]));
  for (let i = 1, n = 0; i <= invoices; i++) {
    if (i % CREDIT_EVERY !== 2) continue;
    const e: ChaosEvent = {
      id: `chaos-cn-${i}`,
      type: "invoice.credited",
      data: {
        number: 300000 + i,
        psaId: `CHAOS-CN-${i}`,
        creditedInvoiceNumber: 100000 + i,
        ...invoiceOf(i),
        date: "2026-11-27",
        dueDate: "2026-12-11",
        lines: creditLines(i, n++ % 4),
      },
    };
    keyed.push({ e, key: position.get(`chaos-i-${i}`)! + 0.5 + Math.floor(random() * 120) });
  }
  return keyed.sort((a, b) => a.key - b.key).map((k) => k.e);
}

/**
 * The same events as another tenant of a hosted installation sends them: the same ids, PSA ids and numbers
 * (tenants' numbers overlap), but other content: every text names the tenant and every unit price is 2 x `tenant`
 * minor units larger (same sign; even, so half quantities stay whole minor units). A document booked at the
 * wrong tenant's target then reads as wrong or as a duplicate there. Tenant 0 changes nothing.
 */
export function forTenant(events: ChaosEvent[], tenant: number): ChaosEvent[] {
  if (tenant === 0) return events;
  const tag = ` (tenant ${tenant})`;
  const line = (l: Record<string, unknown>) => {
    const price = l.unitPrice as number;
    return { ...l, text: `${l.text}${tag}`, unitPrice: price + Math.sign(price) * 2 * tenant };
  };
  return events.map((e) => ({
    ...e,
    data: {
      ...e.data,
      ...(typeof e.data.name === "string" ? { name: `${e.data.name}${tag}` } : {}),
      ...(Array.isArray(e.data.lines) ? { lines: (e.data.lines as Record<string, unknown>[]).map(line) } : {}),
    },
  }));
}

/** What the target must show for one invoice or credit note, in minor units, from the customer's point of view. */
export interface ExpectedDoc {
  psaId: string;
  number: string;
  kind: InvoiceLike["kind"];
  customer: string;
  lines: { text: string; quantity: number; unitPrice: number }[];
  /** customerTotal: negative for every credit note (it lowers what the customer owes). */
  total: number;
  creditedInvoiceNumber?: string;
}

/** The documents the events must produce, after the model's normalisation (parsed by the model itself). */
export function expectedDocs(events: ChaosEvent[]): Map<string, ExpectedDoc> {
  const out = new Map<string, ExpectedDoc>();
  for (const e of events) {
    if (e.type !== "invoice.finalized" && e.type !== "invoice.credited") continue;
    const inv = EVENT_TYPES[e.type].schema.parse(e.data) as InvoiceLike;
    out.set(inv.psaId, {
      psaId: inv.psaId,
      number: inv.number,
      kind: inv.kind,
      customer: inv.customerNumber,
      lines: inv.lines.map((l) => ({ text: l.text, quantity: customerQuantity(inv, l), unitPrice: l.unitPrice })),
      total: customerTotal(inv),
      ...(inv.kind === "credit_note" ? { creditedInvoiceNumber: inv.creditedInvoiceNumber } : {}),
    });
  }
  return out;
}

/** Customer and project numbers the PSA sent (canonical, as strings). */
export function masterNumbers(events: ChaosEvent[]): { customers: string[]; projects: string[] } {
  const of = (type: EventType) => events.filter((e) => e.type === type).map((e) => String(e.data.number));
  return { customers: of("customer.upserted"), projects: of("project.upserted") };
}
