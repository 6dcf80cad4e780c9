// /api/v1/inbox (the feed of pulled items) and /api/v1/pulls (jobs, "run now", the targets' webhook URLs), behind the
// bearer token: the agent's (SQLite), or on a hosted worker the tenant's API token, with that tenant's pulls
// (agent/hosted/app.ts mounts the same routes).
import { Hono, type Context } from "hono";
import { z } from "zod";
import { connectorKinds } from "../../connectors/registry.ts";
import { lazySchema, once } from "../lazy-schema.ts";
import { issuesToProblems } from "../problem.ts";
import type { PullsRuntime } from "../pulls/index.ts";
import { toInboxItem } from "../pulls/inbox.ts";
import { recentRuns } from "../pulls/runner.ts";
import { requireApiToken } from "./auth.ts";
import type { AppContext } from "./context.ts";

/** Whose pulls a request reads: the agent's, or (hosted) those of the request's tenant on this worker. */
export interface PullsSource {
  pulls(c: Context<any>): PullsRuntime | undefined;
  /** Where the targets' webhooks are served: "/webhooks", or "/t/<slug>/webhooks" on a hosted worker. */
  webhookBase(c: Context<any>): string;
}

/** The agent's own pulls (SQLite), behind its API token. */
const agentPulls = (ctx: AppContext): PullsSource => ({ pulls: () => ctx.pulls, webhookBase: () => "/webhooks" });

/** Also described in /api/v1/openapi.json (agent/http/openapi.ts). Built on its first request (agent/lazy-schema.ts). */
const feedQuery = once(() =>
  z.object({
    after: z
      .string()
      .regex(/^\d{1,16}$/, { error: "must be the cursor from an earlier answer's next (digits), or 0 to start" })
      .refine((v) => Number.isSafeInteger(Number(v)), { error: "must be the cursor from an earlier answer's next" })
      .default("0"),
    limit: z.coerce
      .number({ error: "must be a number" })
      .int()
      .min(1, { error: "must be at least 1" })
      .max(1000, { error: "must be at most 1000" })
      .default(100),
    target: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, { error: "must be a target name from kontobro.toml" })
      .optional(),
  }),
);
export const FeedQuery = lazySchema(feedQuery);

function badQuery(c: Context, error: z.ZodError) {
  const [p] = issuesToProblems(error.issues, {
    hint: "GET /api/v1/inbox?after=CURSOR&limit=N, where CURSOR is the next value of the previous answer (0 at the start).",
  });
  return c.json({ error: "bad_request", message: p!.message, field: p!.field ?? "", hint: p!.hint }, 400);
}

/**
 * The feed: deliverable items in the order they became deliverable, after a cursor. Asking for items after X
 * acknowledges everything up to X: those items count as delivered (state "delivered", via "feed").
 * `next` is the cursor for the following call; it stays the same when nothing new has arrived. Items kept as
 * "ignored: project unknown" are not in it (they enter it, once, when their project arrives): they are listed
 * at /ignored, which acknowledges nothing and moves no cursor.
 */
export function inboxRoutes(ctx: AppContext): Hono {
  const api = new Hono();
  api.use(
    "*",
    requireApiToken(() => ctx.apiToken),
  );
  api.route("/", inboxFeedRoutes(agentPulls(ctx)));
  return api;
}

