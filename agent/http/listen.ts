// The HTTP server of a running agent or hosted worker: Bun's server on [http] host and port, answering with the app.
import type { Hono } from "hono";
import type { AgentConfig } from "../config.ts";

/** Routes Bun's server answers itself, by exact path and method, before the app (agent/http/api.ts apiNativeRoutes). */
export type NativeRoutes = Record<string, { POST: (req: Request) => Response | Promise<Response> }>;

/**
 * Listens on [http] host and port. Throws an Error saying what to do when the port cannot be taken (`advice` adds a
 * sentence for the caller's case). `routes` are answered before the app; whatever they do not match goes to it.
 */
export function listen(
  app: Pick<Hono, "fetch">,
  http: AgentConfig["http"],
  advice = "",
  routes: NativeRoutes = {},
): ReturnType<typeof Bun.serve> {
  try {
    return Bun.serve({
      hostname: http.host,
      port: http.port,
      routes,
      fetch: app.fetch,
      // The app enforces http.max_body_bytes itself (by Content-Length, or while streaming) so that a too-large body
      // gets a 413 that says what to do; Bun's own cap would answer with an empty body.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      error: () =>
        new Response(JSON.stringify({ error: "internal_error", message: "Request failed." }), {
          status: 500,
          headers: { "content-type": "application/json" },
        }),
    });
  } catch (e) {
    throw new Error(
      `Cannot listen on ${http.host}:${http.port}: ${(e as Error).message}. Is another program using the port? Change http.port in kontobro.toml${advice}.`,
    );
  }
}
