// A connector describes itself (issue 11): outside connectors/<kind>/ and connectors/registry.ts no source
// file names a connector kind, not even in a comment, so the next target is one folder and one line. The
// agent, the file formats, the scripts and the shared connector modules loop over the registry instead.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { connectorKinds } from "../connectors/registry.ts";

const root = resolve(import.meta.dir, "..");

function sourceFiles(dir: string, deep = true): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return deep ? sourceFiles(path) : [];
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Every kind: the registry's, and every connector folder's (registered or not yet). */
const kinds = [
  ...new Set([
    ...Object.keys(connectorKinds),
    ...readdirSync(join(root, "connectors")).filter((d) => statSync(join(root, "connectors", d)).isDirectory()),
  ]),
];

describe("connector kinds", () => {
  test("the registry's kinds each have their folder, and every folder with a factory is registered", () => {
    for (const kind of Object.keys(connectorKinds)) expect(statSync(join(root, "connectors", kind)).isDirectory()).toBe(true);
    const withFactory = kinds.filter((k) => {
      try {
        return statSync(join(root, "connectors", k, "index.ts")).isFile();
      } catch {
        return false;
      }
    });
    expect(withFactory.filter((k) => !(k in connectorKinds))).toEqual([]);
  });

  test("every connector has the same files, a sandbox, and the same key names for the same ideas", () => {
    const want = ["index.ts", "config.ts", "connector.ts", "client.ts", "map.ts", "rules.ts", "check.ts", "README.md", "sandbox/index.ts"];
    const missing: string[] = [];
    for (const [kind, factory] of Object.entries(connectorKinds)) {
      const files = [...want, ...(factory.pulls ? ["pull.ts"] : [])];
      for (const f of files) {
        try {
          statSync(join(root, "connectors", kind, f));
        } catch {
          missing.push(`${kind}/${f}`);
        }
      }
      const keys = Object.keys((factory.configSchema as any).shape ?? {});
      for (const key of ["request_timeout_ms", "requests_per_second", "burst"])
        if (!keys.includes(key)) missing.push(`${kind}: config key ${key}`);
      if (!factory.startSandbox) missing.push(`${kind}: startSandbox`);
    }
    expect(missing).toEqual([]);
  });

  test("no source file outside connectors/<kind>/ and connectors/registry.ts names a kind", () => {
    const files = [
      // The migrations are data: their SQL and names are fixed once released.
      ...["agent", "formats", "scripts"]
        .flatMap((d) => sourceFiles(join(root, d)))
        .filter((f) => !relative(root, f).startsWith("agent/db/migrations")),
      ...sourceFiles(join(root, "connectors"), false).filter((f) => !f.endsWith("registry.ts")),
    ];
    expect(files.length).toBeGreaterThan(50);
    const found: string[] = [];
    for (const file of files) {
      readFileSync(file, "utf8")
        .split("\n")
        .forEach((line, i) => {
          for (const kind of kinds) if (line.toLowerCase().includes(kind)) found.push(`${relative(root, file)}:${i + 1} names "${kind}"`);
        });
    }
    expect(found).toEqual([]);
  });
});
