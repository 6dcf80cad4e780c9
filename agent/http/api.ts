// /api/v1: event intake and delivery management, behind a bearer token.
import { Hono, type Context } from "hono";
import { z } from "zod";
import { EventConflict, type Intake, IntakeUnavailable, parseEvents } from "../intake.ts";
import { duplicateKeys } from "../json-keys.ts";
import type { Metrics } from "../metrics.ts";
import { Outbox } from "../outbox.ts";
import { type SqlRunner, sqliteRunner } from "../db/pg/runner.ts";
import { getDelivery, listDeliveries } from "../queries.ts";
import { lazySchema, once } from "../lazy-schema.ts";
import { DELIVERY_STATUSES } from "../states.ts";
import { apiTokenCheck, requireApiToken } from "./auth.ts";
import type { AppContext } from "./context.ts";
import { failedResponse } from "./failure.ts";

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * GET /api/v1/deliveries: validates the query, and describes it in /api/v1/openapi.json. Built on its first request
 * (agent/lazy-schema.ts): the idle agent holds no route's schema.
 */
const deliveriesQuery = once(() =>
  z.object({
    status: z.enum(DELIVERY_STATUSES).optional().describe("Only deliveries in this state."),
    target: z.string().max(40).optional().describe("Only deliveries to this target (its name in kontobro.toml)."),
    limit: z.coerce.number().int().min(1).max(1000).default(100).catch(100).describe("At most this many, newest first."),
    before: z.coerce
      .number()
      .int()
      .min(1)
      .optional()
      .catch(undefined)
      .describe("Only deliveries with a smaller id: the previous answer's next, for the next page."),
  }),
);
export const DeliveriesQuery = lazySchema(deliveriesQuery);

/** What POST /api/v1/events needs: the SQLite agent's one intake, or (hosted mode) the intake of the request's tenant. */
export interface EventsIntakeOptions {
  maxBodyBytes: number;
  metrics: Pick<Metrics, "eventsRejected" | "eventsConflict">;
  /** The intake this request's events go to. */
  intake(c: Context): Intake;
}

/** Where the events route is mounted, as a failed request's log line names it (Hono's routePath for the route). */
export const EVENTS_PATH = "/api/v1/events";

/** A JSON answer as Hono's c.json gives it: the text, the status, Content-Type application/json (and `headers`). */
const JSON_ONLY = { "Content-Type": "application/json" } as const;
const json = (body: unknown, status: number, headers: Record<string, string> = JSON_ONLY) =>
  new Response(JSON.stringify(body), { status, headers });

/**
 * The body, at most `maxBytes` long, or null when it is longer (hono/body-limit's rule: by Content-Length when the
 * request has one and no Transfer-Encoding, else counted while it streams in).
 */
async function bodyWithin(req: Request, maxBytes: number): Promise<ArrayBuffer | Uint8Array | null> {
  const headers = req.headers;
  const length = headers.get("content-length");
  if (length !== null && !headers.has("transfer-encoding")) return Number.parseInt(length, 10) > maxBytes ? null : req.arrayBuffer();
  const stream = req.body;
  if (!stream) return req.arrayBuffer();
  let buffer = new Uint8Array(0);
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const offset = size;
    size += value.length;
    if (size > maxBytes) return null;
    if (size > buffer.length) {
      const grown = new Uint8Array(Math.min(maxBytes, Math.max(size, buffer.length * 2)));
      grown.set(buffer.subarray(0, offset));
      buffer = grown;
    }
    buffer.set(value, offset);
  }
  return buffer.subarray(0, size);
}

/**
 * POST /api/v1/events, framework-free: reads, validates and stores a batch of events into `intake`, and answers with
 * the same contract wherever it is served: the Hono route (eventsRoute: agent/http/app.ts, agent/hosted/app.ts) and the
 * agent's native route in Bun's server (apiNativeRoutes). Authentication is the caller's; a failure other than a
 * conflict or an unavailable database is thrown (Hono's onError, or the native route, answers it with failedResponse).
 */
