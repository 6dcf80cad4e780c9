// The committed migrations of both dialects are current with agent/db/schema*.ts: drizzle-kit, run on a copy
// of each migration folder, finds nothing left to generate, and the binary embeds exactly those folders. A
// schema change without `npm run db:generate -- NAME` fails here, naming what to run.
import { describe, expect, test } from "bun:test";
import { cpSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import sqliteConfig from "../drizzle.config.ts";
import pgConfig from "../agent/db/pg/drizzle.config.ts";
import { MIGRATION_FOLDERS, renderEmbeddedMigrations } from "../scripts/embed-migrations.ts";
import { tempDir } from "./helpers.ts";

const root = join(import.meta.dir, "..");
const FIX = "run `npm run db:generate -- NAME` and commit the schema, both migration folders and both migrations.generated.ts";

describe.each([
  ["SQLite", sqliteConfig],
  ["PostgreSQL", pgConfig],
] as const)("%s migrations", (_, config) => {
  const folder = config.out!;
  const embedded = MIGRATION_FOLDERS.find((m) => m.folder === folder.replace(/^\.\//, ""))!;

  test("drizzle-kit finds no schema change that has no migration", async () => {
    const copy = tempDir("kontobro-migcheck-");
    cpSync(join(root, folder), copy, { recursive: true });
    const before = readdirSync(copy).sort();
    const gen = Bun.spawn(
      [
        "npx",
        "drizzle-kit",
        "generate",
        "--dialect",
        config.dialect,
        "--schema",
        String(config.schema),
        "--out",
        copy,
        "--name",
        "unexpected",
      ],
      { cwd: root, stdout: "pipe", stderr: "pipe" },
    );
    const [out, err, code] = await Promise.all([new Response(gen.stdout).text(), new Response(gen.stderr).text(), gen.exited]);
    expect(code === 0 ? "" : `drizzle-kit failed (${code}): ${err}${out}`).toBe("");
    const added = readdirSync(copy).filter((f) => !before.includes(f));
    expect(added.length === 0 ? "current" : `${folder} is behind the schema (drizzle-kit would write ${added.join(", ")}): ${FIX}`).toBe(
      "current",
    );
  }, 60_000);

  test("the binary embeds exactly the migration folder", () => {
    expect(embedded).toBeDefined();
    const generated = readFileSync(join(root, embedded.module), "utf8");
    const expected = renderEmbeddedMigrations(join(root, embedded.folder), embedded.folder);
    expect(generated === expected ? "same" : `${embedded.module} differs from ${embedded.folder}: ${FIX}`).toBe("same");
  });
});
