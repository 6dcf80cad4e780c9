// /api/v1/exports: run exports, download files again, change invoices' export status, manage and test
// templates. Behind the bearer token: the agent's (SQLite), or a tenant's on a hosted worker, where the routes run on
// that tenant's runner with its [exports] settings. Every refusal is {error, message, hint, problems[]}.
import { Hono, type Context } from "hono";
import { z } from "zod";
import { lazySchema, once } from "../lazy-schema.ts";
import { parseTemplate, type Template, templateFileName, templateFromFile, templateToFile } from "../../formats/templates/definition.ts";
import { DATA_TYPES, DATA_TYPE_TITLES, FIELDS, SELECTION } from "../../formats/templates/fields.ts";
import type { Db } from "../db/index.ts";
import { sqliteRunner, type SqlRunner } from "../db/pg/runner.ts";
import { exportSettings, type ExportSettings } from "../exports/config.ts";
import { previewTemplate } from "../exports/preview.ts";
import { runExport } from "../exports/service.ts";
import { changeExportStatus, EXPORT_STATUSES, invoiceStatus, listInvoiceStatuses, statusCounts } from "../exports/status.ts";
import { getFile, getFileBytes, getRun, invoicesOfFile, listFiles, listRuns, prunedFileProblem } from "../exports/store.ts";
import { deleteTemplate, findTemplate, listTemplates, saveTemplate } from "../exports/templates-store.ts";
import { issuesToProblems, type Problem } from "../problem.ts";
import type { WorkBoard } from "../running-work.ts";
import { requireApiToken } from "./auth.ts";
import type { AppContext } from "./context.ts";

const date = once(() => z.iso.date({ error: "must be a date like 2026-03-31" }));
const numberish = once(() => z.union([z.string(), z.number()], { error: "must be an invoice number" }).transform(String));
/** Also described in /api/v1/openapi.json (agent/http/openapi.ts). */
export const RunBody = lazySchema(
  once(() =>
    z
      .strictObject({
        format: z.enum(["sie4", "template"], { error: 'must be "sie4" or "template"' }).optional(),
        template: z.string().min(1).max(60).optional(),
        from: date().optional(),
        to: date().optional(),
      })
      .refine((b) => (b.format === "sie4") !== (b.template !== undefined), {
        error: 'send {"format": "sie4"} or {"template": "NAME"}, with optional "from" and "to" dates',
        path: ["format"],
      })
      .transform((b) =>
        b.template !== undefined
          ? { format: "template" as const, template: b.template, from: b.from, to: b.to }
          : { format: "sie4" as const, from: b.from, to: b.to },
      ),
  ),
);
/** Also described in /api/v1/openapi.json (agent/http/openapi.ts). */
export const StatusBody = lazySchema(
  once(() =>
    z
      .strictObject({
        number: numberish().optional(),
        from: numberish().optional(),
        to: numberish().optional(),
        status: z.enum(EXPORT_STATUSES, { error: `must be one of ${EXPORT_STATUSES.join(", ")}` }),
        skipInvalid: z.boolean().optional(),
      })
      .refine(
        (b) => (b.number !== undefined) !== (b.from !== undefined && b.to !== undefined) && (b.from === undefined) === (b.to === undefined),
        {
          error: 'give either "number", or both "from" and "to" (a range of invoice numbers)',
          path: ["number"],
        },
      ),
  ),
);
/** Also described in /api/v1/openapi.json (agent/http/openapi.ts). */
export const PreviewBody = lazySchema(
  once(() =>
    z.strictObject({
      from: date().optional(),
      to: date().optional(),
      rows: z.number().int().min(1).max(200).optional(),
      template: z.unknown().optional(),
    }),
  ),
);

function refuse(c: Context, status: 400 | 404 | 409 | 422, problems: Problem[], error?: string) {
  const first = problems[0];
  return c.json(
    {
      error: error ?? ({ 400: "bad_request", 404: "not_found", 409: "conflict", 422: "invalid" } as const)[status],
      message: first?.message ?? "Refused.",
      hint: first?.hint,
      problems,
    },
    status,
  );
}

async function jsonBody(c: Context): Promise<{ ok: true; body: unknown } | { ok: false; response: Response }> {
  if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) {
    return {
      ok: false,
      response: c.json(
        { error: "unsupported_media_type", message: "Content-Type must be application/json.", hint: "Send the request body as JSON." },
        415,
      ),
    };
  }
  try {
    return { ok: true, body: JSON.parse(await c.req.text()) };
  } catch (e) {
    return {
      ok: false,
      response: c.json(
        {
          error: "invalid_json",
          message: `The body is not valid JSON: ${(e as Error).message.slice(0, 200)}`,
          hint: "Send a JSON object.",
        },
        400,
      ),
    };
  }
}

