// The canonical model: what the PSA sends us, validated with zod at the intake boundary.
// Money is always integer minor units (øre/cent); quantities may be decimal.
//
// Signs are defined here, once, and every connector and export follows them:
// - An invoice's lines are as the invoice shows them: a positive line charges the customer, a negative
//   line (discount, prepayment) reduces the charge. Mixed signs are allowed; a negative total is refused
//   (that is a credit note: send `invoice.credited`).
// - A credit note's lines list what is credited. Its total is always positive after parsing and means
//   "the customer owes this much less". A PSA that writes credit notes with minus signs is understood:
//   when the sent total is negative, every line's sign is flipped. A zero total is refused.
// - In every line the sign lives in the quantity: a negative unit price is turned round together with
//   the quantity (the amount is unchanged), so unitPrice >= 0 after parsing.
// Connectors never look at line signs: they use customerQuantity() and customerTotal().
//
// Each schema is built when first used and kept (agent/lazy-schema.ts): an agent that has not yet taken in or
// pushed an event holds none of them (issue 16, idle memory: 450 zod schema nodes, about 0.6 MB).
import { z } from "zod";
import { lazySchema, once } from "./lazy-schema.ts";

const text = (max: number) => z.string().trim().min(1).max(max);
const optionalText = (max: number) => z.string().trim().max(max).optional();
const isoDate = once(() => z.iso.date({ error: "must be a date like 2026-03-31" }));
/**
 * A refinement's `when`: compare the dates only when each is one. By default it ran when a date had failed its own check
 * (a format problem does not end the parse), so 2026-13-01 also got "dueDate must not be before date" by the order of the
 * text, and a dueDate that was fine was named wrong.
 */
const whenDates = (...fields: string[]) => ({
  when: (payload: z.core.ParsePayload) => !payload.issues.some((i) => fields.includes(i.path?.[0] as string)),
});

/** Largest amount (minor units) we accept anywhere: 10^13 = 100 billion NOK/DKK/SEK, far inside exact integers. */
export const MAX_AMOUNT_MINOR = 10_000_000_000_000;
/** Largest absolute quantity on a line. */
export const MAX_QUANTITY = 1_000_000_000;
const amountBound = `at most ${MAX_AMOUNT_MINOR.toLocaleString("en")} minor units in absolute value`;
// The bounds first, each ending the checks: an amount beyond them gets one problem, the bound (int's own safe-integer
// bound would add a second one saying "must be an integer" of a value that is one).
const minorUnits = once(() =>
  z
    .number({ error: "must be an integer amount in minor units (øre/cent), e.g. 145000 for 1450.00" })
    .min(-MAX_AMOUNT_MINOR, { error: `must be ${amountBound}`, abort: true })
    .max(MAX_AMOUNT_MINOR, { error: `must be ${amountBound}`, abort: true })
    .int({ error: "must be an integer amount in minor units (øre/cent), e.g. 145000 for 1450.00" }),
);
/**
 * The X codes of ISO 4217 that are money an invoice can be in (CFA francs, East Caribbean dollar, Caribbean guilder, CFP
 * franc). The others are gold, silver, platinum, palladium, bond-market units, SDR, SUCRE, the ADB unit, the code for
 * testing (XTS) and for "no currency" (XXX), and old ones: no target books an invoice in them.
 */
const X_CURRENCIES = new Set(["XAF", "XCD", "XCG", "XOF", "XPF"]);

/** ISO 4217 as the runtime's ICU knows it: a code outside it fails at every target ("currency does not exist"). */
const currency = once(() => {
  const known = new Set(Intl.supportedValuesOf("currency"));
  return z
    .string()
    .regex(/^[A-Z]{3}$/, {
      // "dkk", " DKK": the code is there, written otherwise.
      error: (issue) => {
        const sent = String(issue.input).trim().toUpperCase();
        return known.has(sent)
          ? `must be the code in capitals, without spaces: send ${sent}`
          : "must be a 3-letter ISO 4217 code such as NOK, DKK or SEK";
      },
      abort: true,
    })
    .superRefine((code, ctx) => {
      if (!known.has(code))
        ctx.addIssue({ code: "custom", message: `${code} is not an ISO 4217 currency code; send one such as NOK, DKK, SEK or EUR` });
      else if (code.startsWith("X") && !X_CURRENCIES.has(code))
        ctx.addIssue({
          code: "custom",
          message: `${code} is an ISO 4217 code but no currency an invoice can be in (X codes are kept for metals, units of account, testing and "no currency"); send one such as NOK, DKK, SEK or EUR`,
        });
    });
});

