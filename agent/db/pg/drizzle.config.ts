// drizzle-kit's configuration for the PostgreSQL migrations (hosted mode, issue 17): generated from the pg-core
// twin of the SQLite schema (agent/db/pg/schema.ts), one history of its own beside agent/db/migrations.
// `npm run db:generate -- NAME` runs drizzle-kit with both configurations (scripts/db-generate.ts).
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./agent/db/pg/schema.ts",
  out: "./agent/db/pg/migrations",
});
