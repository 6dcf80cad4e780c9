// `npm run db:generate -- NAME`: drizzle-kit writes a new SQL migration for whatever changed in
// agent/db/schema*.ts, for SQLite (drizzle.config.ts) and for PostgreSQL (agent/db/pg/drizzle.config.ts, whose
// schema is derived from the same files), then both are embedded for the binary. Never edit or delete an
// existing migration: add a new one.
const name = process.argv[2] ?? "change";
for (const config of ["drizzle.config.ts", "agent/db/pg/drizzle.config.ts"]) {
  const gen = Bun.spawnSync(["npx", "drizzle-kit", "generate", "--config", config, "--name", name], {
    stdout: "inherit",
    stderr: "inherit",
  });
  if (gen.exitCode !== 0) process.exit(gen.exitCode ?? 1);
}
const embed = Bun.spawnSync([process.execPath, "scripts/embed-migrations.ts"], { stdout: "inherit", stderr: "inherit" });
process.exit(embed.exitCode ?? 0);
