// The OpenAPI Projects API (projectsapi v1.1.0): POST/PUT /Projects, GET by number, cursor and paged
// lists, /ProjectGroups. Routes are lower-case: the sandbox matches OpenAPI paths case-insensitively.
import type { Context, Hono } from "hono";
import projectJson from "./schemas/openapi-projects-Project.schema.json";
import { isPlainObject, stripToSchema, validateSchema, type JsonSchema } from "../schema-validate.ts";
import { applyFilter, openApiError, openApiJson, PROJECTS_PREFIX, readJsonBody } from "./http.ts";
import { intSegment, origin, type SandboxCore } from "./rest.ts";
import { nextObjectVersion, type Json, type SandboxState } from "./state.ts";

const P = PROJECTS_PREFIX;
const PROJECT_SCHEMA = projectJson as unknown as JsonSchema;
const CURSOR_PAGE = 1000;
const PAGED_MAX = 100;
const PAGED_CAP = 10_000;

/** Properties with `x-filterable` in the OpenAPI schema. */
const PROJECT_FILTERS = new Set(
  Object.entries(PROJECT_SCHEMA.properties ?? {})
    .filter(([, p]) => p["x-filterable"])
    .map(([k]) => k),
);

const notFound = (what: string) =>
  openApiError(404, `${what} not found.`, { code: "NotFound", developerHint: "Check the number; the resource may have been deleted." });
const methodNotAllowed = (c: Context) => openApiError(405, `The method ${c.req.method} is not allowed here.`, { code: "MethodNotAllowed" });

/** Reads and validates a Project body; the first problem becomes the OpenAPI error. */
async function readProject(c: Context): Promise<Json | Response> {
  const body = await readJsonBody(c);
  if (body instanceof Response) return body;
  if (!isPlainObject(body)) return openApiError(400, "The request body must be a JSON object.", { code: "InvalidBody" });
  const [first] = validateSchema(PROJECT_SCHEMA, body);
  if (first) return openApiError(400, first.message, { code: `SANDBOX_${first.keyword.toUpperCase()}`, property: first.path });
  return body;
}

/** Group and customer rules shared by create and update. */
function ruleError(state: SandboxState, doc: Json): Response | undefined {
  const group = state.projectGroups.get(doc.projectGroupNumber);
  if (!group) {
    return openApiError(400, `Project group ${doc.projectGroupNumber} does not exist.`, {
      code: "ProjectCannotBeCreatedUpdatedGroupDoesNotExist",
      property: "projectGroupNumber",
    });
  }
  const customer = doc.customerNumber;
  if (group.type !== 1 && (customer === undefined || customer === null)) {
    return openApiError(400, "customerNumber is required when the project group is not Internal.", {
      code: "ProjectCannotBeCreatedUpdatedCustomerNumberRequired",
      property: "customerNumber",
    });
  }
  if (customer !== undefined && customer !== null && !state.customers.has(customer)) {
    return openApiError(400, `Customer ${customer} was not found.`, {
      code: "ProjectCannotBeCreatedUpdatedCustomerNotFound",
      property: "customerNumber",
    });
  }
  return undefined;
}

/** What the server stores: declared, writable properties plus the server's own fields. */
function storedProject(state: SandboxState, body: Json, number: number): Json {
  const { objectVersion: _v, ...input } = stripToSchema(PROJECT_SCHEMA, body) as Json;
  return {
    number,
    isBarred: false,
    isMainProject: false,
    isMileageInvoiced: false,
    ...input,
    isClosed: false,
    objectVersion: nextObjectVersion(state),
    lastUpdated: new Date().toISOString(),
  };
}

function sortedProjects(state: SandboxState): Json[] {
  return [...state.projects.values()].sort((a, b) => a.number - b.number);
}

