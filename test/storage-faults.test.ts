// Storage faults: a busy database, a full disk, a corrupt or read-only file. Intake never acknowledges
// what it did not store, stores nothing partial, and the agent says plainly what is wrong.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { readiness } from "../agent/http/health.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const count = (s: Stack, table: string) => (s.agent.db.$client.query(`SELECT count(*) AS n FROM ${table}`).get() as any).n;

async function runCli(args: string[], opts: { cwd: string; asNobody?: boolean; fileSizeBlocks?: number }) {
  let cmd = [process.execPath, MAIN, ...args];
  // A file size limit (blocks of 512 bytes) cuts a write short as a full disk does; the shell ignores SIGXFSZ, so the
  // write fails with EFBIG instead of the signal killing the process.
  if (opts.fileSizeBlocks) cmd = ["sh", "-c", `trap '' XFSZ; ulimit -f ${opts.fileSizeBlocks}; exec "$0" "$@"`, ...cmd];
  const proc = Bun.spawn(opts.asNobody ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...cmd] : cmd, {
    cwd: opts.cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, KONTOBRO_CONFIG: "" },
  });
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { err, code };
}

function configIn(dir: string, dataDir: string): string {
  const path = join(dir, "kontobro.toml");
  writeFileSync(path, `[agent]\ndata_dir = "${dataDir}"\n[http]\nport = 0\n`, { mode: 0o644 });
  return path;
}

