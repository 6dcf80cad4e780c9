// A hosted worker's connections end a transaction idle longer than dead_after / 2 (idle_in_transaction_session_timeout,
// agent/hosted/worker.ts): a worker stalled in the middle of an intake (paused, swapped out, starved of CPU) finds its
// transaction ended by the server when it wakes. Nothing of it was stored, and the PSA is to send again: 503 with
// Retry-After, as when the database is restarting, not 500 "something went wrong inside kontobro" (seen under the
// chaos test's stalls). Real parts: a real PostgreSQL server (test/pg-server.ts) and Bun's client as a worker opens it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { failedResponse } from "../agent/http/failure.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`a transaction ended by the server's idle timeout skipped: ${unavailable}`);

let server: PgServer;
beforeAll(async () => {
  if (!unavailable) server = await startPgServer();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe.skipIf(!!unavailable)("a transaction the server ended for idling", () => {
  test("is answered 503 with Retry-After (send again), not 500", async () => {
    const client = new SQL({ url: server.url, max: 1, connection: { idle_in_transaction_session_timeout: 200 } });
    const ended = await client
      .begin(async (tx) => {
        await tx`SELECT 1`;
        await Bun.sleep(800); // the worker stalls inside its transaction
        await tx`SELECT 2`;
      })
      .then(
        () => null,
        (e: Error) => e,
      );
    expect(ended).toBeInstanceOf(Error);
    const res = failedResponse(ended!, "/api/v1/events");
    expect(res.status).toBe(503);
    expect(res.headers.get("Retry-After")).toBe("2");
    expect(await res.json()).toMatchObject({ error: "storage_unavailable" });
    await client.close().catch(() => {});
  }, 30_000);
});
