// The zod schemas of /api/v1 for its OpenAPI description (agent/http/openapi.ts). Requests: the validators
// the routes use themselves, imported, never copied. Answers: the shapes the routes return, described here
// in zod (they validate nothing; the API tests check that answers match them).
import { z } from "zod";
import { Template } from "../../formats/templates/definition.ts";
import { EXPORT_STATUSES } from "../exports/status.ts";
import { Envelope, MAX_EVENTS_PER_REQUEST } from "../intake.ts";
import { built } from "../lazy-schema.ts";
import { EVENT_TYPES, type EventType } from "../model.ts";
import { DELIVERY_STATUSES, INBOX_STATES, RUN_STATUSES, RUN_TRIGGERS } from "../states.ts";
import { DeliveriesQuery } from "./api.ts";
import { PreviewBody, RunBody, StatusBody } from "./exports-api.ts";
import { FeedQuery } from "./inbox-api.ts";

/** "customer.upserted" → CustomerUpserted; the event's data → Customer. */
const pascal = (s: string) =>
  s
    .split(/[._]/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
const dataName = (type: EventType) => (type === "invoice.credited" ? "CreditNote" : pascal(type.split(".")[0]!));

/** One event per type: intake's envelope with that type's data schema (the two intake validates with). */
const eventSchemas = (Object.keys(EVENT_TYPES) as EventType[]).map((type) => ({
  type,
  name: `${pascal(type)}Event`,
  data: EVENT_TYPES[type].schema as z.ZodType,
  dataName: dataName(type),
  event: Envelope.extend({ type: z.literal(type), data: EVENT_TYPES[type].schema as z.ZodType }),
}));

export const Event = z
  .discriminatedUnion("type", eventSchemas.map((e) => e.event) as any)
  .describe("One change in the PSA. `id` is the PSA's id of this change: a repeat with the same content is stored once.");
export const EventsBody = z
  .union([Event, z.array(Event).min(1).max(MAX_EVENTS_PER_REQUEST)])
  .describe(`One event, or an array of up to ${MAX_EVENTS_PER_REQUEST}.`);

/** The query validators of GET /deliveries and the inbox feed (described as query parameters). */
export const queries = { deliveries: built(DeliveriesQuery), feed: built(FeedQuery) };

/** Request schemas with their component names. */
export const requestSchemas: [z.ZodType, string][] = [
  ...eventSchemas.flatMap((e): [z.ZodType, string][] => [
    [e.data, e.dataName],
    [e.event, e.name],
  ]),
  [Event, "Event"],
  [EventsBody, "EventsBody"],
  // Built on first use (agent/lazy-schema.ts): the registry keys on the schema itself.
  [built(RunBody), "ExportRunRequest"],
  [built(StatusBody), "ExportStatusRequest"],
  [built(PreviewBody), "TemplateTestRequest"],
  [built(Template), "Template"],
];

// ---- Answers ----

export const ProblemSchema = z
  .object({
    code: z.string().describe("Stable machine code."),
    message: z.string().describe("What is wrong, in plain language."),
    hint: z.string().optional().describe("How to fix it."),
    field: z.string().optional().describe("The field concerned, as a dotted path."),
  })
  .describe("One problem, with the same shape everywhere.");

export const ErrorSchema = z
  .object({
    error: z.string().describe("Machine code: bad_request, unauthorized, not_found, conflict, …"),
    message: z.string(),
    hint: z.string().optional(),
    field: z.string().optional(),
    problems: z.array(ProblemSchema).optional(),
  })
  .describe("Every refusal: a code, a message and, mostly, a hint.");

const RejectedEvent = z.object({ index: z.number().int(), id: z.string().optional(), problems: z.array(ProblemSchema) });
export const EventsRefused = ErrorSchema.extend({
  events: z.array(RejectedEvent).describe("One entry per refused event, by its index in the request."),
});

export const EventsAccepted = z
  .object({
    accepted: z.number().int().describe("Events stored and queued for the targets."),
    duplicates: z.number().int().describe("Repeats of stored events (same id, same content): acknowledged again."),
    stale: z.number().int().describe("Older (by occurredAt) than the stored version: kept in the log, never pushed."),
    events: z.array(z.object({ id: z.string(), status: z.enum(["accepted", "duplicate", "stale"]) })),
  })
  .describe("Answered after the events are committed to disk.");

export const Delivery = z
  .object({
    id: z.number().int(),
    target: z.string(),
    entity: z.string(),
    key: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number().int(),
    uncertain: z.boolean().describe("An earlier attempt may have reached the target: it is looked up before anything is created."),
    nextAttemptAt: z.number().int().describe("Epoch milliseconds."),
    errorCode: z.string().nullable(),
    errorMessage: z.string().nullable(),
    errorHint: z.string().nullable(),
    errorField: z.string().nullable(),
    note: z.string().nullable(),
    remoteId: z.string().nullable().describe("The record's id or number at the target."),
    eventId: z.string(),
    eventType: z.string(),
    createdAt: z.number().int(),
    updatedAt: z.number().int(),
    doneAt: z.number().int().nullable(),
  })
  .describe("One event on its way to one target.");

export const DeliveryList = z.object({
  deliveries: z.array(Delivery),
  next: z.number().int().nullable().describe("Pass as `before` for the next page; null when this page is empty."),
});

export const RetryAccepted = z.object({ id: z.number().int(), status: z.literal("pending") });

export const RetriedNeedingAction = z.object({
  retried: z.number().int().describe("How many deliveries that needed action are pending again."),
  target: z.string().optional().describe("The target asked for, when one was."),
});

export const InboxItem = z
  .object({
    id: z.number().int().describe("Stable: the same entry of the target always has the same id. Dedupe on it."),
    seq: z.number().int(),
    target: z.string(),
    stream: z.string(),
    type: z.string().describe("expense.posted, expense.changed, expense.cancelled, invoice.paid, invoice.status_changed, …"),
    remoteId: z
      .string()
      .describe(
        "The target's id of the entry; for a status change `invoice:<number>#<count of changes>:<status>[:<remainder in minor units>]@<time of the change, ms>` (the remainder for `partially_paid`), so each change, a second partial payment or a reversal included, is its own item, and a change after a restore never takes the id of one before it.",
      ),
    state: z.enum(INBOX_STATES),
    requires: z.object({ entity: z.string(), key: z.string() }).optional().describe("The PSA record the item belongs to."),
    data: z
      .record(z.string(), z.unknown())
      .describe(
        "The item's content. invoice.paid / invoice.status_changed: invoiceNumber, status (sent, overdue, partially_paid, paid, …), previousStatus, and where the target tells them amount, remainder, paidAmount and overdue, in minor units of the invoice's currency (`currency`). See the README (Expenses and payment status back to the PSA).",
      ),
    attachment: z.object({ filename: z.string(), contentType: z.string(), size: z.number().int(), href: z.string().optional() }).optional(),
    createdAt: z.string(),
    deliveredAt: z.string().optional(),
  })
  .describe("Something pulled from a target for the PSA.");

export const InboxPage = z.object({
  items: z.array(InboxItem),
  next: z.string().describe("The cursor for the next call (after=next); the same while nothing is new."),
  more: z.boolean().describe("More items are ready now."),
});

const JobRun = z.object({
  id: z.number().int(),
  target: z.string(),
  stream: z.string(),
  trigger: z.enum(RUN_TRIGGERS),
  status: z.enum(RUN_STATUSES),
  startedAt: z.number().int(),
  finishedAt: z.number().int().nullable(),
  pages: z.number().int(),
  fetched: z.number().int(),
  imported: z.number().int(),
  duplicates: z.number().int(),
  ignored: z.number().int(),
  errorCode: z.string().nullable(),
  errorMessage: z.string().nullable(),
  errorHint: z.string().nullable(),
});

export const PullJobs = z.object({
  jobs: z.array(
    z.object({
      target: z.string(),
      stream: z.string(),
      cron: z.string().nullable(),
      timezone: z.string(),
      next: z.string().nullable().describe("The next scheduled run (ISO 8601)."),
      running: z.boolean(),
      runs: z.array(JobRun),
    }),
  ),
  webhooks: z
    .array(
      z.object({
        target: z.string(),
        kind: z.string(),
        paths: z
          .array(z.string())
          .describe("Paths on this server (token and URL-template parameters included) to give the target's webhooks."),
      }),
    )
    .describe("The targets that take webhook hints, with the URLs to configure there."),
});

export const PullResult = z.object({
  status: z.enum(RUN_STATUSES).describe("ok, or failed (problem says why)."),
  runId: z.number().int(),
  pages: z.number().int(),
  fetched: z.number().int(),
  imported: z.number().int(),
  duplicates: z.number().int(),
  ignored: z.number().int(),
  problem: ProblemSchema.optional(),
});

/** The export answers are wide and documented in README.md ("Exports"); described here at their top level. */
const loose = (description: string) => z.object({}).catchall(z.unknown()).describe(description);
export const ExportRun = loose("An export run: its format or template, period, counts, warnings and files (each with a download link).");
export const ExportRuns = z.object({ runs: z.array(ExportRun) });
export const ExportFile = loose(
  "A produced file: name, format, period, size, checksum, download link; contentPruned: retention removed its content (the download answers 410).",
);
export const ExportFiles = z.object({ files: z.array(ExportFile), next: z.number().int().nullable() });
export const InvoiceExportStatus = loose("An invoice's export status (to transfer, transferred, excluded) with its history.");
export const InvoiceStatuses = z
  .object({ counts: z.record(z.string(), z.number().int()), invoices: z.array(InvoiceExportStatus) })
  .describe(`Statuses: ${EXPORT_STATUSES.join(", ")}.`);
export const StatusChange = loose("The invoices whose status changed, and those refused.");
export const DataTypes = z.object({ dataTypes: z.array(loose("A data type templates can export: its fields and selection.")) });
export const TemplateList = z.object({
  templates: z.array(
    loose(
      "A template: name, data type, title, built in or not; `problems` when a saved one does not pass this version's checks (saved by an earlier version): it cannot be exported or tested until it is fixed and saved again.",
    ),
  ),
});
export const TemplatePreview = loose("The first rows of the file exactly as it would hold them; nothing is stored.");
export const TemplateImported = z.object({ name: z.string(), created: z.boolean() });

export const responseSchemas: [z.ZodType, string][] = [
  [ProblemSchema, "Problem"],
  [ErrorSchema, "Error"],
  [EventsRefused, "EventsRefused"],
  [EventsAccepted, "EventsAccepted"],
  [Delivery, "Delivery"],
  [DeliveryList, "DeliveryList"],
  [RetryAccepted, "RetryAccepted"],
  [RetriedNeedingAction, "RetriedNeedingAction"],
  [InboxItem, "InboxItem"],
  [InboxPage, "InboxPage"],
  [JobRun, "PullRun"],
  [PullJobs, "PullJobs"],
  [PullResult, "PullResult"],
  [ExportRun, "ExportRun"],
  [ExportRuns, "ExportRuns"],
  [ExportFile, "ExportFile"],
  [ExportFiles, "ExportFiles"],
  [InvoiceExportStatus, "InvoiceExportStatus"],
  [InvoiceStatuses, "InvoiceStatuses"],
  [StatusChange, "StatusChange"],
  [DataTypes, "DataTypes"],
  [TemplateList, "TemplateList"],
  [TemplatePreview, "TemplatePreview"],
  [TemplateImported, "TemplateImported"],
];
