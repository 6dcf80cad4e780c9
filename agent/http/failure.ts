// How both HTTP apps (the agent's, agent/http/app.ts, and the hosted worker's, agent/hosted/app.ts) answer a route
// they do not have and a request that failed inside kontobro.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { storageTrouble } from "../db/storage-trouble.ts";
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
  // The database full, read-only, damaged or failing (SQLite): no bug to report; what to fix, and nothing was stored.
  const trouble = storageTrouble(e);
  if (trouble) {
    return Response.json(
      {
        error: "storage_unwritable",
        message: `kontobro cannot write its database (${e.message}); nothing was stored.`,
        hint:
          trouble === "damaged"
            ? "The database must be restored from a backup (kontobro restore); see the status page and /readyz."
            : "Free disk space on the kontobro server (or fix the data directory's permissions, or the disk the system log blames), then try again.",
      },
      { status: 503, headers: { "Retry-After": "30", "Content-Type": "application/json" } },
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
