// The OpenAPI 3.1 description of /api/v1, generated from the zod schemas (z.toJSONSchema) in
// openapi-schemas.ts: the request validators the routes use, and the answers' shapes. Served at
// /api/v1/openapi.json and rendered as a page at /ui/api (api-reference.ts).
import { z } from "zod";
import { MAX_EVENTS_PER_REQUEST, MAX_PROBLEMS_PER_EVENT } from "../intake.ts";
import { queries, requestSchemas, responseSchemas } from "./openapi-schemas.ts";

type Json = Record<string, any>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Component schemas of one direction: requests as accepted (io input), answers as sent (io output). */
function components(list: [z.ZodType, string][], io: "input" | "output"): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [schema, id] of list) if (!registry.has(schema)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    io,
    target: "draft-2020-12",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Json> };
  // Components are named by their key; zod's $id (a fragment URI) and $schema are left out.
  for (const s of Object.values(schemas)) {
    delete s.$schema;
    delete s.$id;
  }
  return schemas;
}

/** The properties of a query schema as OpenAPI query parameters. */
function queryParameters(schema: z.ZodType): Json[] {
  const json = z.toJSONSchema(schema, { io: "input", target: "draft-2020-12", unrepresentable: "any" }) as Json;
  const required = new Set<string>(json.required ?? []);
  return Object.entries(json.properties as Record<string, Json>).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: "query", required: required.has(name), ...(description ? { description } : {}), schema: rest };
  });
}

const json = (schema: Json, description: string) => ({ description, content: { "application/json": { schema } } });
const error = (description: string) => json(ref("Error"), description);
const pathParam = (name: string, description: string, schema: Json = { type: "integer", minimum: 1 }) => ({
  name,
  in: "path",
  required: true,
  description,
  schema,
});

/** Answers every operation may give. */
const COMMON = {
  "401": {
    ...error("No token, a malformed Authorization header or a wrong token."),
    headers: { "WWW-Authenticate": { description: 'Bearer realm="kontobro"', schema: { type: "string" } } },
  },
  "500": error("Something went wrong inside kontobro; nothing partial was stored."),
};

interface Op {
  id: string;
  tag: string;
  summary: string;
  description?: string;
  params?: Json[];
  body?: Json;
  responses: Record<string, Json>;
}

function operation(o: Op): Json {
  return {
    operationId: o.id,
    tags: [o.tag],
    summary: o.summary,
    ...(o.description ? { description: o.description } : {}),
    ...(o.params?.length ? { parameters: o.params } : {}),
    ...(o.body ? { requestBody: { required: true, content: { "application/json": { schema: o.body } } } } : {}),
    responses: { ...o.responses, ...COMMON },
  };
}