/**
 * The one spelling of a record number: digits-only numbers lose their leading zeros ("0101" and 101
 * are the same customer), anything else is kept as sent (trimmed). Unicode forms are not normalised: a record key
 * stored by an earlier version stays the key its PSA's next version finds (README Numbers).
 */
export function canonicalNumber(value: string | number): string {
  const s = String(value).trim();
  return /^\d+$/.test(s) ? s.replace(/^0+(?=\d)/, "") : s;
}

/**
 * A character an identifier must not hold because nobody sees it: a format character (U+200B ZERO WIDTH SPACE, U+00AD
 * SOFT HYPHEN, a direction mark) or a control character (a tab). Pasted into a PSA with a number, it made "10\u200b01" a
 * customer other than 1001 that looks the same everywhere.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;

/** A refinement refusing an identifier with an invisible character, naming it and where it is. */
export const visibleOnly = {
  check: (s: string) => !INVISIBLE.test(s),
  error: (issue: { input?: unknown }) => {
    const s = String(issue.input);
    const at = s.search(INVISIBLE);
    const code = `U+${s.codePointAt(at)!.toString(16).toUpperCase().padStart(4, "0")}`;
    return `holds an invisible character (${code}) after "${s.slice(0, at).slice(-20)}": remove it in the PSA, or it names something other than what everyone sees`;
  },
};

/** PSA numbers arrive as strings or numbers; we keep them as canonical strings and let each connector's rules decide. */
const recordNumber = once(() =>
  z
    // 1.5 failed both: told only "Invalid input".
    .union([z.string(), z.number().int().nonnegative()], { error: 'must be a whole number (10042) or a text ("K-10042")' })
    .transform(canonicalNumber)
    .pipe(z.string().min(1, { error: "must not be empty" }).max(50).refine(visibleOnly.check, { error: visibleOnly.error })),
);
/** Product codes are codes, not numbers: kept exactly as sent (trimmed), "0101" stays "0101". */
const recordCode = once(() =>
  z
    .union([z.string(), z.number().int().nonnegative()], { error: 'must be a whole number (101) or a text ("KONS-101")' })
    .transform((v) => String(v).trim())
    .pipe(z.string().min(1, { error: "must not be empty" }).max(50).refine(visibleOnly.check, { error: visibleOnly.error })),
);

const address = once(() =>
  z.object({
    kind: z.enum(["postal", "visit", "delivery", "invoice"]).default("postal"),
    street: optionalText(510),
    zip: optionalText(30),
    city: optionalText(50),
    country: z
      .string()
      .regex(/^[A-Z]{2}$/, { error: "must be a 2-letter ISO 3166 country code such as NO, DK or SE" })
      .optional(),
  }),
);
export const Address = lazySchema(address);

/**
 * The PSA's tags by tag group: group name → the code of the record's one tag in it (a PSA keeps e.g. a
 * project category or a department as a tag group with exactly one tag per record). Targets that map a
 * tag group to one of their fields name the group in their config.
 */
const tags = once(() => z.record(z.string().trim().min(1).max(100), z.string().trim().min(1).max(100)));
export const Tags = lazySchema(tags);

const contact = once(() =>
  z.object({
    name: text(255),
    /** The name's parts where a target keeps them (a pulled customer's contact carries them; a PSA may echo them). */
    firstName: optionalText(255),
    lastName: optionalText(255),
    email: z.email().optional(),
    phone: optionalText(50),
    role: optionalText(100),
  }),
);
export const Contact = lazySchema(contact);

const customer = once(() =>
  z.object({
    number: recordNumber(),
    name: text(255),
    orgNumber: optionalText(40),
    vatNumber: optionalText(50),
    email: optionalText(255),
    website: optionalText(255),
    phone: optionalText(255),
    fax: optionalText(255),
    addresses: z.array(address()).max(10).default([]),
    contacts: z.array(contact()).max(100).default([]),
    currency: currency().default("NOK"),
    paymentTermsDays: z.number().int().min(0).max(365).optional(),
    group: optionalText(50),
    active: z.boolean().default(true),
  }),
);
export const Customer = lazySchema(customer);
export type Customer = z.infer<typeof Customer>;