/** The inbox routes without authentication: the caller has checked the token (the agent's, or a tenant's). */
export function inboxFeedRoutes(source: PullsSource): Hono<any> {
  const api = new Hono<any>();
  api.get("/", async (c) => {
    const pulls = source.pulls(c);
    if (!pulls) return c.json({ items: [], next: "0", more: false });
    const parsed = feedQuery().safeParse(c.req.query());
    if (!parsed.success) return badQuery(c, parsed.error);
    const after = Number(parsed.data.after);
    // A cursor beyond the newest item (a restored backup, a reinstall) would silently acknowledge items
    // the PSA never saw: refuse it and say how to start over.
    const lastSeq = await pulls.inbox.lastSeq();
    if (after > lastSeq) {
      return c.json(
        {
          error: "cursor_ahead",
          message: `The cursor ${after} is beyond the newest item (${lastSeq}); this agent's inbox was restored or reinstalled.`,
          hint: "Start the feed again with after=0; items the PSA already has carry the same id and can be skipped.",
        },
        409,
      );
    }
    if (after > 0) await pulls.inbox.acknowledge(after, parsed.data.target);
    const { rows, more } = await pulls.inbox.feed({ after, limit: parsed.data.limit, target: parsed.data.target });
    const items = rows.map((r) => toInboxItem(r, { href: `/api/v1/inbox/${r.id}/attachment` }));
    return c.json({ items, next: String(rows.length > 0 ? rows[rows.length - 1]!.seq : after), more });
  });

  api.get("/ignored", async (c) => {
    const pulls = source.pulls(c);
    if (!pulls) return c.json({ items: [], next: "0", more: false });
    const parsed = feedQuery().safeParse(c.req.query());
    if (!parsed.success) return badQuery(c, parsed.error);
    const after = Number(parsed.data.after);
    const { rows, more } = await pulls.inbox.ignored({ after, limit: parsed.data.limit, target: parsed.data.target });
    const items = rows.map((r) => toInboxItem(r, { href: `/api/v1/inbox/${r.id}/attachment` }));
    return c.json({ items, next: String(rows.length > 0 ? rows[rows.length - 1]!.seq : after), more });
  });

  api.get("/:id/attachment", async (c) => {
    const id = Number(c.req.param("id"));
    const a = Number.isInteger(id) ? await source.pulls(c)?.inbox.attachment(id) : null;
    if (!a) return c.json({ error: "not_found", message: `Inbox item ${c.req.param("id").slice(0, 20)} has no attachment.` }, 404);
    return new Response(a.bytes, {
      headers: { "content-type": a.type, "content-disposition": `attachment; filename="${a.name.replace(/["\\\r\n]/g, "_")}"` },
    });
  });
  return api;
}

/**
 * GET /api/v1/pulls: the jobs and their recent runs, and the URLs (paths on this server) to give each target's webhooks;
 * POST /api/v1/pulls/:target/:stream: run one now and wait.
 */
export function pullsApiRoutes(ctx: AppContext): Hono {
  const api = new Hono();
  api.use(
    "*",
    requireApiToken(() => ctx.apiToken),
  );
  api.route("/", pullsRoutes(agentPulls(ctx)));
  return api;
}

/** The pulls routes without authentication: the caller has checked the token (the agent's, or a tenant's). */
export function pullsRoutes(source: PullsSource): Hono<any> {
  const api = new Hono<any>();
  api.get("/", async (c) => {
    const pulls = source.pulls(c);
    const jobs = pulls?.scheduler.describe() ?? [];
    const described = [];
    for (const j of jobs)
      described.push({ ...j, next: j.next?.toISOString() ?? null, runs: await recentRuns(pulls!.storage, j.target, j.stream, 10) });
    const webhooks = (pulls?.webhooks ?? []).map((w) => ({
      target: w.name,
      kind: w.kind,
      paths: (connectorKinds[w.kind]?.webhookTemplates ?? [""]).map((t) => `${source.webhookBase(c)}/${w.kind}/${w.token}${t}`),
    }));
    c.header("Cache-Control", "no-store");
    return c.json({ jobs: described, webhooks });
  });

  api.post("/:target/:stream", async (c) => {
    const { target, stream } = c.req.param();
    const result = await (source.pulls(c)?.runNow(target, stream, "manual") ?? Promise.resolve({ status: "unknown_job" as const }));
    if (result.status === "unknown_job") {
      return c.json(
        {
          error: "not_found",
          message: `No pull job ${target.slice(0, 40)}/${stream.slice(0, 40)}.`,
          hint: "GET /api/v1/pulls lists the jobs; streams come from the targets in kontobro.toml.",
        },
        404,
      );
    }
    if (result.status === "busy")
      return c.json(
        {
          error: "busy",
          message: `A pull of ${target}/${stream} is already running.`,
          hint: "Wait for it to finish; its result shows on the status page.",
        },
        409,
      );
    return c.json(result, result.status === "ok" ? 200 : 502);
  });
  return api;
}
