// /api/v1: event intake and delivery management, behind a bearer token.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { EventConflict, type Intake, IntakeUnavailable, parseEvents } from "../intake.ts";
import type { Metrics } from "../metrics.ts";
import { type SqlRunner, sqliteRunner } from "../db/pg/runner.ts";
import { getDelivery, listDeliveries } from "../queries.ts";
import { DELIVERY_STATUSES } from "../states.ts";
import { requireApiToken } from "./auth.ts";
import type { AppContext } from "./context.ts";

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** GET /api/v1/deliveries: validates the query, and describes it in /api/v1/openapi.json. */
export const DeliveriesQuery = z.object({
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
});

/** What POST /api/v1/events needs: the SQLite agent's one intake, or (hosted mode) the intake of the request's tenant. */
export interface EventsIntakeOptions {
  maxBodyBytes: number;
  metrics: Pick<Metrics, "eventsRejected" | "eventsConflict">;
  /** The intake this request's events go to. */
  intake(c: Context): Intake;
}

/**
 * POST /events (mounted at /api/v1/events): reads, validates and stores a batch of events, and answers with the
 * same contract wherever it is mounted (agent/http/app.ts, agent/hosted/app.ts). Authentication is the mounter's.
 */
export function eventsRoute(opts: EventsIntakeOptions): Hono {
  const route = new Hono();
  route.post(
    "/",
    bodyLimit({
      maxSize: opts.maxBodyBytes,
      onError: (c) =>
        c.json(
          {
            error: "body_too_large",
            message: `The request body is larger than ${opts.maxBodyBytes} bytes.`,
            hint: "Send fewer events per request, or raise http.max_body_bytes.",
          },
          413,
        ),
    }),
    async (c) => {
      const type = c.req.header("content-type") ?? "";
      if (!/^application\/json\b/i.test(type)) {
        return c.json(
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
        text = STRICT_UTF8.decode(await c.req.arrayBuffer());
      } catch {
        opts.metrics.eventsRejected += 1;
        return c.json(
          { error: "invalid_utf8", message: "The body is not valid UTF-8.", hint: "Encode the JSON as UTF-8 (ø, å and € included)." },
          400,
        );
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (e) {
        opts.metrics.eventsRejected += 1;
        return c.json(
          {
            error: "invalid_json",
            message: `The body is not valid JSON: ${(e as Error).message.slice(0, 200)}`,
            hint: "Send one event object or an array of events as UTF-8 JSON.",
          },
          400,
        );
      }
      const parsed = parseEvents(body);
      if (!parsed.ok) {
        opts.metrics.eventsRejected += Math.max(1, parsed.events.length);
        return c.json(
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
        const results = await opts.intake(c).submit(parsed.events);
        const count = (status: string) => results.filter((r) => r.status === status).length;
        const accepted = count("accepted");
        // Received, duplicate and stale are counted by intake itself (Metrics.countStored), whoever sends.
        return c.json({ accepted, duplicates: count("duplicate"), stale: count("stale"), events: results }, 202);
      } catch (e) {
        if (e instanceof EventConflict) {
          opts.metrics.eventsConflict += e.events.length;
          return c.json({ error: "event_id_conflict", message: e.message, hint: e.hint, events: e.events }, 409);
        }
        if (e instanceof IntakeUnavailable) {
          c.header("Retry-After", String(e.retryAfterSeconds));
          return c.json(
            {
              error: "unavailable",
              message: e.message,
              hint: "Send the same events again after the Retry-After delay; repeated ids are stored once.",
            },
            503,
          );
        }
        throw e;
      }
    },
  );
  return route;
}

export interface DeliveriesOptions {
  /** Where this request's deliveries are read (the SQLite file; a hosted tenant's runner). */
  runner(c: Context): SqlRunner;
  /** The delivery back to pending, and its target's dispatcher woken. */
  retry(c: Context, id: number): Promise<{ ok: boolean; status?: string }>;
}

/**
 * GET /deliveries, GET /deliveries/:id and POST /deliveries/:id/retry (mounted at /api/v1/deliveries), with the same
 * contract wherever they are mounted (agent/http/app.ts, agent/hosted/app.ts). Authentication is the mounter's.
 */
export function deliveriesRoute(opts: DeliveriesOptions): Hono {
  const route = new Hono();
  route.get("/", async (c) => {
    // An empty parameter counts as absent (?status=&target=).
    const query = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ""));
    const parsed = DeliveriesQuery.safeParse(query);
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

  api.route("/deliveries", deliveriesRoute({ runner: () => sqliteRunner(ctx.db.$client), retry: (_c, id) => ctx.retry(id) }));

  return api;
}