const project = once(() =>
  z
    .object({
      number: recordNumber(),
      name: text(255),
      customerNumber: recordNumber().optional(),
      status: z.enum(["active", "closed", "planned"]).default("active"),
      startDate: isoDate().optional(),
      endDate: isoDate().optional(),
      department: optionalText(50),
      description: optionalText(2500),
      tags: tags().optional(),
    })
    .refine((p) => !p.startDate || !p.endDate || p.startDate <= p.endDate, {
      error: "endDate must not be before startDate",
      path: ["endDate"],
      ...whenDates("startDate", "endDate"),
    }),
);
export const Project = lazySchema(project);
export type Project = z.infer<typeof Project>;

/**
 * A VAT rate in percent: 25 is 25 %. Nordic rates are 0 or at least 6 % (6, 10, 11.11, 12, 13.5, 14, 15, 24, 25,
 * 25.5), so a rate between 0 and 1 is a fraction (0.25 for 25 %) that would be booked as a quarter of a percent:
 * refused, never guessed.
 */
export const vatPercent = once(() =>
  z
    .number({ error: "must be a VAT rate in percent, e.g. 25 for 25 %" })
    .min(0, { error: "must be a VAT rate in percent from 0 to 100, e.g. 25 for 25 %", abort: true })
    .max(100, { error: "must be a VAT rate in percent from 0 to 100, e.g. 25 for 25 %", abort: true })
    .superRefine((rate, ctx) => {
      if (rate > 0 && rate < 1)
        ctx.addIssue({
          code: "custom",
          message: `${rate} is a fraction, but the VAT rate is in percent: send ${Math.round(rate * 10000) / 100} for ${Math.round(rate * 10000) / 100} % (no Nordic VAT rate lies between 0 and 1 %)`,
        });
    }),
);

const product = once(() =>
  z.object({
    code: recordCode(),
    name: text(300),
    unit: optionalText(20),
    price: minorUnits().optional(),
    cost: minorUnits().optional(),
    vatRate: vatPercent().optional(),
    active: z.boolean().default(true),
  }),
);
export const Product = lazySchema(product);
export type Product = z.infer<typeof Product>;

const lineKind = once(() => z.enum(["hours", "expenses", "products"]));
export const LineKind = lazySchema(lineKind);
export type LineKind = z.infer<typeof LineKind>;

/**
 * A quantity without the noise of binary floating point: a PSA that computed 0.1 + 0.2 sent 0.30000000000000004 and
 * means 0.3 (a target allowing two decimals would refuse the noise). Only a value within a hair (10^-12 relative) of one
 * with at most 6 decimals is rounded to it; real decimals such as 1/3 are kept for the target's own rules.
 */
export function withoutBinaryNoise(quantity: number): number {
  const rounded = Math.round(quantity * 1e6) / 1e6;
  return Math.abs(rounded - quantity) <= Math.abs(quantity) * 1e-12 ? rounded : quantity;
}

const invoiceLine = once(() =>
  z
    .object({
      text: text(2500),
      quantity: z
        .number()
        .finite()
        .min(-MAX_QUANTITY, { error: `must be between -${MAX_QUANTITY.toLocaleString("en")} and ${MAX_QUANTITY.toLocaleString("en")}` })
        .max(MAX_QUANTITY, { error: `must be between -${MAX_QUANTITY.toLocaleString("en")} and ${MAX_QUANTITY.toLocaleString("en")}` })
        .refine((q) => q !== 0, { error: "must not be zero" })
        .transform(withoutBinaryNoise),
      unit: optionalText(20),
      unitPrice: minorUnits(),
      vatCode: optionalText(10),
      account: optionalText(20),
      kind: lineKind().default("hours"),
      productCode: recordCode().optional(),
      /** The line's category at the target where it has one (e.g. a project category). */
      category: optionalText(50),
    })
    .refine((l) => Math.abs(l.quantity * l.unitPrice) <= MAX_AMOUNT_MINOR, {
      error: `quantity × unitPrice must be ${amountBound}`,
      path: ["unitPrice"],
    })
    .transform((l) => (l.unitPrice < 0 ? { ...l, quantity: -l.quantity, unitPrice: -l.unitPrice } : l)),
);
export const InvoiceLine = lazySchema(invoiceLine);
export type InvoiceLine = z.infer<typeof InvoiceLine>;

const pdf = once(() =>
  z.object({
    filename: text(200).default("invoice.pdf"),
    contentBase64: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9+/=\s]+$/, { error: "must be base64" }),
  }),
);
export const Pdf = lazySchema(pdf);