function paths(): Json {
  const id = pathParam("id", "The delivery's id.");
  const fileId = pathParam("id", "The export file's id.");
  const templateName = pathParam("name", "The template's name.", { type: "string", pattern: "^[a-z0-9][a-z0-9_-]{0,59}$" });
  const feed = queryParameters(queries.feed);
  const binary = (description: string, type = "application/octet-stream") => ({
    description,
    content: { [type]: { schema: { type: "string", contentMediaType: type } } },
  });
  return {
    "/events": {
      post: operation({
        id: "postEvents",
        tag: "Events",
        summary: "Send events from the PSA",
        description:
          `One event or an array of up to ${MAX_EVENTS_PER_REQUEST}, as JSON. All or nothing: when one event is invalid, none is stored. ` +
          "Answered only after the events are committed to disk. Money is in integer minor units (øre, cent). " +
          "A field not named in an event type's schema is refused (422, invalid.unknown_field), never ignored; so is a field sent twice in one object (422, invalid.duplicate_key).",
        body: ref("EventsBody"),
        responses: {
          "202": json(ref("EventsAccepted"), "Stored (or acknowledged again: duplicates and stale versions)."),
          "400": error("Malformed JSON, invalid UTF-8, an empty array or more than 1,000 events."),
          "409": json(
            ref("EventsRefused"),
            "An event id repeated with other content, or an invoice number or PSA id that is another document's; nothing was stored.",
          ),
          "413": error("The body is larger than http.max_body_bytes."),
          "415": error("Content-Type is not application/json."),
          "422": json(
            ref("EventsRefused"),
            `Invalid events, with a message and hint per event and field (at most ${MAX_PROBLEMS_PER_EVENT} per event, then one invalid.more_problems saying how many more); nothing was stored.`,
          ),
          "503": {
            ...error("The database cannot take them now (busy, full, read-only); nothing was stored."),
            headers: {
              "Retry-After": { description: "Seconds to wait before sending the same events again.", schema: { type: "integer" } },
            },
          },
        },
      }),
    },
    "/deliveries": {
      get: operation({
        id: "listDeliveries",
        tag: "Deliveries",
        summary: "List deliveries",
        description: "Newest first; `?status=needs_action` lists what a person must fix.",
        params: queryParameters(queries.deliveries),
        responses: { "200": json(ref("DeliveryList"), "A page of deliveries."), "400": error("An unknown status.") },
      }),
    },
    "/deliveries/{id}": {
      get: operation({
        id: "getDelivery",
        tag: "Deliveries",
        summary: "Get one delivery",
        params: [id],
        responses: { "200": json(ref("Delivery"), "The delivery."), "404": error("No such delivery.") },
      }),
    },
    "/deliveries/retry": {
      post: operation({
        id: "retryDeliveriesNeedingAction",
        tag: "Deliveries",
        summary: "Retry every delivery that needs action",
        description:
          "After the cause is fixed for all of them at once (a target's credentials refused, then corrected): every delivery that needs action, or only those of the target named by ?target=NAME, is pending again.",
        params: [
          { name: "target", in: "query", required: false, description: "Only this target's deliveries.", schema: { type: "string" } },
        ],
        responses: {
          "200": json(ref("RetriedNeedingAction"), "How many are pending again."),
          "404": error("No delivery has gone to a target of that name (a typo): nothing was retried."),
        },
      }),
    },
    "/deliveries/{id}/retry": {
      post: operation({
        id: "retryDelivery",
        tag: "Deliveries",
        summary: "Retry a delivery now",
        description: "For a delivery that needs action, waits or is pending.",
        params: [id],
        responses: {
          "200": json(ref("RetryAccepted"), "Pending again."),
          "404": error("No such delivery."),
          "409": error("Delivered or superseded: nothing to retry."),
        },
      }),
    },
    "/inbox": {
      get: operation({
        id: "readInbox",
        tag: "Inbox",
        summary: "Read the feed of pulled items",
        description:
          "Deliverable items after the cursor, in the order they became deliverable. Asking for items after a cursor acknowledges everything up to it.",
        params: feed,
        responses: {
          "200": json(ref("InboxPage"), "The next items."),
          "400": error("A malformed cursor, limit or target."),
          "409": error("The cursor is beyond the newest item (the inbox was restored): start again with after=0."),
        },
      }),
    },
    "/inbox/ignored": {
      get: operation({
        id: "readIgnoredInbox",
        tag: "Inbox",
        summary: "List items kept aside (project unknown)",
        description: "Acknowledges nothing and moves no cursor.",
        params: feed,
        responses: {
          "200": json(ref("InboxPage"), "Items waiting for their project."),
          "400": error("A malformed cursor, limit or target."),
        },
      }),
    },
    "/inbox/{id}/attachment": {
      get: operation({
        id: "getInboxAttachment",
        tag: "Inbox",
        summary: "Download an item's attachment",
        params: [pathParam("id", "The inbox item's id.")],
        responses: {
          "200": binary("The file (a receipt), with its own content type."),
          "404": error("No such item, or it has no attachment."),
        },
      }),
    },
    "/pulls": {
      get: operation({
        id: "listPulls",
        tag: "Pulls",
        summary: "List the pull jobs and their recent runs",
        responses: { "200": json(ref("PullJobs"), "The jobs.") },
      }),
    },
    "/pulls/{target}/{stream}": {
      post: operation({
        id: "runPull",
        tag: "Pulls",
        summary: "Run a pull now and wait for it",
        params: [
          pathParam("target", "The target's name.", { type: "string" }),
          pathParam("stream", "The stream: expenses, payments, …", { type: "string" }),
        ],
        responses: {
          "200": json(ref("PullResult"), "The run succeeded."),
          "404": error("No such job."),
          "409": error("A run of this job is under way."),
          "502": json(ref("PullResult"), "The run failed; problem says why."),
        },
      }),
    },
    "/exports/runs": {
      post: operation({
        id: "runExport",
        tag: "Exports",
        summary: "Run an export (SIE 4 or a template)",
        body: ref("ExportRunRequest"),
        responses: {
          "200": json(ref("ExportRun"), "Nothing to export."),
          "201": json(ref("ExportRun"), "Files written."),
          "400": error("Malformed JSON."),
          "409": error("Refused (e.g. a period that needs confirming)."),
          "415": error("Not JSON."),
          "422": error("Invalid request or settings."),
        },
      }),
      get: operation({
        id: "listExportRuns",
        tag: "Exports",
        summary: "List export runs",
        params: [{ name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, default: 50 } }],
        responses: { "200": json(ref("ExportRuns"), "Newest first.") },
      }),
    },
    "/exports/runs/{id}": {
      get: operation({
        id: "getExportRun",
        tag: "Exports",
        summary: "Get one export run",
        params: [pathParam("id", "The run's id.")],
        responses: { "200": json(ref("ExportRun"), "The run with its files."), "404": error("No such run.") },
      }),
    },
    "/exports/files": {
      get: operation({
        id: "listExportFiles",
        tag: "Exports",
        summary: "List export files",
        params: [
          { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, default: 100 } },
          {
            name: "before",
            in: "query",
            required: false,
            description: "The previous answer's next.",
            schema: { type: "integer", minimum: 1 },
          },
        ],
        responses: { "200": json(ref("ExportFiles"), "Newest first.") },
      }),
    },
    "/exports/files/{id}": {
      get: operation({
        id: "getExportFile",
        tag: "Exports",
        summary: "Get one export file's details",
        params: [fileId],
        responses: { "200": json(ref("ExportFile"), "The file, its invoices and warnings."), "404": error("No such file.") },
      }),
    },
    "/exports/files/{id}/download": {
      get: operation({
        id: "downloadExportFile",
        tag: "Exports",
        summary: "Download an export file",
        params: [fileId],
        responses: {
          "200": binary("The file's bytes, as written."),
          "404": error("No such file."),
          "410": error("Retention removed the file's content (exports.file_pruned; contentPruned in its metadata): its row stays."),
        },
      }),
    },
    "/exports/invoices": {
      get: operation({
        id: "listInvoiceExportStatuses",
        tag: "Exports",
        summary: "List invoices by export status",
        params: [
          { name: "status", in: "query", required: false, schema: { type: "string" } },
          { name: "limit", in: "query", required: false, schema: { type: "integer", default: 100 } },
          { name: "offset", in: "query", required: false, schema: { type: "integer", default: 0 } },
        ],
        responses: { "200": json(ref("InvoiceStatuses"), "Counts and invoices."), "400": error("An unknown status.") },
      }),
    },
    "/exports/invoices/{number}": {
      get: operation({
        id: "getInvoiceExportStatus",
        tag: "Exports",
        summary: "Get one invoice's export status",
        params: [pathParam("number", "The invoice number.", { type: "string" })],
        responses: { "200": json(ref("InvoiceExportStatus"), "Its status and history."), "404": error("No such invoice.") },
      }),
    },
    "/exports/invoices/status": {
      post: operation({
        id: "changeInvoiceExportStatus",
        tag: "Exports",
        summary: "Change invoices' export status",
        body: ref("ExportStatusRequest"),
        responses: {
          "200": json(ref("StatusChange"), "Changed."),
          "400": error("Malformed JSON."),
          "409": error("Refused for some invoices."),
          "415": error("Not JSON."),
          "422": error("Invalid request."),
        },
      }),
    },
    "/exports/data-types": {
      get: operation({
        id: "listExportDataTypes",
        tag: "Templates",
        summary: "List the data types templates can export",
        responses: { "200": json(ref("DataTypes"), "Data types with their fields.") },
      }),
    },
    "/exports/templates": {
      get: operation({
        id: "listTemplates",
        tag: "Templates",
        summary: "List export templates",
        responses: { "200": json(ref("TemplateList"), "Built-in and saved templates.") },
      }),
    },
    "/exports/templates/test": {
      post: operation({
        id: "testUnsavedTemplate",
        tag: "Templates",
        summary: "Test an unsaved template",
        body: ref("TemplateTestRequest"),
        responses: {
          "200": json(ref("TemplatePreview"), "The first rows."),
          "400": error("Malformed JSON."),
          "415": error("Not JSON."),
          "422": error("An invalid template or request."),
        },
      }),
    },
    "/exports/templates/import": {
      post: operation({
        id: "importTemplate",
        tag: "Templates",
        summary: "Import a template file",
        params: [
          {
            name: "replace",
            in: "query",
            required: false,
            description: "true replaces a saved template of the same name.",
            schema: { type: "boolean" },
          },
        ],
        responses: {
          "200": json(ref("TemplateImported"), "Replaced."),
          "201": json(ref("TemplateImported"), "Created."),
          "409": error("A template of that name exists (use replace=true), or it is built in."),
          "422": error("Not a valid template file."),
        },
      }),
    },
    "/exports/templates/{name}": {
      get: operation({
        id: "getTemplate",
        tag: "Templates",
        summary: "Get a template",
        params: [templateName],
        responses: { "200": json(ref("Template"), "The template."), "404": error("No such template.") },
      }),
      put: operation({
        id: "putTemplate",
        tag: "Templates",
        summary: "Create or replace a template",
        params: [templateName],
        body: ref("Template"),
        responses: {
          "200": json(ref("Template"), "Replaced."),
          "201": json(ref("Template"), "Created."),
          "400": error("Malformed JSON."),
          "409": error("A built-in template cannot be replaced."),
          "415": error("Not JSON."),
          "422": error("An invalid template."),
        },
      }),
      delete: operation({
        id: "deleteTemplate",
        tag: "Templates",
        summary: "Delete a template",
        params: [templateName],
        responses: {
          "204": { description: "Deleted." },
          "404": error("No such template."),
          "409": error("A built-in template cannot be deleted."),
        },
      }),
    },
    "/exports/templates/{name}/file": {
      get: operation({
        id: "downloadTemplate",
        tag: "Templates",
        summary: "Download a template as a file",
        params: [templateName],
        responses: { "200": binary("The template file (JSON).", "application/json"), "404": error("No such template.") },
      }),
    },
    "/exports/templates/{name}/test": {
      post: operation({
        id: "testTemplate",
        tag: "Templates",
        summary: "Test a saved template",
        description: "The body is optional.",
        params: [templateName],
        responses: {
          "200": json(ref("TemplatePreview"), "The first rows."),
          "404": error("No such template."),
          "422": error("An invalid request."),
        },
      }),
    },
  };
}