export function eventsHandler(opts: Omit<EventsIntakeOptions, "intake">): (req: Request, intake: Intake) => Promise<Response> {
  const tooLarge = JSON.stringify({
    error: "body_too_large",
    message: `The request body is larger than ${opts.maxBodyBytes} bytes (http.max_body_bytes, ${(opts.maxBodyBytes / 1024 / 1024).toFixed(1)} MiB); nothing of it was stored.`,
    // A single event this large is an invoice with a large PDF (base64 makes it a third larger): fewer events per request
    // do not help it.
    hint: "Send fewer events per request. If one event alone is this large, its PDF is (base64 adds a third to the PDF's size): make the PDF smaller in the PSA (fewer or smaller images), or raise http.max_body_bytes.",
  });
  return async (req, intake) => {
    const bytes = await bodyWithin(req, opts.maxBodyBytes);
    if (bytes === null) return new Response(tooLarge, { status: 413, headers: JSON_ONLY });
    const type = req.headers.get("content-type") ?? "";
    if (!/^application\/json\b/i.test(type)) {
      return json(
        {
          error: "unsupported_media_type",
          message: `Content-Type must be application/json, not "${type.slice(0, 80)}".`,
          hint: "Send the events as JSON with Content-Type: application/json.",
        },
        415,
      );
    }
    let text: string;
    try {
      text = STRICT_UTF8.decode(bytes);
    } catch {
      opts.metrics.eventsRejected += 1;
      // A PSA that declares its encoding (charset=iso-8859-1, utf-16) is told that is why: JSON is read as UTF-8 only.
      const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1];
      const declared = charset && !/^utf-?8$/i.test(charset) ? ` (the Content-Type says charset=${charset.slice(0, 40)})` : "";
      return json(
        {
          error: "invalid_utf8",
          message: `The body is not valid UTF-8${declared}.`,
          hint: "Encode the JSON as UTF-8 (ø, å and € included): kontobro reads JSON as UTF-8 only (RFC 8259), whatever charset is declared; declare charset=utf-8 or none.",
        },
        400,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      opts.metrics.eventsRejected += 1;
      return json(
        {
          error: "invalid_json",
          message: `The body is not valid JSON: ${(e as Error).message.slice(0, 200)}`,
          hint: "Send one event object or an array of events as UTF-8 JSON.",
        },
        400,
      );
    }
    const parsed = parseEvents(body, duplicateKeys(text));
    if (!parsed.ok) {
      opts.metrics.eventsRejected += Math.max(1, parsed.events.length);
      return json(
        {
          error: parsed.status === 400 ? "bad_request" : "invalid_events",
          message: parsed.message,
          hint: parsed.hint,
          events: parsed.events,
        },
        parsed.status,
      );
    }
    try {
      const results = await intake.submit(parsed.events);
      let accepted = 0;
      let duplicates = 0;
      let stale = 0;
      for (const r of results) {
        if (r.status === "accepted") accepted += 1;
        else if (r.status === "duplicate") duplicates += 1;
        else if (r.status === "stale") stale += 1;
      }
      // Received, duplicate and stale are counted by intake itself (Metrics.countStored), whoever sends.
      return json({ accepted, duplicates, stale, events: results }, 202);
    } catch (e) {
      if (e instanceof EventConflict) {
        opts.metrics.eventsConflict += e.events.length;
        return json({ error: "event_id_conflict", message: e.message, hint: e.hint, events: e.events }, 409);
      }
      if (e instanceof IntakeUnavailable) {
        return json(
          {
            error: "unavailable",
            message: e.message,
            hint: "Send the same events again after the Retry-After delay; repeated ids are stored once.",
          },
          503,
          { "Retry-After": String(e.retryAfterSeconds), "Content-Type": "application/json" },
        );
      }
      throw e;
    }
  };
}

/**
 * POST /events (mounted at /api/v1/events) as a Hono route: eventsHandler on the request's intake. Authentication is
 * the mounter's.
 */
export function eventsRoute(opts: EventsIntakeOptions): Hono {
  const route = new Hono();
  const handle = eventsHandler(opts);
  route.post("/", (c) => handle(c.req.raw, opts.intake(c)));
  return route;
}

export interface DeliveriesOptions {
  /** Where this request's deliveries are read (the SQLite file; a hosted tenant's runner). */
  runner(c: Context): SqlRunner;
  /** The delivery back to pending, and its target's dispatcher woken. */
  retry(c: Context, id: number): Promise<{ ok: boolean; status?: string }>;
  /** Every delivery that needs action (of `target`, or of all) back to pending; how many. */
  retryNeedingAction(c: Context, target: string | undefined): Promise<number>;
}

/**
 * GET /deliveries, GET /deliveries/:id, POST /deliveries/:id/retry and POST /deliveries/retry (every one that needs
 * action, ?target=NAME for one target's: after credentials were fixed) (mounted at /api/v1/deliveries), with the same
 * contract wherever they are mounted (agent/http/app.ts, agent/hosted/app.ts). Authentication is the mounter's.
 */