const attachment = (c: Context, name: string, bytes: Uint8Array, type: string) => {
  c.header("Content-Type", type);
  c.header("Content-Disposition", `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, "_")}"`);
  return c.body(bytes as Uint8Array<ArrayBuffer>);
};

/** The SQLite agent's exports API, behind its API token. */
export function exportsRoutes(ctx: AppContext): Hono {
  const api = new Hono();
  api.use(
    "*",
    requireApiToken(() => ctx.apiToken),
  );
  const runner = sqliteRunner(ctx.db.$client);
  api.route("/", exportsApi({ runner: () => runner, settings: () => ctx.exports?.settings ?? exportSettings(), progressIn: ctx.db }));
  return api;
}

/** Where the exports API finds the request's tenant (the caller has checked its token). */
export interface ExportsApiContext {
  runner(c: Context): SqlRunner;
  settings(c: Context): ExportSettings;
  /** SQLite: the data directory's database, where progress files show an export to other processes; null on PostgreSQL. */
  progressIn: Db | null;
  /** A hosted tenant: the board its exports report progress to, for every worker to show (its running_work rows). */
  work?(c: Context): WorkBoard | null;
  /** The clock of the output folder's delivery claim: the database's on a hosted worker (Worker.now); Date.now when absent. */
  clock?(c: Context): () => number;
}

