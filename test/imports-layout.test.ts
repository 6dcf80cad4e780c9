// The layout's import rules (DESIGN.md, issue 11): connectors and file formats stand apart from the agent.
// A connector may use the canonical model, the Problem shape and the types its contract names; a file
// format (formats/) the model and Problems; both may build their schemas on first use (agent/lazy-schema.ts, a
// leaf with no imports); neither reaches into the agent's internals, and formats never import a connector.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";

const root = resolve(import.meta.dir, "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import of a file, as repo-relative paths, with whether it is type-only. */
function importsOf(file: string): { path: string; typeOnly: boolean }[] {
  const text = readFileSync(file, "utf8");
  const out: { path: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?from\s+["'](\.[^"']+)["']/gm)) {
    out.push({ path: relative(root, resolve(dirname(file), m[3]!)), typeOnly: !!m[2] });
  }
  for (const m of text.matchAll(/(?:^\s*import\s+|import\(\s*)["'](\.[^"']+)["']/gm)) {
    out.push({ path: relative(root, resolve(dirname(file), m[1]!)), typeOnly: false });
  }
  return out;
}

function violations(folder: string, allowed: (to: { path: string; typeOnly: boolean }, from: string) => boolean): string[] {
  return sourceFiles(join(root, folder)).flatMap((file) => {
    const from = relative(root, file);
    return importsOf(file)
      .filter((to) => !allowed(to, from))
      .map((to) => `${from} imports ${to.path}`);
  });
}

const MODEL_AND_PROBLEMS = ["agent/model.ts", "agent/problem.ts", "agent/lazy-schema.ts"];

describe("import layout", () => {
  test("nothing under connectors/ imports from agent/ except the model, problems and the contract's types", () => {
    expect(
      violations("connectors", (to, from) => {
        if (!to.path.startsWith("agent/")) return true;
        if (MODEL_AND_PROBLEMS.includes(to.path)) return true;
        // The contract names the logger a connector is given (a type, nothing at run time).
        return from === "connectors/contract.ts" && to.typeOnly && to.path === "agent/log.ts";
      }),
    ).toEqual([]);
  });

  test("formats/ (SIE 4, templates) use only the model and problems from agent/, and no connector", () => {
    expect(
      violations("formats", (to) =>
        to.path.startsWith("connectors/") ? false : !to.path.startsWith("agent/") || MODEL_AND_PROBLEMS.includes(to.path),
      ),
    ).toEqual([]);
  });
});