describe("storage faults", () => {
  test("a database locked by another program: 503 with Retry-After, nothing stored, delivered once it is free", async () => {
    stack = await startStack({ agent: { busy_timeout_ms: 100 } });
    const other = new Database(join(stack.dataDir, "kontobro.db"));
    other.exec("BEGIN IMMEDIATE"); // e.g. a backup tool holding the write lock
    const res = await fetch(`${stack.agent.url}/api/v1/events`, {
      method: "POST",
      body: JSON.stringify([customerEvent(1), customerEvent(2)]),
      headers: { authorization: "Bearer test-token-0123456789", "content-type": "application/json" },
    });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(((await res.json()) as any).message).toContain("nothing was stored");
    other.exec("ROLLBACK");
    other.close();
    expect(count(stack, "events")).toBe(0);
    expect((await stack.post([customerEvent(1), customerEvent(2)])).status).toBe(202);
    await stack.waitDelivered(2); // the dispatcher survived the busy spell
  });

  test("a full disk: acknowledged events are kept and delivered, new ones get 503 until there is room", async () => {
    stack = await startStack();
    await stack.addFaults({ kind: "503", count: 1000 }); // keep the acknowledged event in the outbox for now
    expect((await stack.post(customerEvent(1))).status).toBe(202);
    const c = stack.agent.db.$client;
    const pages = (c.query("PRAGMA page_count").get() as any).page_count;
    // The disk is now full for intake's writer (its own connection, on its own thread).
    await stack.agent.intake.pragma(`max_page_count = ${pages}`);
    const big = Array.from({ length: 50 }, (_, i) => customerEvent(100 + i, { name: "x".repeat(250) }));
    const res = await stack.post(big);
    expect(res.status).toBe(503);
    expect(res.body.message).toContain("disk is full");
    expect(count(stack, "events")).toBe(1);
    await stack.agent.intake.pragma("max_page_count = 1073741823"); // space freed
    await fetch(`${stack.sandboxUrl}/__sandbox/faults`, { method: "DELETE" });
    expect((await stack.post(big)).status).toBe(202);
    await waitFor("all delivered", async () => (await stack!.deliveries("done")).length === 51, 30_000);
  });

  test("a backup to a disk that fills up: a clear error naming the backup file, and no part of it left behind", async () => {
    const dir = tempDir();
    const data = join(dir, "data");
    const db = openDatabase(join(data, "kontobro.db"));
    db.$client.run("CREATE TABLE filler (x TEXT)");
    for (let i = 0; i < 200; i++) db.$client.run("INSERT INTO filler VALUES (?1)", ["x".repeat(2000)]);
    db.$client.close();
    const file = join(dir, "nightly.db");
    const r = await runCli(["backup", file, "--config", configIn(dir, data)], { cwd: dir, fileSizeBlocks: 200 });
    expect(r.code).toBe(1);
    // Before: "kontobro: disk I/O error" ("database or disk is full" on a full disk), as if kontobro's own database were.
    expect(r.err).toContain(`The backup could not be written to ${file}`);
    expect(r.err).toContain("fix: Free disk space");
    expect(existsSync(file)).toBe(false);
  });

  test("a full disk that intake cannot write to is on /readyz, though its own small probe still fits, until a request is stored", async () => {
    stack = await startStack();
    const c = stack.agent.db.$client;
    const pages = (c.query("PRAGMA page_count").get() as any).page_count;
    // Full for every connection: a write that needs no new page (the probe's one-row update) still goes through.
    c.run(`PRAGMA max_page_count = ${pages}`);
    await stack.agent.intake.pragma(`max_page_count = ${pages}`);
    const big = Array.from({ length: 50 }, (_, i) => customerEvent(100 + i, { name: "x".repeat(250) }));
    expect((await stack.post(big)).status).toBe(503);
    const ready = await fetch(`${stack.agent.url}/readyz`);
    const checks = ((await ready.json()) as any).checks;
    // Before: 200 "ready", every check ok, while each request of the PSA got 503 "The disk is full".
    expect(ready.status).toBe(503);
    expect(checks.find((k: any) => k.name === "intake")).toMatchObject({ ok: false });
    expect(checks.find((k: any) => k.name === "intake").message).toContain("The disk is full");
    // The status page says it first, too (before: nothing; queues looked as usual).
    const page = await (await fetch(`${stack.agent.url}/`)).text();
    expect(page).toContain("Events are refused");
    expect(page).toContain("The disk is full");
    c.run("PRAGMA max_page_count = 1073741823");
    await stack.agent.intake.pragma("max_page_count = 1073741823"); // space freed
    expect((await stack.post(big)).status).toBe(202);
    expect((await fetch(`${stack.agent.url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${stack.agent.url}/`)).text()).not.toContain("Events are refused");
  });

  test("a refusal for a full disk is not remembered for ever: with no request since, /readyz's intake check passes again after 5 minutes", async () => {
    stack = await startStack();
    const c = stack.agent.db.$client;
    const pages = (c.query("PRAGMA page_count").get() as any).page_count;
    c.run(`PRAGMA max_page_count = ${pages}`);
    await stack.agent.intake.pragma(`max_page_count = ${pages}`);
    expect((await stack.post(Array.from({ length: 50 }, (_, i) => customerEvent(100 + i, { name: "x".repeat(250) })))).status).toBe(503);
    c.run("PRAGMA max_page_count = 1073741823"); // the space freed, and no request since (or a load balancer sends none
    await stack.agent.intake.pragma("max_page_count = 1073741823"); // to a kontobro its /readyz calls not ready)
    const intakeCheck = (at: number) =>
      readiness(stack!.agent.db, [], at, (now) => stack!.agent.intake.failing?.(now) ?? null).checks.find((k) => k.name === "intake")!;
    expect(intakeCheck(Date.now() + 4 * 60_000).ok).toBe(false); // a PSA resending after Retry-After keeps it failing
    // Before: failing for good, until the next request stored: behind a load balancer checking /readyz, never.
    expect(intakeCheck(Date.now() + 6 * 60_000).ok).toBe(true);
  });

  test("an export run on the status page while the database cannot be written: 503 saying what to fix, no bug to report", async () => {
    stack = await startStack({ sections: { exports: { output_dir: tempDir() } } });
    expect((await stack.post([customerEvent(1), invoiceEvent(1, 1)])).status).toBe(202);
    stack.agent.db.$client.run("PRAGMA query_only = 1"); // as a full disk or a read-only file
    const res = await fetch(`${stack.agent.url}/ui/exports/run`, { method: "POST", body: new URLSearchParams({ what: "sie4" }) });
    const body = (await res.json()) as any;
    stack.agent.db.$client.run("PRAGMA query_only = 0");
    // Before: 500 "Something went wrong inside kontobro", "if it persists, send the log to support".
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("30");
    expect(body.message).toContain("kontobro cannot write its database (attempt to write a readonly database)");
    expect(body.hint).toContain("Free disk space");
  });

  test("a corrupt database stops the agent at start with a clear message", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "data"));
    writeFileSync(join(dir, "data", "kontobro.db"), "garbage ".repeat(2000));
    const r = await runCli(["run", "--config", configIn(dir, join(dir, "data"))], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.err).toContain("is damaged");
    expect(r.err).toContain("fix:");
  });

  test.skipIf(process.getuid?.() !== 0)("a read-only database stops the agent at start with a clear message", async () => {
    const dir = tempDir();
    const data = join(dir, "data");
    openDatabase(join(data, "kontobro.db")).$client.close();
    chmodSync(dir, 0o755);
    chmodSync(data, 0o755); // owned by root: the unprivileged user below can read but not write
    const r = await runCli(["run", "--config", configIn(dir, data)], { cwd: dir, asNobody: true });
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot be written");
    expect(r.err).toContain("write access");
  });
});
