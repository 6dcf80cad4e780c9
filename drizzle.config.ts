import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  // Each area keeps its tables in its own agent/db/schema*.ts file; one migration history for all.
  schema: "./agent/db/schema*.ts",
  out: "./agent/db/migrations",
});
