// `npm run db:generate -- NAME`: drizzle-kit writes a new SQL migration for whatever changed in
// agent/db/schema*.ts, for SQLite (drizzle.config.ts) and for PostgreSQL (agent/db/pg/drizzle.config.ts, whose
// schema is derived from the same files), then both are embedded for the binary. Never edit or delete an
// existing migration: add a new one.
import { contractingStatements } from "../agent/db/pg/rolling-upgrade.ts";

const name = process.argv[2] ?? "change";
for (const config of ["drizzle.config.ts", "agent/db/pg/drizzle.config.ts"]) {
  const gen = Bun.spawnSync(["npx", "drizzle-kit", "generate", "--config", config, "--name", name], {
    stdout: "inherit",
    stderr: "inherit",
  });
  if (gen.exitCode !== 0) process.exit(gen.exitCode ?? 1);
}
const embed = Bun.spawnSync([process.execPath, "scripts/embed-migrations.ts"], { stdout: "inherit", stderr: "inherit" });
if (embed.exitCode !== 0) process.exit(embed.exitCode ?? 1);
// Workers of the version before go on, unaware, on the schema the new migration makes (a rolling upgrade): say so now
// when it takes away or narrows something they use. Imported now: the embedding above has just rewritten it.
const { embeddedMigrations } = await import("../agent/db/pg/migrations.generated.ts");
const newest = embeddedMigrations[embeddedMigrations.length - 1]!.tag;
for (const c of contractingStatements(embeddedMigrations).filter((c) => c.migration === newest))
  console.warn(
    `warning: ${c.migration}: ${c.statement}\n  ${c.why}. Workers of the version before keep running on this schema during a rolling upgrade (agent/db/pg/rolling-upgrade.ts): split the change over two releases, or name it in REVIEWED of test/pg-migrations-compatible.test.ts with what the upgrade needs (and say so in README, Upgrades).`,
  );