export function deliveriesRoute(opts: DeliveriesOptions): Hono {
  const route = new Hono();
  route.get("/", async (c) => {
    // An empty parameter counts as absent (?status=&target=).
    const query = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ""));
    const parsed = deliveriesQuery().safeParse(query);
    if (!parsed.success) {
      return c.json(
        {
          error: "bad_request",
          message: `Unknown status "${String(query.status).slice(0, 40)}".`,
          hint: `Use one of ${DELIVERY_STATUSES.join(", ")}.`,
        },
        400,
      );
    }
    const { status, target, limit, before } = parsed.data;
    const rows = await listDeliveries(opts.runner(c), { status, target, limit, beforeId: before });
    return c.json({ deliveries: rows, next: rows.length > 0 ? rows[rows.length - 1]!.id : null });
  });

  const notFound = (c: Context) => c.json({ error: "not_found", message: `No delivery ${c.req.param("id")?.slice(0, 40)}.` }, 404);
  /** The id in the path, or null when it is no delivery id (a number). */
  const idOf = (c: Context) => {
    const id = Number(c.req.param("id"));
    return Number.isSafeInteger(id) && id > 0 ? id : null;
  };

  route.get("/:id", async (c) => {
    const id = idOf(c);
    const row = id === null ? null : await getDelivery(opts.runner(c), id);
    return row ? c.json(row) : notFound(c);
  });

  route.post("/retry", async (c) => {
    const target = c.req.query("target") || undefined;
    const retried = await opts.retryNeedingAction(c, target);
    // A name no delivery has ever gone to (a typo) must not read as "nothing needed action there".
    if (retried === 0 && target && !(await new Outbox(opts.runner(c)).anyDeliveryTo(target)))
      return c.json(
        {
          error: "not_found",
          message: `No delivery has gone to a target named "${target.slice(0, 80)}"; nothing was retried.`,
          hint: "Use the target's name as in kontobro.toml (each delivery in GET /api/v1/deliveries names its target), or leave target out to retry every one that needs action.",
        },
        404,
      );
    return c.json({ retried, ...(target ? { target } : {}) });
  });

  route.post("/:id/retry", async (c) => {
    const id = idOf(c);
    if (id === null) return notFound(c);
    const result = await opts.retry(c, id);
    if (result.ok) return c.json({ id, status: "pending" });
    if (!result.status) return notFound(c);
    return c.json(
      {
        error: "conflict",
        message: `Delivery ${id} is ${result.status} and cannot be retried.`,
        hint: "Only deliveries that need action, wait or are pending can be retried.",
      },
      409,
    );
  });
  return route;
}

export function apiRoutes(ctx: AppContext): Hono {
  const api = new Hono();

  api.use(
    "*",
    requireApiToken(() => ctx.apiToken),
  );

  api.route("/events", eventsRoute({ maxBodyBytes: ctx.maxBodyBytes, metrics: ctx.metrics, intake: () => ctx.intake }));

  api.route(
    "/deliveries",
    deliveriesRoute({
      runner: () => sqliteRunner(ctx.db.$client),
      retry: (_c, id) => ctx.retry(id),
      // The dispatchers find them at their next idle poll, as after `kontobro retry --all`.
      retryNeedingAction: (_c, target) => new Outbox(sqliteRunner(ctx.db.$client)).retryAllNeedingAction(target),
    }),
  );

  return api;
}

/**
 * The routes Bun's server answers itself, before the Hono app (agent/http/listen.ts): POST /api/v1/events, the hot
 * one (issue 16: Hono's routing and middleware were 15% of the main thread per single event). The same API token
 * check and events handler as the app's route, and a failure answered as the app's onError answers it; any other
 * method on the path, and any path Bun does not match exactly, goes to the app as before.
 */
export function apiNativeRoutes(ctx: AppContext): Record<string, { POST: (req: Request) => Promise<Response> }> {
  const check = apiTokenCheck(() => ctx.apiToken);
  const handle = eventsHandler({ maxBodyBytes: ctx.maxBodyBytes, metrics: ctx.metrics });
  const events = async (req: Request): Promise<Response> => {
    const refused = check(req.headers.get("authorization"));
    if (refused) return refused;
    try {
      return await handle(req, ctx.intake);
    } catch (e) {
      // As Hono does: an Error is answered by onError (failedRequest); anything else goes to the server's own handler.
      if (e instanceof Error) return failedResponse(e, EVENTS_PATH);
      throw e;
    }
  };
  return { [EVENTS_PATH]: { POST: events } };
}