export function registerProjectRoutes(app: Hono, core: SandboxCore): void {
  app.get(`${P}/projects`, (c) => {
    const filtered = applyFilter(sortedProjects(core.state), c.req.query("filter") ?? null, PROJECT_FILTERS, true);
    if (filtered instanceof Response) return filtered;
    // "The cursor is currently the id of the first item on the next set."
    const cursor = c.req.query("cursor");
    const from = cursor === undefined ? -Infinity : Number(cursor);
    if (Number.isNaN(from)) return openApiError(400, "cursor is not valid.", { code: "InvalidCursor", property: "cursor" });
    const rest = filtered.filter((p) => p.number >= from);
    const items = rest.slice(0, CURSOR_PAGE);
    const next = rest[CURSOR_PAGE];
    return openApiJson(200, { items, ...(next ? { cursor: String(next.number) } : {}) });
  });
  app.get(`${P}/projects/count`, (c) => {
    const filtered = applyFilter(sortedProjects(core.state), c.req.query("filter") ?? null, PROJECT_FILTERS, true);
    return filtered instanceof Response ? filtered : openApiJson(200, filtered.length);
  });
  app.get(`${P}/projects/paged`, (c) => {
    const skip = intSegment(c.req.query("skippages") ?? c.req.query("skipPages") ?? "0");
    const size = intSegment(c.req.query("pagesize") ?? c.req.query("pageSize") ?? "20");
    if (skip === undefined || skip < 0 || size === undefined || size < 1 || size > PAGED_MAX) {
      return openApiError(400, `skippages must be 0 or more and pagesize between 1 and ${PAGED_MAX}.`, { code: "InvalidPaging" });
    }
    const filtered = applyFilter(sortedProjects(core.state), c.req.query("filter") ?? null, PROJECT_FILTERS, true);
    if (filtered instanceof Response) return filtered;
    return openApiJson(200, filtered.slice(0, PAGED_CAP).slice(skip * size, (skip + 1) * size));
  });
  app.post(`${P}/projects`, async (c) => {
    const body = await readProject(c);
    if (body instanceof Response) return body;
    const { projects } = core.state;
    if (body.number !== undefined && projects.has(body.number)) {
      return openApiError(400, `A project with number ${body.number} already exists.`, {
        code: "ProjectCannotBeCreatedUpdatedNumberAlreadyExists",
        property: "number",
      });
    }
    const rule = ruleError(core.state, body);
    if (rule) return rule;
    const number = body.number ?? Math.max(0, ...projects.keys()) + 1;
    projects.set(number, storedProject(core.state, body, number));
    return openApiJson(201, { number }, { location: `${origin(c)}${P}/Projects/${number}` });
  });
  // OpenAPI PUT takes the id from the body and needs the objectVersion of a previous GET.
  app.put(`${P}/projects`, async (c) => {
    const body = await readProject(c);
    if (body instanceof Response) return body;
    if (body.number === undefined)
      return openApiError(400, "number is required to update a project.", { code: "SANDBOX_REQUIRED", property: "number" });
    const existing = core.state.projects.get(body.number);
    if (!existing) return notFound("Project");
    if (typeof body.objectVersion !== "string") {
      return openApiError(400, "objectVersion is required to update a project.", { code: "SANDBOX_REQUIRED", property: "objectVersion" });
    }
    if (body.objectVersion !== existing.objectVersion) {
      return openApiJson(409, {
        message: "Update conflict. Version does not match.",
        developerHint:
          "The resource has been updated by another user. Retrieve the resource/object and try the update again. This is needed in order to prevent you from rolling back another user's update.",
        logId: crypto.randomUUID(),
        logTimeUtc: new Date().toISOString().slice(0, 19),
        property: "version",
      });
    }
    const rule = ruleError(core.state, body);
    if (rule) return rule;
    core.state.projects.set(body.number, storedProject(core.state, body, body.number));
    return new Response(null, { status: 204 });
  });
  app.all(`${P}/projects`, methodNotAllowed);
  app.get(`${P}/projects/:number`, (c) => {
    const p = core.state.projects.get(intSegment(c.req.param("number")) ?? NaN);
    return p ? openApiJson(200, p) : notFound("Project");
  });
  app.delete(`${P}/projects/:number`, (c) =>
    core.state.projects.delete(intSegment(c.req.param("number")) ?? NaN) ? new Response(null, { status: 204 }) : notFound("Project"),
  );
  app.all(`${P}/projects/:number`, methodNotAllowed);

  app.get(`${P}/projectgroups`, () =>
    openApiJson(200, { items: [...core.state.projectGroups.values()].sort((a, b) => a.number - b.number) }),
  );
  app.get(`${P}/projectgroups/:number`, (c) => {
    const g = core.state.projectGroups.get(intSegment(c.req.param("number")) ?? NaN);
    return g ? openApiJson(200, g) : notFound("Project group");
  });
  app.all(`${P}/projectgroups`, methodNotAllowed);
  app.all(`${P}/projectgroups/:number`, methodNotAllowed);
}