/** Bytes a base64 text decodes to (line breaks and padding ignored). */
export function decodedBase64Length(b64: string): number {
  const chars = b64.replace(/[\s=]/g, "").length;
  return Math.floor((chars * 3) / 4);
}

const invoiceFields = once(() => ({
  number: recordNumber(),
  /** The PSA's own id of the invoice; written into the target's reference field for lookups. */
  psaId: z.string().trim().min(1).max(100).refine(visibleOnly.check, { error: visibleOnly.error }),
  customerNumber: recordNumber(),
  projectNumber: recordNumber().optional(),
  date: isoDate(),
  dueDate: isoDate(),
  paymentId: optionalText(30),
  currency: currency().default("NOK"),
  ourReference: optionalText(250),
  yourReference: optionalText(250),
  heading: optionalText(250),
  department: optionalText(50),
  tags: tags().optional(),
  lines: z
    .array(invoiceLine())
    .min(1, { error: "an invoice needs at least one line" })
    .max(1000)
    .superRefine((lines, ctx) => {
      // Each line is bounded, their sum too: past 2^53 a number no longer holds every integer.
      const total = statedTotal(lines);
      if (Math.abs(total) > MAX_AMOUNT_MINOR)
        ctx.addIssue({
          code: "custom",
          message: `the lines add up to ${total.toLocaleString("en")} minor units; a document's total must be ${amountBound}`,
        });
    }),
  pdf: pdf().optional(),
}));

/** Sum of the lines in minor units, as the document states them (before any sign convention). */
const statedTotal = (lines: { quantity: number; unitPrice: number }[]) => lines.reduce((sum, l) => sum + lineAmount(l), 0);

const invoice = once(() =>
  z
    .object({ ...invoiceFields(), kind: z.literal("invoice").default("invoice") })
    .refine((i) => i.dueDate >= i.date, { error: "dueDate must not be before date", path: ["dueDate"], ...whenDates("date", "dueDate") })
    .refine((i) => statedTotal(i.lines) >= 0, {
      error:
        "the invoice total is negative; an invoice that gives money back is a credit note: send it as invoice.credited with creditedInvoiceNumber",
      path: ["lines"],
    }),
);
export const Invoice = lazySchema(invoice);
export type Invoice = z.infer<typeof Invoice>;

/**
 * What a credit note credits: positive lines after parsing (see the sign rules at the top). A credit
 * note written with minus signs (negative total) is turned round line by line.
 */
const creditNote = once(() =>
  z
    .object({
      ...invoiceFields(),
      kind: z.literal("credit_note").default("credit_note"),
      creditedInvoiceNumber: recordNumber(),
    })
    .refine((i) => i.dueDate >= i.date, { error: "dueDate must not be before date", path: ["dueDate"], ...whenDates("date", "dueDate") })
    .refine((i) => i.creditedInvoiceNumber !== i.number, {
      error: "a credit note has its own number; creditedInvoiceNumber names the invoice it credits",
      path: ["creditedInvoiceNumber"],
    })
    .refine((i) => statedTotal(i.lines) !== 0, {
      error: "the credit note's lines add up to zero; it must credit an amount",
      path: ["lines"],
    })
    .transform((i) => (statedTotal(i.lines) < 0 ? { ...i, lines: i.lines.map((l) => ({ ...l, quantity: -l.quantity })) } : i)),
);
export const CreditNote = lazySchema(creditNote);
export type CreditNote = z.infer<typeof CreditNote>;

export type InvoiceLike = Invoice | CreditNote;

/** A person in the PSA: who records hours and claims expenses. Used by the file exports. */
const user = once(() =>
  z.object({
    number: recordNumber(),
    name: text(255),
    email: z.email().optional(),
    department: optionalText(50),
    /** The employee number in the payroll system; payroll exports need it. */
    externalEmployeeNumber: optionalText(50),
    active: z.boolean().default(true),
  }),
);
export const User = lazySchema(user);
export type User = z.infer<typeof User>;

/** Hours one person recorded on one day. The PSA's id is the key; a repeat replaces the record. */
const timeRecord = once(() =>
  z.object({
    id: recordNumber(),
    date: isoDate(),
    personNumber: recordNumber(),
    projectNumber: recordNumber().optional(),
    activity: optionalText(100),
    hours: z
      .number({ error: "must be a number of hours, e.g. 7.5" })
      .finite()
      .min(0, { error: "must not be negative" })
      .max(24, { error: "must be at most 24 hours for one record" }),
    billable: z.boolean().default(true),
    approved: z.boolean().default(false),
    description: optionalText(2500),
  }),
);
export const TimeRecord = lazySchema(timeRecord);
export type TimeRecord = z.infer<typeof TimeRecord>;

