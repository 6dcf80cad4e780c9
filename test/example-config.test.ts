// The shipped example must stay valid and document every key the schema knows.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AgentConfig, validateConfig } from "../agent/config.ts";
import { connectorKinds } from "../connectors/registry.ts";

const path = join(import.meta.dir, "../config/kontobro.example.toml");
const text = readFileSync(path, "utf8");

function keysOf(schema: any): string[] {
  const shape = schema?.shape ?? schema?._zod?.def?.innerType?.shape ?? schema?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

describe("config/kontobro.example.toml", () => {
  test("is valid when its environment variables are set", () => {
    const env = { ECONOMIC_APP_SECRET_TOKEN: "x", ECONOMIC_AGREEMENT_GRANT_TOKEN: "y" };
    const { targets } = validateConfig(Bun.TOML.parse(text), env);
    expect(targets.map((t) => t.kind)).toEqual(["economic"]);
  });

  test("mentions every key of every section and connector", () => {
    const sections = AgentConfig.shape;
    const missing: string[] = [];
    for (const section of ["agent", "http", "dispatch"] as const) {
      for (const key of keysOf((sections[section] as any)._zod.def.innerType)) if (!new RegExp(`^#? ?${key} =`, "m").test(text)) missing.push(`${section}.${key}`);
    }
    for (const factory of Object.values(connectorKinds)) {
      for (const key of keysOf(factory.configSchema)) if (!new RegExp(`^(#? ?${key} =|\\[targets\\.${key}\\])`, "m").test(text)) missing.push(`${factory.kind}.${key}`);
    }
    expect(missing).toEqual([]);
  });
});
