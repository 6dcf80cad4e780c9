// The short chaos run inside `npm test`: the compiled agent is SIGKILLed at random moments while the
// sandbox injects 503s, 429s, dropped answers and latency. Nothing may be missing, doubled or stuck.
// The full run (5,000 invoices, 50 kills) is `npm run chaos`.
import { describe, expect, test } from "bun:test";
import { runChaos } from "../scripts/chaos.ts";

describe("chaos", () => {
  test("300 invoices, 8 kills: every invoice, customer and project exactly once", async () => {
    const report = await runChaos({ invoices: 300, kills: 8, seed: 20261121, log: () => {} });
    console.log(`chaos: ${JSON.stringify(report)}`);
    expect(report.kills).toBe(8);
    expect(report.faultsInjected.drop_after_commit).toBeGreaterThan(0);
    expect(report.faultsInjected["503"]).toBeGreaterThan(0);
    expect({ missing: report.missing, duplicates: report.duplicates, orphanDrafts: report.orphanDrafts, missingCustomers: report.missingCustomers, missingProjects: report.missingProjects, needsAction: report.needsAction, leftInFlight: report.leftInFlight })
      .toEqual({ missing: 0, duplicates: 0, orphanDrafts: 0, missingCustomers: 0, missingProjects: 0, needsAction: 0, leftInFlight: 0 });
  }, 300_000);
});