/** One line of an expense claim: amount is gross (incl. VAT), both in minor units. */
const expenseLine = once(() =>
  z
    .object({
      date: isoDate().optional(),
      text: text(500),
      category: optionalText(100),
      account: optionalText(20),
      projectNumber: recordNumber().optional(),
      amount: minorUnits(),
      vatAmount: minorUnits().default(0),
      vatCode: optionalText(10),
    })
    .refine((l) => Math.abs(l.vatAmount) <= Math.abs(l.amount) && (l.vatAmount === 0 || Math.sign(l.vatAmount) === Math.sign(l.amount)), {
      error: "vatAmount must be part of amount (amount is gross, incl. VAT): same sign, not larger",
      path: ["vatAmount"],
    }),
);
export const ExpenseLine = lazySchema(expenseLine);
export type ExpenseLine = z.infer<typeof ExpenseLine>;

/** An expense claim (travel and other outlays a person wants refunded). */
const expenseClaim = once(() =>
  z.object({
    number: recordNumber(),
    personNumber: recordNumber(),
    date: isoDate(),
    description: optionalText(500),
    currency: currency().default("NOK"),
    projectNumber: recordNumber().optional(),
    approved: z.boolean().default(false),
    lines: z.array(expenseLine()).min(1, { error: "an expense claim needs at least one line" }).max(500),
  }),
);
export const ExpenseClaim = lazySchema(expenseClaim);
export type ExpenseClaim = z.infer<typeof ExpenseClaim>;

/** The kinds of record the agent stores and pushes. A credit note is stored as an invoice record. */
export type Entity = "customer" | "project" | "product" | "invoice";
export const ENTITIES: readonly Entity[] = ["customer", "project", "product", "invoice"];
/**
 * Records kept only for the file exports. Intake stores them like the others; no connector supports
 * them (`supports()` answers false for a kind it does not know), so they never get deliveries.
 */
export type ExportOnlyEntity = "user" | "time_record" | "expense_claim";
export type RecordEntity = Entity | ExportOnlyEntity;

export const EVENT_TYPES = {
  "customer.upserted": {
    entity: "customer",
    get schema() {
      return customer();
    },
    key: (d: Customer) => d.number,
  },
  "project.upserted": {
    entity: "project",
    get schema() {
      return project();
    },
    key: (d: Project) => d.number,
  },
  "product.upserted": {
    entity: "product",
    get schema() {
      return product();
    },
    key: (d: Product) => d.code,
  },
  "invoice.finalized": {
    entity: "invoice",
    get schema() {
      return invoice();
    },
    key: (d: Invoice) => d.number,
  },
  "invoice.credited": {
    entity: "invoice",
    get schema() {
      return creditNote();
    },
    key: (d: CreditNote) => d.number,
  },
  "user.upserted": {
    entity: "user",
    get schema() {
      return user();
    },
    key: (d: User) => d.number,
  },
  "time_record.upserted": {
    entity: "time_record",
    get schema() {
      return timeRecord();
    },
    key: (d: TimeRecord) => d.id,
  },
  "expense_claim.upserted": {
    entity: "expense_claim",
    get schema() {
      return expenseClaim();
    },
    key: (d: ExpenseClaim) => d.number,
  },
} as const;
export type EventType = keyof typeof EVENT_TYPES;

export interface Dependency {
  entity: Entity;
  key: string;
  /** Waited for only if the PSA has sent that record (a credit note for an invoice from before kontobro goes at once). */
  ifKnown?: boolean;
}

/**
 * A stored payload as the current model reads it. Every push goes through this, so a payload stored by
 * an older version (a credit note with minus signs, "0101") reaches a connector in today's form.
 */
export function parseStored(entity: Entity, payload: unknown) {
  const schema =
    entity === "customer"
      ? customer()
      : entity === "project"
        ? project()
        : entity === "product"
          ? product()
          : (payload as { kind?: string } | null)?.kind === "credit_note"
            ? creditNote()
            : invoice();
  return (schema as z.ZodType<unknown>).safeParse(payload);
}

