// How both HTTP apps (the agent's, agent/http/app.ts, and the hosted worker's, agent/hosted/app.ts) answer a route
// they do not have and a request that failed inside kontobro.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { postgresTrouble } from "../intake.ts";
import { redact } from "../log.ts";

export const noRoute = (c: Context) => c.json({ error: "not_found", message: `No route ${c.req.method} ${c.req.path}.` }, 404);

export function failedRequest(e: Error, c: Context) {
  // Hono's own middleware (bearer auth) answers by throwing its response.
  if (e instanceof HTTPException) return e.getResponse();
  return failedResponse(e, c.req.routePath);
}

/**
 * The answer to a request that failed inside kontobro on `route` (logged), framework-free: Hono's onError above and
 * the agent's native route for event intake (agent/http/api.ts) answer alike.
 */
export function failedResponse(e: Error, route: string): Response {
  // Through the redactor: a webhook path carries its token.
  console.error(JSON.stringify(redact({ level: "error", msg: "request failed", route, error: e.message })));
  // The database down, restarting or out of connections (hosted mode): it passes, so the caller sends again.
  const passing = postgresTrouble(e);
  if (passing) {
    return Response.json(
      { error: "storage_unavailable", message: passing, hint: "Send the request again in a few seconds." },
      { status: 503, headers: { "Retry-After": "2", "Content-Type": "application/json" } },
    );
  }
  return Response.json(
    {
      error: "internal_error",
      message: "Something went wrong inside kontobro; nothing partial was stored.",
      hint: "Try again; if it persists, send the log to support.",
    },
    { status: 500, headers: { "Content-Type": "application/json" } },
  );
}
