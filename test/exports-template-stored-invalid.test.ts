// A template saved by an earlier version whose checks were less strict (here: quote "never" with delimiter "-", which
// 017b49e refuses as template.delimiter_clash, since amounts' minus signs would become spaces) is still in the database
// after an upgrade. It must not vanish: it is listed with what is wrong and how to fix it, it can be downloaded to fix,
// running it says why it cannot run, and the agent's start says so in the log. Real agent, HTTP, SQLite file.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { databasePath, startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { createLogger, silentLogger } from "../agent/log.ts";
import { BASE, invoice } from "./exports-fixtures.ts";
import { tempDir } from "./helpers.ts";

const TOKEN = "stored-invalid-token-0123456789";
let agent: RunningAgent;
const logged: any[] = [];
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${agent.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (res.headers.get("content-type") ?? "").includes("json") ? await res.json() : await res.text() };
}

/** What the earlier version stored: the template as it saved it (zod's defaults filled in), under its name. */
const OLD = {
  name: "old-dash",
  title: "Journal with dashes",
  dataType: "invoices",
  delimiter: "-",
  encoding: "utf-8",
  lineEnding: "crlf",
  headerRow: true,
  quote: "never",
  quoteHeader: false,
  dateFormat: "yyyyMMdd",
  formulas: "neutralise",
  decimalSeparator: ".",
  trueText: "1",
  falseText: "0",
  fileName: "old-dash_{run}.csv",
  filters: [],
  columns: [
    { header: "Number", field: "number" },
    { header: "Gross", field: "grossAmount" },
  ],
};

beforeAll(async () => {
  const dir = tempDir("kontobro-stored-invalid-");
  const { config, targets } = validateConfig(
    { agent: { data_dir: dir }, http: { port: 0, api_token: TOKEN }, exports: { company_name: "Gammel AB", org_number: "556000-3333" } },
    {},
  );
  // The database as the earlier version left it: made and migrated by a first start, the template written as it stored it.
  agent = await startAgent(config, targets, silentLogger);
  await agent.stop();
  const db = new Database(databasePath(dir));
  db.run(`INSERT INTO export_templates (name, data_type, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`, [
    OLD.name,
    OLD.dataType,
    JSON.stringify(OLD),
    1_700_000_000_000,
    1_700_000_000_000,
  ]);
  db.close();
  agent = await startAgent(
    config,
    targets,
    createLogger("info", {}, (l) => logged.push(JSON.parse(l))),
  );
  expect((await call("POST", "/api/v1/events", [...BASE(), invoice(6001)])).status).toBe(202);
});
afterAll(async () => {
  await agent.stop();
});

describe("a saved template that no longer passes this version's checks", () => {
  test("is listed with what is wrong and how to fix it (API, status page)", async () => {
    const listed = (await call("GET", "/api/v1/exports/templates")).body.templates.find((t: any) => t.name === "old-dash");
    expect(listed).toMatchObject({ name: "old-dash", title: "Journal with dashes", dataType: "invoices", builtin: false });
    expect(listed.problems.map((p: any) => p.code)).toEqual(["template.needs_fixing", "template.delimiter_clash"]);
    expect(listed.problems[0].message).toContain('"old-dash"');
    expect(listed.problems[0].hint).toContain("kontobro export template show old-dash");
    expect(listed.problems[1].field).toBe("columns.1.field");
    const page = await (await fetch(`${agent.url}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(page).toContain("Templates that need fixing");
    expect(page).toContain("old-dash");
    expect(page).toContain("columns.1.field");
  });

  test("running or testing it says why it cannot, and nothing is exported or marked", async () => {
    const run = await call("POST", "/api/v1/exports/runs", { template: "old-dash" });
    expect(run.status).toBe(422);
    expect(run.body.problems.map((p: any) => p.code)).toEqual(["template.needs_fixing", "template.delimiter_clash"]);
    expect(run.body.problems[0].message).toContain("cannot be exported");
    expect((await call("POST", "/api/v1/exports/templates/old-dash/test")).status).toBe(422);
    expect((await call("GET", "/api/v1/exports/invoices/6001")).body.status).toBe("to_transfer");
  });

  test("it can still be read and downloaded, to fix it; saved again fixed, it runs", async () => {
    const got = await call("GET", "/api/v1/exports/templates/old-dash");
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ name: "old-dash", delimiter: "-", builtin: false });
    expect(got.body.problems.map((p: any) => p.code)).toContain("template.delimiter_clash");
    const file = await call("GET", "/api/v1/exports/templates/old-dash/file");
    expect(file.status).toBe(200);
    expect(file.body.template).toEqual(OLD);
    const { name: _, ...fixed } = { ...OLD, delimiter: ";" };
    expect((await call("PUT", "/api/v1/exports/templates/old-dash", fixed)).status).toBe(200);
    const listed = (await call("GET", "/api/v1/exports/templates")).body.templates.find((t: any) => t.name === "old-dash");
    expect(listed.problems).toBeUndefined();
    const run = await call("POST", "/api/v1/exports/runs", { template: "old-dash" });
    expect([run.status, run.body.invoices?.exported]).toEqual([201, ["6001"]]);
  });

  test("the agent's start says so in the log, naming the template and what is wrong", () => {
    const line = logged.find((l) => l.level === "warn" && String(l.msg).includes("old-dash"));
    expect(line).toBeDefined();
    expect(line.msg).toContain("cannot be exported until it is fixed");
    expect(JSON.stringify(line.problems)).toContain("columns.1.field");
  });
});
