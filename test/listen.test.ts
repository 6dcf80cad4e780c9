// The agent's and the hosted worker's HTTP server (agent/http/listen.ts): a port already taken is refused with what to
// do, and a request the app fails on gets a JSON 500, not Bun's HTML page.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { AgentConfig } from "../agent/config.ts";
import { listen } from "../agent/http/listen.ts";

const httpOn = (port: number) => AgentConfig.parse({ http: { host: "127.0.0.1", port } }).http;

test("a port another program holds is refused, saying how to fix it", () => {
  const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("other") });
  try {
    expect(() => listen(new Hono(), httpOn(other.port!), " (each worker on one machine needs its own)")).toThrow(
      `Cannot listen on 127.0.0.1:${other.port}`,
    );
    expect(() => listen(new Hono(), httpOn(other.port!), " (each worker on one machine needs its own)")).toThrow(
      "Change http.port in kontobro.toml (each worker on one machine needs its own).",
    );
  } finally {
    other.stop(true);
  }
});

test("a request the app throws on gets a JSON 500", async () => {
  // Hono answers an error of a route itself; this is the server's last resort for what escapes the app.
  const raw = { fetch: () => Promise.reject(new Error("escaped")) } as unknown as Hono;
  const server = listen(raw, httpOn(0));
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "internal_error", message: "Request failed." });
  } finally {
    server.stop(true);
  }
});
