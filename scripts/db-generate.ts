// `npm run db:generate -- NAME`: drizzle-kit writes a new SQL migration for whatever changed in
// agent/db/schema*.ts, then the migrations are embedded for the binary. Never edit or delete an
// existing migration: add a new one.
const name = process.argv[2] ?? "change";
const gen = Bun.spawnSync(["npx", "drizzle-kit", "generate", "--name", name], { stdout: "inherit", stderr: "inherit" });
if (gen.exitCode !== 0) process.exit(gen.exitCode ?? 1);
const embed = Bun.spawnSync([process.execPath, "scripts/embed-migrations.ts"], { stdout: "inherit", stderr: "inherit" });
process.exit(embed.exitCode ?? 0);
