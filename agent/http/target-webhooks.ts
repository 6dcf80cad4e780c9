// /webhooks/<kind>/<token> (on a hosted worker /t/<slug>/webhooks/<kind>/<token>, the tenant's): a target's webhook,
// taken as a hint to pull the relevant stream soon, on the worker that got it. The token is compared in constant time
// with every target's token; a wrong one gets a 401 that says nothing about why. Bodies are small and size-limited;
// the data itself is always fetched by the pull.
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { once } from "../lazy-schema.ts";
import { issuesToProblems } from "../problem.ts";
import type { PullsRuntime, WebhookTarget } from "../pulls/index.ts";
import { sameSecret } from "./auth.ts";
import type { AppContext } from "./context.ts";

/**
 * Query parameters (URL-template merge fields such as invoice=[INVOICENO]) and flat JSON body fields. Built with the
 * first webhook (agent/lazy-schema.ts).
 */
const hintParamsSchema = once(() =>
  z
    .record(
      z.string().max(50, { error: "parameter names must be at most 50 characters" }),
      z.string().max(200, { error: "parameter values must be at most 200 characters" }),
    )
    .refine((p) => Object.keys(p).length <= 30, { error: "at most 30 parameters" }),
);

const unauthorized = (c: Context) =>
  c.json(
    {
      error: "unauthorized",
      message: "Unauthorized.",
      hint: "Give the target the webhook URL kontobro lists for it: `kontobro check`, or GET /api/v1/pulls (webhooks) with the API token.",
    },
    401,
  );

/** The target this token belongs to. Every token is compared, so the time taken does not depend on which matched. */
export function matchToken(webhooks: WebhookTarget[], kind: string, given: string): WebhookTarget | undefined {
  let found: WebhookTarget | undefined;
  for (const w of webhooks) if (sameSecret(given, w.token) && w.kind === kind) found = w;
  return found;
}

async function hintParams(c: Context): Promise<Record<string, unknown>> {
  const params: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c.req.queries())) params[k.toLowerCase()] = v[v.length - 1];
  if (c.req.method === "POST" && /json/i.test(c.req.header("content-type") ?? "")) {
    const body = await c.req.json().catch(() => undefined);
    if (body && typeof body === "object" && !Array.isArray(body)) {
      for (const [k, v] of Object.entries(body)) if (typeof v === "string" || typeof v === "number") params[k.toLowerCase()] ??= String(v);
    }
  }
  return params;
}

export function targetWebhookRoutes(ctx: AppContext) {
  return webhookRoutes({ pulls: () => ctx.pulls, maxBodyBytes: ctx.pulls?.maxWebhookBodyBytes ?? 65_536 });
}

/** The webhook routes of the pulls `pulls(c)` gives for a request: the agent's, or on a hosted worker the tenant's. */
export function webhookRoutes(opts: { pulls: (c: Context<any>) => PullsRuntime | undefined; maxBodyBytes: number }) {
  const hooks = new Hono<{ Variables: { target: WebhookTarget; hooked: PullsRuntime } }>();
  const limit = bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: (c) => c.json({ error: "body_too_large", message: "The webhook body is too large." }, 413),
  });

  hooks.on(
    ["GET", "POST"],
    "/:kind/:token",
    async (c, next) => {
      // Authenticate before reading any body.
      const pulls = opts.pulls(c);
      const target = pulls ? matchToken(pulls.webhooks, c.req.param("kind"), c.req.param("token")) : undefined;
      if (!pulls || !target) return unauthorized(c);
      c.set("target", target);
      c.set("hooked", pulls);
      await next();
    },
    limit,
    async (c) => {
      const target = c.get("target");
      const parsed = hintParamsSchema().safeParse(await hintParams(c));
      if (!parsed.success) {
        const [p] = issuesToProblems(parsed.error.issues, { hint: "Use the URL-template parameters shown on the status page." });
        return c.json({ error: "bad_request", message: p!.message, hint: p!.hint }, 400);
      }
      const streams = target.streamsFor(parsed.data).filter((s) => c.get("hooked").scheduler.hint(target.name, s));
      return c.json({ accepted: true, target: target.name, pulls: streams }, 202);
    },
  );
  return hooks;
}
