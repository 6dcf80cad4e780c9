// The HTTP server of a running agent or hosted worker: Bun's server on [http] host and port, answering with the app.
import type { Hono } from "hono";
import type { AgentConfig } from "../config.ts";

/**
 * Listens on [http] host and port. Throws an Error saying what to do when the port cannot be taken (`advice` adds a
 * sentence for the caller's case).
 */
export function listen(app: Hono, http: AgentConfig["http"], advice = ""): ReturnType<typeof Bun.serve> {
  try {
    return Bun.serve({
      hostname: http.host,
      port: http.port,
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
