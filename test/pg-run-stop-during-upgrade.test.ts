// `kontobro run` on PostgreSQL stopped with SIGTERM while its upgrade waits between two attempts (a migration gave up
// waiting for a table lock a long transaction holds: agent/db/pg/migrate.ts): it stops at once, exit 0, saying that
// nothing of the migration was applied. Before, the signal was acted on only once the worker was up, so with a
// blocker lasting hours the process ended only at systemd's SIGKILL.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { SQL } from "bun";
import { migratePostgres } from "../agent/db/pg/migrate.ts";
import { embeddedMigrations } from "../agent/db/pg/migrations.generated.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { freePort, spawnRun, writeWorkerConfig } from "./hosted-process.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const unavailable = pgUnavailable();
if (unavailable) console.warn(`pg-run-stop-during-upgrade skipped: ${unavailable}`);
/** The newest migration that alters a table (later ones may only add an index): the upgrade starts with it. */
const AT = embeddedMigrations.findLastIndex((m) => /ALTER TABLE "\w+"/.test(m.sql));
const LAST = embeddedMigrations[AT]!;
/** The table it alters first: the report below holds a lock on it, so the migration must wait. */
const ALTERED = /ALTER TABLE "(\w+)"/.exec(LAST?.sql ?? "")?.[1];

let server: PgServer;
beforeAll(async () => {
  if (!unavailable) server = await startPgServer();
});
afterAll(async () => {
  await server?.stop();
});

test.skipIf(!!unavailable)(
  "a SIGTERM while the upgrade pauses between attempts stops the worker at once (exit 0), nothing of the migration applied",
  async () => {
    const url = await server.createDatabase("stop_upgrade");
    const setup = new SQL({ url, max: 2 });
    // The database of the version before that migration, and a report left open on the table it alters.
    await migratePostgres(setup, embeddedMigrations.slice(0, AT));
    const blocker = new SQL({ url, max: 1, connection: { application_name: "psql" } });
    const held = await blocker.reserve();
    await held`BEGIN`;
    if (!ALTERED) throw new Error("no migration alters a table: this test needs one that does");
    await held.unsafe(`LOCK TABLE "${ALTERED}" IN ACCESS SHARE MODE`);
    const port = freePort();
    const config = writeWorkerConfig(tempDir("kontobro-stop-upgrade-"), "w", url, port, {
      storage: { url, migration_lock_timeout_ms: 100 },
      admin: { token: "stop-upgrade-admin-token-0123456789" },
    });
    const { proc, log, drained } = spawnRun(config);
    try {
      // The third attempt gave up: the pause before the fourth is 4 s.
      await waitFor(
        "three attempts given up",
        () => {
          if (proc.exitCode !== null) throw new Error(`the worker exited ${proc.exitCode}: ${log()}`);
          return (log().match(/could not take/g) ?? []).length >= 3;
        },
        30_000,
      );
      const signalled = performance.now();
      proc.kill("SIGTERM");
      const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running 10 s after SIGTERM")]);
      const ms = performance.now() - signalled;
      if (typeof code === "number") await drained;
      const text = log();
      expect({ code, text }).toMatchObject({ code: 0 });
      expect(ms).toBeLessThan(2_000);
      expect(text).toContain(`stopped during the upgrade (SIGTERM); nothing of migration ${LAST.tag} applied`);
      expect(text).not.toContain(`attempt 5`);
      const [{ n }] = (await setup`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`) as { n: number }[];
      expect(n).toBe(AT);
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      await held`ROLLBACK`.catch(() => {});
      held.release();
      await blocker.close();
      await setup.close();
    }
  },
  60_000,
);
