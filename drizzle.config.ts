import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./agent/db/schema.ts",
  out: "./agent/db/migrations",
});