/** Records an entity needs at the target before it can be pushed (customer → project → invoice → credit note). */
export function dependenciesOf(entity: Entity, payload: any): Dependency[] {
  if (entity === "project" && payload.customerNumber) return [{ entity: "customer", key: payload.customerNumber }];
  if (entity !== "invoice") return [];
  const deps: Dependency[] = [{ entity: "customer", key: payload.customerNumber }];
  const credited = creditedInvoiceOf(entity, payload);
  if (credited !== null) deps.push({ entity: "invoice", key: credited, ifKnown: true });
  if (payload.projectNumber) deps.push({ entity: "project", key: payload.projectNumber });
  // Products named on lines may be the target's own master data (set up there, never sent by the PSA):
  // waited for only when the PSA has sent them.
  for (const code of new Set<string>((payload.lines ?? []).map((l: InvoiceLine) => l.productCode).filter(Boolean))) {
    deps.push({ entity: "product", key: code, ifKnown: true });
  }
  return deps;
}

/** The number of the invoice a stored credit note credits; null for any other record. */
export function creditedInvoiceOf(entity: Entity, payload: any): string | null {
  return entity === "invoice" && payload?.kind === "credit_note" && payload.creditedInvoiceNumber
    ? String(payload.creditedInvoiceNumber)
    : null;
}

/**
 * Gross amount of a line in minor units: quantity × unit price, rounded half away from zero. The product is read to 15
 * significant digits first: in binary 1.005 × 100 is 100.49999999999999, and rounding that gave 100 where the invoice
 * (and a target computing in decimals) says 101. Within the model's bounds (10^13 minor units) 15 digits keep every
 * øre and the halves.
 */
export function lineAmount(line: Pick<InvoiceLine, "quantity" | "unitPrice">): number {
  const raw = unroundedLineAmount(line);
  return Math.sign(raw) * Math.round(Math.abs(raw));
}

/** quantity × unit price in minor units before rounding, read to 15 significant digits (see lineAmount). */
const unroundedLineAmount = (line: Pick<InvoiceLine, "quantity" | "unitPrice">) => Number((line.quantity * line.unitPrice).toPrecision(15));

/**
 * How far a target computing a document's total from its lines may land from customerTotal by rounding alone, in minor
 * units: one for each line whose quantity × unit price is not a whole number of minor units (the target may round its
 * halves the other way, or round only the sum). A whole line is booked exactly by any target, so an invoice of whole
 * lines has no room: every øre of difference is a change.
 */
export function roundingRoom(lines: readonly Pick<InvoiceLine, "quantity" | "unitPrice">[]): number {
  return lines.filter((l) => !Number.isInteger(unroundedLineAmount(l))).length;
}

/**
 * A line's quantity from the customer's point of view: as sent for an invoice, negated for a credit note
 * (what a target that books credit notes as negative invoices needs). The one place a sign is decided.
 */
export function customerQuantity(inv: Pick<InvoiceLike, "kind">, line: Pick<InvoiceLine, "quantity">): number {
  return inv.kind === "credit_note" ? -line.quantity : line.quantity;
}

/** What the document changes in what the customer owes, in minor units: negative for every credit note. */
export function customerTotal(inv: Pick<InvoiceLike, "kind" | "lines">): number {
  return inv.lines.reduce((sum, l) => sum + lineAmount({ quantity: customerQuantity(inv, l), unitPrice: l.unitPrice }), 0);
}

/**
 * Whether a document a target booked with this net total (minor units, the customer's point of view: negative for a
 * credit note) is for other amounts than `inv`: a later version changed what the customer owes. A line that rounds may
 * round its own way at the target (roundingRoom); any difference beyond that is a change. (It was one minor unit for
 * every line: on an invoice of 40 whole lines a correction of 0.30 passed as rounding and was never booked.)
 */
export function bookedAmountDiffers(inv: Pick<InvoiceLike, "kind" | "lines">, bookedNetMinor: number): boolean {
  return !Number.isFinite(bookedNetMinor) || Math.abs(bookedNetMinor - customerTotal(inv)) > roundingRoom(inv.lines);
}

/** Names as kontobro compares them for a match: trimmed, spaces collapsed, case and Unicode form ignored. */
export const normaliseName = (name: unknown) =>
  String(name ?? "")
    .normalize("NFC")
    .trim()
    .replace(/\s+/g, " ")
    .toLocaleLowerCase("sv");
export const sameName = (a: unknown, b: unknown) => normaliseName(a) === normaliseName(b);