/** The routes, on the tenant `ctx` finds for each request. */
export function exportsApi(ctx: ExportsApiContext): Hono<any> {
  const api = new Hono<any>();
  const db = (c: Context) => ctx.runner(c);
  const settings = (c: Context) => ctx.settings(c);

  api.post("/runs", async (c) => {
    const body = await jsonBody(c);
    if (!body.ok) return body.response;
    const parsed = RunBody.safeParse(body.body);
    if (!parsed.success) return refuse(c, 422, issuesToProblems(parsed.error.issues));
    const r = await runExport(db(c), settings(c), parsed.data, {
      by: "api",
      progressIn: ctx.work?.(c) ?? ctx.progressIn,
      ...(ctx.clock ? { clock: ctx.clock(c) } : {}),
    });
    if (!r.ok) return refuse(c, r.httpStatus, r.problems);
    return c.json(
      { ...r, files: r.files.map((f) => ({ ...f, download: `/api/v1/exports/files/${f.id}/download` })) },
      r.files.length > 0 ? 201 : 200,
    );
  });
  api.get("/runs", async (c) => {
    const runs = [];
    for (const r of await listRuns(db(c), Number(c.req.query("limit") ?? 50) || 50))
      runs.push({ ...r, files: await listFiles(db(c), { runId: r.id }) });
    return c.json({ runs });
  });
  api.get("/runs/:id", async (c) => {
    const run = await getRun(db(c), Number(c.req.param("id")));
    return run
      ? c.json({ ...run, files: await listFiles(db(c), { runId: run.id }) })
      : c.json({ error: "not_found", message: `No export ${c.req.param("id")}.` }, 404);
  });

  api.get("/files", async (c) => {
    const before = c.req.query("before");
    const files = await listFiles(db(c), {
      limit: Number(c.req.query("limit") ?? 100) || 100,
      beforeId: before ? Number(before) : undefined,
    });
    return c.json({
      files: files.map((f) => ({ ...f, download: `/api/v1/exports/files/${f.id}/download` })),
      next: files.length > 0 ? files[files.length - 1]!.id : null,
    });
  });
  api.get("/files/:id", async (c) => {
    const f = await getFile(db(c), Number(c.req.param("id")));
    if (!f)
      return c.json(
        { error: "not_found", message: `No export file ${c.req.param("id")}.`, hint: "List the files with GET /api/v1/exports/files." },
        404,
      );
    return c.json({
      ...f,
      invoices: await invoicesOfFile(db(c), f.id),
      warnings: (await getRun(db(c), f.runId))?.warnings ?? [],
      download: `/api/v1/exports/files/${f.id}/download`,
    });
  });
  api.get("/files/:id/download", async (c) => {
    const f = await getFileBytes(db(c), Number(c.req.param("id")));
    if (!f)
      return c.json(
        { error: "not_found", message: `No export file ${c.req.param("id")}.`, hint: "List the files with GET /api/v1/exports/files." },
        404,
      );
    if (f.pruned) return c.json({ error: "gone", ...prunedFileProblem(f, Number(c.req.param("id"))) }, 410);
    return attachment(c, f.fileName, f.bytes, "application/octet-stream");
  });

  api.get("/invoices", async (c) => {
    const status = c.req.query("status");
    if (status && !(EXPORT_STATUSES as readonly string[]).includes(status)) {
      return c.json(
        {
          error: "bad_request",
          message: `Unknown export status "${status.slice(0, 40)}".`,
          hint: `Use one of ${EXPORT_STATUSES.join(", ")}.`,
        },
        400,
      );
    }
    return c.json({
      counts: await statusCounts(db(c)),
      invoices: await listInvoiceStatuses(db(c), {
        status: status as any,
        limit: Number(c.req.query("limit") ?? 100) || 100,
        offset: Number(c.req.query("offset") ?? 0) || 0,
      }),
    });
  });
  api.get("/invoices/:number", async (c) => {
    const row = await invoiceStatus(db(c), c.req.param("number"));
    return row ? c.json(row) : c.json({ error: "not_found", message: `No invoice ${c.req.param("number")}.` }, 404);
  });
  api.post("/invoices/status", async (c) => {
    const body = await jsonBody(c);
    if (!body.ok) return body.response;
    const parsed = StatusBody.safeParse(body.body);
    if (!parsed.success) return refuse(c, 422, issuesToProblems(parsed.error.issues));
    const { status, skipInvalid, number, from, to } = parsed.data;
    const r = await changeExportStatus(db(c), number !== undefined ? { number } : { from: from!, to: to! }, status, "api", { skipInvalid });
    return r.ok ? c.json(r) : refuse(c, r.httpStatus, r.problems);
  });

  api.get("/data-types", (c) =>
    c.json({ dataTypes: DATA_TYPES.map((d) => ({ name: d, title: DATA_TYPE_TITLES[d], selection: SELECTION[d], fields: FIELDS[d] })) }),
  );
  api.get("/templates", async (c) => c.json({ templates: await listTemplates(db(c)) }));
  api.post("/templates/test", async (c) => {
    const body = await jsonBody(c);
    if (!body.ok) return body.response;
    const parsed = PreviewBody.safeParse(body.body);
    if (!parsed.success) return refuse(c, 422, issuesToProblems(parsed.error.issues));
    const t = parseTemplate(parsed.data.template);
    if (!t.ok)
      return refuse(
        c,
        422,
        t.problems.map((p) => ({ ...p, field: `template.${p.field ?? ""}`.replace(/\.$/, "") })),
      );
    const r = await previewTemplate(db(c), settings(c), t.template, parsed.data);
    return r.ok ? c.json(r) : refuse(c, r.httpStatus, r.problems);
  });
  api.post("/templates/import", async (c) => {
    const r = templateFromFile(await c.req.text());
    if (!r.ok) return refuse(c, 422, r.problems);
    const saved = await saveTemplate(db(c), r.template, { replace: c.req.query("replace") === "true" });
    return saved.ok
      ? c.json({ name: saved.template.name, created: saved.created }, saved.created ? 201 : 200)
      : refuse(c, saved.httpStatus, saved.problems);
  });
  api.get("/templates/:name", async (c) => {
    const r = await findTemplate(db(c), c.req.param("name"));
    if (r.ok) return c.json({ ...r.template, builtin: r.builtin });
    // A saved template that needs fixing is shown as stored, with what is wrong, so it can be fixed.
    return r.stored ? c.json({ ...r.stored, builtin: false, problems: r.problems }) : refuse(c, r.httpStatus, r.problems);
  });
  api.put("/templates/:name", async (c) => {
    const body = await jsonBody(c);
    if (!body.ok) return body.response;
    const input = { ...(body.body as object), name: c.req.param("name") };
    const saved = await saveTemplate(db(c), input, { replace: true });
    return saved.ok ? c.json(saved.template, saved.created ? 201 : 200) : refuse(c, saved.httpStatus, saved.problems);
  });
  api.delete("/templates/:name", async (c) => {
    const r = await deleteTemplate(db(c), c.req.param("name"));
    return r.ok ? c.body(null, 204) : refuse(c, r.httpStatus, r.problems);
  });
  api.get("/templates/:name/file", async (c) => {
    const r = await findTemplate(db(c), c.req.param("name"));
    if (!r.ok && !r.stored) return refuse(c, r.httpStatus, r.problems);
    // A saved template that needs fixing is downloaded as stored, to be fixed and imported again.
    const t = r.ok ? r.template : (r.stored as Template);
    return attachment(
      c,
      templateFileName(c.req.param("name")),
      new TextEncoder().encode(templateToFile(t)),
      "application/json; charset=utf-8",
    );
  });
  api.post("/templates/:name/test", async (c) => {
    const found = await findTemplate(db(c), c.req.param("name"));
    if (!found.ok) return refuse(c, found.httpStatus, found.problems);
    let request: z.infer<typeof PreviewBody> = {};
    if ((c.req.header("content-length") ?? "0") !== "0") {
      const body = await jsonBody(c);
      if (!body.ok) return body.response;
      const parsed = PreviewBody.safeParse(body.body ?? {});
      if (!parsed.success) return refuse(c, 422, issuesToProblems(parsed.error.issues));
      request = parsed.data;
    }
    const r = await previewTemplate(db(c), settings(c), found.template, request);
    return r.ok ? c.json(r) : refuse(c, r.httpStatus, r.problems);
  });
  return api;
}
