// Calls per record at the target (issue 16, goal 5): for every connector with a sandbox, the real agent pushes
// customers, products, projects, invoices and credit notes over loopback, and the sandbox counts the requests it
// answered. Once the set-up lists are read, each kind costs exactly what the connector's calls adapter declares
// (the fewest the target's API allows on the normal path), and its README's "Calls per record" table says the same.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { connectorKinds } from "../connectors/registry.ts";
import type { CountedRecord } from "../connectors/sandbox.ts";
import { countCalls } from "../scripts/calls-per-record.ts";

const root = resolve(import.meta.dir, "..");
const withSandbox = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.startSandbox);
const label = (r: CountedRecord) => r.replace("_", " ");

describe("calls per record at the target", () => {
  test("every connector with a sandbox declares its calls per record and the budget it counts against", async () => {
    expect(withSandbox.length).toBeGreaterThan(0);
    for (const kind of withSandbox) {
      const adapter = await connectorKinds[kind]!.calls?.();
      expect(adapter, `${connectorKinds[kind]!.title}: calls adapter`).toBeDefined();
      expect(Object.keys(adapter!.minimum).length).toBeGreaterThan(0);
      // A budget names its source and whether one confirms it; without one, the README says why.
      if (adapter!.budget) expect(adapter!.budget.source.length).toBeGreaterThan(10);
      else expect(adapter!.noBudget?.length ?? 0).toBeGreaterThan(10);
    }
  });

  for (const kind of withSandbox) {
    const title = connectorKinds[kind]!.title;
    test(`${title}: each record costs the declared minimum, counted by the sandbox; the README states it`, async () => {
      const counted = await countCalls(kind, { records: 3 });
      expect(counted.undeclared).toEqual([]);
      expect(counted.results.map((r): string => r.record).sort()).toEqual(Object.keys(counted.adapter.minimum).sort());
      // A figure that is off is shown with its calls by method and path, so the extra (or missing) one is plain.
      const off = counted.results
        .map((r) => ({ record: r.record, declared: counted.adapter.minimum[r.record]!, measured: r.perRecord, families: r.families }))
        .filter((r) => r.measured.requests !== r.declared.requests || r.measured.calls !== r.declared.calls);
      expect(off).toEqual([]);

      const readme = readFileSync(join(root, "connectors", kind, "README.md"), "utf8");
      const section = readme.split(/^## /m).find((s) => s.startsWith("Calls per record"));
      expect(section, `${kind}/README.md has a "Calls per record" section`).toBeDefined();
      for (const r of counted.results) {
        const m = counted.adapter.minimum[r.record]!;
        const row = new RegExp(`^\\|\\s*${label(r.record)}\\s*\\|\\s*${m.requests}\\s*\\|\\s*${m.calls}\\s*\\|`, "m");
        expect(row.test(section!), `README row "| ${label(r.record)} | ${m.requests} | ${m.calls} |"`).toBe(true);
      }
    }, 120_000);
  }
});
