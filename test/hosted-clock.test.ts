// A hosted worker judges and writes stored times by the database's clock (Worker.now), not its machine's (review
// finding 5). Here the worker's machine runs an hour fast: another worker paused the target for ten more minutes (a
// Retry-After, written on the database's clock); on its own clock that pause ended fifty minutes ago, and it would
// send into the 429. Real parts: a tenant on a real PostgreSQL server (test/engines.ts), its runtime as a hosted worker
// starts it (agent/hosted/tenant-runtime.ts) from a stored configuration, the e-conomic sandbox on loopback. The export
// files' delivery claim (review finding 10) is judged and written on the same clock: a claim another worker holds on the
// database's clock is left to it, one run out on that clock is taken over, delivered_at is the database's time.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { AgentConfig } from "../agent/config.ts";
import { startTenantRuntime } from "../agent/hosted/tenant-runtime.ts";
import { insertFile, insertRun } from "../agent/exports/store.ts";
import { exportsApi } from "../agent/http/exports-api.ts";
import { parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { initialState, TargetStateStore } from "../agent/target-state.ts";
import { workerEngines } from "./engines.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

const { engines, open } = workerEngines("a hosted worker's clock");
const HOUR = 3_600_000;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.skipIf(!engines.includes("postgres"))("a hosted worker whose machine runs an hour fast", () => {
  test("keeps a pause another worker wrote on the database's clock, and writes due times on that clock", async () => {
    const sandbox = await startEconomicSandbox({ port: 0 });
    cleanups.push(() => sandbox.stop());
    const tenant = await open("postgres");
    const runner = tenant.storage;
    const row = (await runner.get<{ id: number; slug: string }>(
      "SELECT id, slug FROM tenants WHERE id = CAST(current_setting('kontobro.tenant') AS INTEGER)",
    ))!;
    // The database's clock, as Worker.now would tell this worker: an hour behind its machine's Date.now.
    const databaseNow = () => Date.now() - HOUR;
    await new TargetStateStore(runner).put({
      ...initialState("books", databaseNow()),
      pausedUntil: databaseNow() + 10 * 60_000,
      pauseReason: "429: Retry-After 600",
    });
    const config = {
      targets: [
        {
          name: "books",
          kind: "economic",
          rest_url: sandbox.url,
          projects_url: `${sandbox.url}/projectsapi/v1.1.0`,
          app_secret_token: "demo-app-secret",
          agreement_grant_token: "demo-agreement-grant",
          requests_per_second: 0,
        },
      ],
    };
    const runtime = await startTenantRuntime(
      { ...row, name: row.slug, state: "active", config, targets: [], createdAt: 1, updatedAt: 1 },
      runner,
      {
        config: AgentConfig.parse({ dispatch: { idle_poll_ms: 50 } }),
        workerId: tenant.workerOf(runner)!,
        epoch: "e1",
        metrics: new Metrics(),
        log: silentLogger,
        now: databaseNow,
      },
    );
    cleanups.push(() => runtime.stop());
    const parsed = parseEvents([customerEvent(7001)]);
    if (!parsed.ok) throw new Error("fixture");
    await runtime.intake.submit(parsed.events);
    const delivery = async () =>
      (await runner.get<{ status: string; attempts: number; createdAt: number; nextAttemptAt: number }>(
        "SELECT status, attempts, created_at AS createdAt, next_attempt_at AS nextAttemptAt FROM deliveries",
      ))!;
    // Written on the database's clock.
    const written = await delivery();
    expect(Math.abs(written.createdAt - databaseNow())).toBeLessThan(60_000);
    expect(Math.abs(written.nextAttemptAt - databaseNow())).toBeLessThan(60_000);
    // Still paused on the database's clock: nothing is sent while several rounds pass.
    await Bun.sleep(1_000);
    expect(await delivery()).toMatchObject({ status: "pending", attempts: 0 });
    // The pause ends on the database's clock: the customer is booked.
    const store = new TargetStateStore(runner);
    await store.put({ ...(await store.get("books")), pausedUntil: databaseNow() - 1 });
    runtime.notify();
    await waitFor("the customer booked", async () => (await delivery()).status === "done", 20_000);
  }, 60_000);

  test("writes export files under a delivery claim judged on the database's clock, and leaves another worker's live claim alone", async () => {
    const tenant = await open("postgres");
    const runner = tenant.storage;
    const row = (await runner.get<{ id: number; slug: string }>(
      "SELECT id, slug FROM tenants WHERE id = CAST(current_setting('kontobro.tenant') AS INTEGER)",
    ))!;
    const databaseNow = () => Date.now() - HOUR;
    const dir = tempDir("kontobro-clock-exports-");
    // An export committed whose file is not written yet (a worker stopped in between).
    const runId = await insertRun(runner, {
      kind: "template",
      template: "t",
      dataType: "customers",
      periodFrom: null,
      periodTo: null,
      rowCount: 1,
      invoiceCount: 0,
      warnings: [],
      requestedBy: "api",
      createdAt: databaseNow(),
    });
    const bytes = new TextEncoder().encode("id;name\n1;Acme\n");
    const fileId = await insertFile(runner, {
      runId,
      fileName: "waiting.csv",
      format: "csv",
      encoding: "utf-8",
      periodFrom: null,
      periodTo: null,
      bytes,
      sha256: "x",
      rowCount: 1,
      createdAt: databaseNow(),
      toDeliver: true,
    });
    // Another worker writes the tenant's files now: its claim runs ten more minutes on the database's clock (fifty
    // minutes ago on this machine's).
    await runner.run(
      `INSERT INTO settings (name, value) VALUES ('export_delivery', ?1) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
      `other-worker ${databaseNow() + 10 * 60_000}`,
    );
    const start = () =>
      startTenantRuntime(
        {
          ...row,
          name: row.slug,
          state: "active",
          config: { targets: [], exports: { output_dir: dir, company_name: "Clock AB", org_number: "556677-8899", currency: "NOK" } },
          targets: [],
          createdAt: 1,
          updatedAt: 1,
        },
        runner,
        {
          config: AgentConfig.parse({ dispatch: { idle_poll_ms: 50 } }),
          workerId: tenant.workerOf(runner)!,
          epoch: "e2",
          metrics: new Metrics(),
          log: silentLogger,
          now: databaseNow,
        },
      );
    const delivered = async (id: number) =>
      (await runner.get<{ deliveredAt: number | null }>("SELECT delivered_at AS deliveredAt FROM export_files WHERE id = ?1", id))!
        .deliveredAt;
    // At its start the runtime writes the files waiting, unless another holds the claim: left to that worker.
    let runtime = await start();
    await runtime.stop();
    expect(existsSync(join(dir, "waiting.csv"))).toBe(false);
    expect(await delivered(fileId)).toBeNull();
    // That claim has run out on the database's clock (the other worker died mid-write): taken over, written, and
    // delivered_at is the database's time.
    await runner.run(`UPDATE settings SET value = ?1 WHERE name = 'export_delivery'`, `other-worker ${databaseNow() - 1}`);
    runtime = await start();
    cleanups.push(() => runtime.stop());
    expect(readFileSync(join(dir, "waiting.csv"), "utf8")).toBe("id;name\n1;Acme\n");
    expect(Math.abs((await delivered(fileId))! - databaseNow())).toBeLessThan(60_000);
    expect(runtime.now).toBe(databaseNow);

    // An export through the tenant's exports API on this worker writes its file under a claim on the runtime's clock:
    // held by another on the database's clock, the file waits for that worker.
    await runner.run(`UPDATE settings SET value = ?1 WHERE name = 'export_delivery'`, `other-worker ${databaseNow() + 10 * 60_000}`);
    const parsed = parseEvents([customerEvent(7101), invoiceEvent(7201, 7101)]);
    if (!parsed.ok) throw new Error("fixture");
    await runtime.intake.submit(parsed.events);
    const api = exportsApi({ runner: () => runner, settings: () => runtime.exports, progressIn: null, clock: () => runtime.now });
    const res = await api.request("/runs", {
      method: "POST",
      body: JSON.stringify({ format: "sie4" }),
      headers: { "content-type": "application/json" },
    });
    const body = (await res.json()) as { files: { id: number; fileName: string }[] };
    expect({ status: res.status, body }).toMatchObject({ status: 201 });
    const [file] = body.files;
    expect(existsSync(join(dir, file!.fileName))).toBe(false);
    expect(await delivered(file!.id)).toBeNull();
  }, 60_000);
});