let cached: Json | null = null;

/** The description (built once per process; `serverUrl` fills servers). */
export function openApiDocument(version: string, serverUrl = "http://127.0.0.1:8787"): Json {
  cached ??= {
    requests: components(requestSchemas, "input"),
    responses: components(responseSchemas, "output"),
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "kontobro local API",
      version,
      summary: "Events from the PSA, deliveries to the accounting systems, the feed of pulled items, pulls and file exports.",
      description:
        "The API of the kontobro agent on its own server. Every call needs `Authorization: Bearer <token>` (http.api_token in kontobro.toml, " +
        "or the token `kontobro status` shows). Refusals are JSON with `error`, `message` and mostly a `hint`. Generated from the zod schemas that validate the requests.",
      license: { name: "Proprietary", identifier: "LicenseRef-kontobro" },
    },
    servers: [{ url: `${serverUrl.replace(/\/$/, "")}/api/v1`, description: "This agent" }],
    security: [{ bearer: [] }],
    tags: [
      { name: "Events", description: "What the PSA sends." },
      { name: "Deliveries", description: "Events on their way to each target: state, errors, retry." },
      { name: "Inbox", description: "What kontobro pulled from the targets for the PSA (expenses, payment status)." },
      { name: "Pulls", description: "The scheduled pull jobs." },
      { name: "Exports", description: "SIE 4 and template exports, their files and the invoices' export status." },
      { name: "Templates", description: "Export templates." },
    ],
    paths: paths(),
    components: {
      schemas: { ...cached.requests, ...cached.responses },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "The API token (http.api_token, or generated per data directory)." },
      },
    },
  };
}
