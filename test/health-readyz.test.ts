// /healthz answers while the process runs; /readyz says whether kontobro can do its work: the database
// takes writes, the migrations are applied, and no target refuses the credentials (a real 401 from the
// e-conomic sandbox, then fixed settings and a successful push).
import { afterAll, describe, expect, test } from "bun:test";
import { readiness } from "../agent/http/health.ts";
import { createLogger } from "../agent/log.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, waitFor } from "./helpers.ts";

let stack: Stack | undefined;
afterAll(async () => {
  await stack?.stop();
});

const getJson = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as any, cache: res.headers.get("cache-control") };
};

describe("/healthz and /readyz", () => {
  test("ready; refused credentials make it not ready until the target accepts them again", async () => {
    stack = await startStack({ economic: { agreement_grant_token: "revoked-grant" } });
    const health = await getJson(`${stack.agent.url}/healthz`);
    expect(health).toMatchObject({ status: 200, body: { status: "ok" }, cache: "no-store" });

    const before = await getJson(`${stack.agent.url}/readyz`);
    expect(before.status).toBe(200);
    expect(before.body.status).toBe("ready");
    expect(before.body.checks.map((c: any) => [c.name, c.ok])).toEqual([
      ["database", true],
      ["intake", true],
      ["durability", true],
      ["migrations", true],
      ["credentials:eco", true],
      ["dispatch:eco", true],
    ]);

    // The sandbox answers 401 to a wrong agreement grant token.
    expect((await stack.post(customerEvent(71))).status).toBe(202);
    const refused = await waitFor("readyz 503", async () => {
      const r = await getJson(`${stack!.agent.url}/readyz`);
      return r.status === 503 ? r : null;
    });
    const check = refused!.body.checks.find((c: any) => c.name === "credentials:eco");
    expect(refused!.body.status).toBe("not_ready");
    expect(check.ok).toBe(false);
    expect(check.message).toContain("eco refuses kontobro's credentials");
    expect(check.hint).toBeTruthy();
    // Health is about the process only.
    expect((await fetch(`${stack.agent.url}/healthz`)).status).toBe(200);

    // A restart with the same wrong settings keeps the refusal.
    await stack.restart();
    expect((await fetch(`${stack.agent.url}/readyz`)).status).toBe(503);

    // Fixed settings: the refusal is forgotten at start, and a successful push confirms them.
    await stack.restartWith({ settings: { ...(await settingsOf(stack)), agreement_grant_token: "demo-agreement-grant" } });
    expect((await fetch(`${stack.agent.url}/readyz`)).status).toBe(200);
    expect((await stack.post(customerEvent(72))).status).toBe(202);
    await stack.waitDelivered(1);
    expect((await getJson(`${stack.agent.url}/readyz`)).body.status).toBe("ready");
  });

  test("a database whose migrations are not all applied is not ready", () => {
    const db = stack!.agent.db;
    const last = db.$client.query(`SELECT hash, created_at FROM __drizzle_migrations ORDER BY created_at DESC LIMIT 1`).get() as any;
    db.$client.run(`DELETE FROM __drizzle_migrations WHERE created_at = ?1`, [last.created_at]);
    try {
      const r = readiness(db, [{ name: "eco" }]);
      expect(r.ready).toBe(false);
      expect(r.checks.find((c) => c.name === "migrations")).toMatchObject({ ok: false, hint: expect.stringContaining("Restart kontobro") });
    } finally {
      db.$client.run(`INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?1, ?2)`, [last.hash, last.created_at]);
    }
    expect(readiness(db, [{ name: "eco" }]).ready).toBe(true);
  });

  test("a dispatcher whose rounds fail for a full disk, while the database check's small write still fits: told to free space, not to restart", () => {
    const full = { message: "database or disk is full", steps: 40, since: Date.now() - 120_000 };
    const check = readiness(stack!.agent.db, [{ name: "eco", dispatchFailing: () => full }]).checks.find((c) => c.name === "dispatch:eco")!;
    expect(check.ok).toBe(false);
    // Before: "Otherwise restart kontobro, and report the error": a restart frees no space, and it is no bug.
    expect(check.hint).not.toContain("restart kontobro");
    expect(check.hint).toContain("Free disk space");
  });

  test("a dispatcher whose rounds fail while the database takes writes is not ready, and says what failed", async () => {
    const s = await startStack();
    try {
      // Every round now fails (as a bug would), while the database check's write still succeeds.
      s.agent.db.$client.run(`ALTER TABLE target_state RENAME TO target_state_away`);
      expect((await s.post(customerEvent(81))).status).toBe(202);
      const failing = await waitFor("readyz 503", async () => {
        const r = await getJson(`${s.agent.url}/readyz`);
        return r.status === 503 ? r : null;
      });
      expect(failing!.body.checks.filter((c: any) => !c.ok).map((c: any) => c.name)).toEqual(["dispatch:eco"]);
      const check = failing!.body.checks.find((c: any) => c.name === "dispatch:eco");
      expect(check.message).toMatch(/^eco: nothing is sent: the dispatcher's last \d+ rounds failed \(about 1 min\): .*target_state/);
      expect(check.hint).toContain("restart kontobro");

      s.agent.db.$client.run(`ALTER TABLE target_state_away RENAME TO target_state`);
      await s.waitDelivered(1);
      expect((await getJson(`${s.agent.url}/readyz`)).body.status).toBe("ready");
    } finally {
      await s.stop();
    }
  });

  test("a dispatcher whose loop stopped on an unexpected error is not ready, at once, and stays so until a restart", async () => {
    // The loop stops when its error handling itself throws (a bug): here, writing the round's warning fails.
    const log = createLogger("warn", {}, (line) => {
      if (line.includes("dispatcher could not read or write the outbox")) throw new Error("the log cannot be written");
    });
    const s = await startStack({ log });
    try {
      s.agent.db.$client.run(`ALTER TABLE target_state RENAME TO target_state_away`);
      expect((await s.post(customerEvent(82))).status).toBe(202);
      const stopped = await waitFor("readyz 503", async () => {
        const r = await getJson(`${s.agent.url}/readyz`);
        return r.status === 503 ? r : null;
      });
      const check = stopped!.body.checks.find((c: any) => c.name === "dispatch:eco");
      expect(check.message).toMatch(
        /^eco: nothing is sent: the dispatcher stopped on an unexpected error \([^)]+\): its loop stopped: the log cannot be written$/,
      );
      expect(check.hint).toContain("Restart kontobro");

      // The database is fine again, but nothing restarts the loop: still not ready, and nothing is delivered.
      s.agent.db.$client.run(`ALTER TABLE target_state_away RENAME TO target_state`);
      await Bun.sleep(300);
      expect((await fetch(`${s.agent.url}/readyz`)).status).toBe(503);
      expect(await s.deliveries("done")).toEqual([]);
    } finally {
      await s.stop();
    }
  });
});

/** The target's current settings, as the harness configured them. */
async function settingsOf(s: Stack): Promise<Record<string, unknown>> {
  const { validateConfig } = await import("../agent/config.ts");
  const { targets } = validateConfig(
    {
      targets: [
        {
          name: "eco",
          kind: "economic",
          rest_url: s.sandboxUrl,
          projects_url: `${s.sandboxUrl}/projectsapi/v1.1.0`,
          app_secret_token: "demo-app-secret",
          agreement_grant_token: "x",
          requests_per_second: 0,
        },
      ],
    },
    {},
  );
  return targets[0]!.settings;
}
