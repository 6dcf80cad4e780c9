// A template whose rows are the parts of one document (Invoices grouped by account: the rows of each invoice's
// voucher) marks whole invoices transferred, so it must write whole invoices: a filter on a row's own field (rowType,
// account, amount) would write part of a voucher (unbalanced at import) and mark the whole invoice transferred, never
// exported again, by this template or SIE 4 (one export status per invoice). Over real HTTP, on a real SQLite file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import { BASE, customer, invoice } from "./exports-fixtures.ts";
import { tempDir } from "./helpers.ts";

const TOKEN = "whole-documents-token-0123456789";
let agent: RunningAgent;
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${agent.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (res.headers.get("content-type") ?? "").includes("json") ? await res.json() : await res.text() };
}

const ledger = (filters: unknown[]) => ({
  dataType: "invoices_by_account",
  delimiter: ";",
  fileName: "ledger_{run}.csv",
  filters,
  columns: [
    { header: "Number", field: "number" },
    { header: "Type", field: "rowType" },
    { header: "Account", field: "account" },
    { header: "Amount", field: "amount" },
  ],
});

beforeAll(async () => {
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: tempDir("kontobro-whole-documents-") },
      http: { port: 0, api_token: TOKEN },
      exports: { company_name: "Helt AB", org_number: "556000-2222" },
    },
    {},
  );
  agent = await startAgent(config, targets, silentLogger);
  const r = await call("POST", "/api/v1/events", [
    ...BASE(),
    customer(200),
    invoice(5001),
    invoice(5002),
    invoice(5003, { customerNumber: 200 }),
  ]);
  expect(r.status).toBe(202);
});
afterAll(async () => {
  await agent.stop();
});

describe("Invoices grouped by account: filters keep or leave out whole invoices", () => {
  test("a filter on a voucher row's field (rowType, account, amount) is refused at save, naming the field and the fields allowed", async () => {
    const filters = [
      { field: "rowType", op: "eq", value: "revenue" },
      { field: "account", op: "in", value: ["3010", "3011"] },
      { field: "amount", op: "gt", value: 0 },
    ];
    for (const [i, f] of filters.entries()) {
      const r = await call("PUT", `/api/v1/exports/templates/ledger-part-${i}`, ledger([f]));
      expect(r.status).toBe(422);
      expect(r.body.problems).toHaveLength(1);
      const p = r.body.problems[0];
      expect([p.code, p.field]).toEqual(["template.row_filter", "filters.0.field"]);
      expect(p.message).toContain(`"${f.field}" is a field of one voucher row`);
      expect(p.message).toContain("unbalanced");
      expect(p.hint).toContain("customerNumber");
      expect(p.hint).not.toContain("rowType");
    }
    expect((await call("GET", "/api/v1/exports/templates")).body.templates.map((t: any) => t.name)).not.toContain("ledger-part-0");
    // Nothing was exported or marked.
    expect((await call("GET", "/api/v1/exports/invoices/5001")).body.status).toBe("to_transfer");
  });

  test("a filter on an invoice's field writes each chosen invoice whole (balanced) and marks only those; SIE 4 takes the rest", async () => {
    expect(
      (await call("PUT", "/api/v1/exports/templates/ledger-100", ledger([{ field: "customerNumber", op: "eq", value: "100" }]))).status,
    ).toBe(201);
    const run = await call("POST", "/api/v1/exports/runs", { template: "ledger-100" });
    expect(run.status).toBe(201);
    expect(run.body.invoices.exported.sort()).toEqual(["5001", "5002"]);
    const csv: string = (await call("GET", run.body.files[0].download)).body;
    const rows = csv
      .trim()
      .split("\r\n")
      .slice(1)
      .map((l) => l.split(";"));
    for (const n of ["5001", "5002"]) {
      const own = rows.filter((r) => r[0] === n);
      expect(own.map((r) => r[1])).toContain("receivable");
      expect(own.reduce((s, r) => s + Math.round(Number(r[3]) * 100), 0)).toBe(0);
    }
    expect(rows.some((r) => r[0] === "5003")).toBe(false);
    // One export status per invoice, shared with SIE 4: the ones transferred are not in the SIE file, the other is.
    const sie = await call("POST", "/api/v1/exports/runs", { format: "sie4" });
    expect(sie.body.invoices.exported).toEqual(["5003"]);
  });
});
