// The exports over real HTTP on loopback: a running agent, events through /api/v1/events, then
// /api/v1/exports/* and the status page's section, forms and downloads.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import { pruneOnce } from "../agent/retention.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { BASE, creditNote, invoice, timeRecord } from "./exports-fixtures.ts";
import { tempDir } from "./helpers.ts";

const TOKEN = "exports-token-0123456789";
let agent: RunningAgent;
const auth = { authorization: `Bearer ${TOKEN}` };
async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; res: Response }> {
  const res = await fetch(`${agent.url}${path}`, {
    method,
    headers: { ...auth, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const type = res.headers.get("content-type") ?? "";
  return { status: res.status, body: type.includes("json") && !res.headers.get("content-disposition") ? await res.json() : null, res };
}

beforeAll(async () => {
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: tempDir("kontobro-exports-api-") },
      http: { port: 0, api_token: TOKEN },
      exports: { company_name: "API-bolaget AB", org_number: "556000-1111" },
    },
    {},
  );
  agent = await startAgent(config, targets, silentLogger);
  const r = await call("POST", "/api/v1/events", [
    ...BASE(),
    invoice(3001),
    invoice(3002),
    invoice(3003),
    creditNote(3004, 3001),
    invoice(3010),
    timeRecord("T1", "2026-03-02", 7, 7.5),
    timeRecord("T2", "2026-03-09", 7, 3),
  ]);
  expect(r.status).toBe(202);
});
afterAll(async () => {
  await agent.stop();
});

describe("exports API", () => {
  test("requires the token", async () => {
    for (const path of ["/api/v1/exports/files", "/api/v1/exports/templates", "/api/v1/exports/files/1/download"]) {
      expect((await fetch(`${agent.url}${path}`)).status).toBe(401);
    }
  });

  test("export status: one invoice, a range, an invalid transition (409), an unknown one (404), a bad body (422)", async () => {
    expect((await call("GET", "/api/v1/exports/invoices/3002")).body).toMatchObject({
      number: "3002",
      status: "to_transfer",
      changedBy: "finalized",
    });
    expect((await call("POST", "/api/v1/exports/invoices/status", { number: 3010, status: "do_not_transfer" })).body).toMatchObject({
      ok: true,
      changed: ["3010"],
    });
    const range = await call("POST", "/api/v1/exports/invoices/status", { from: "3002", to: "3003", status: "transferred" });
    expect(range.body.changed).toEqual(["3002", "3003"]);
    const bad = await call("POST", "/api/v1/exports/invoices/status", { from: 3001, to: 3010, status: "do_not_transfer" });
    expect(bad.status).toBe(409);
    expect(bad.body.problems.map((p: any) => p.message).join("\n")).toContain("Invoice 3002 has already been transferred");
    expect((await call("POST", "/api/v1/exports/invoices/status", { number: 999, status: "transferred" })).status).toBe(404);
    const invalid = await call("POST", "/api/v1/exports/invoices/status", { number: 3001, status: "booked" });
    expect(invalid.status).toBe(422);
    expect(invalid.body.problems[0].field).toBe("status");
    expect((await call("POST", "/api/v1/exports/invoices/status", "{oops")).status).toBe(400);
    const back = await call("POST", "/api/v1/exports/invoices/status", { from: 3002, to: 3003, status: "to_transfer" });
    expect(back.body.changed).toEqual(["3002", "3003"]);
    const list = await call("GET", "/api/v1/exports/invoices?status=to_transfer");
    expect(list.body.invoices.map((i: any) => i.number)).toEqual(["3004", "3003", "3002", "3001"]);
    expect(list.body.counts).toEqual({ to_transfer: 4, transferred: 0, do_not_transfer: 1 });
  });

  test("SIE 4 export: 201 with the file; downloadable again byte for byte; invoices marked; the next run finds nothing", async () => {
    const r = await call("POST", "/api/v1/exports/runs", { format: "sie4" });
    expect(r.status).toBe(201);
    expect(r.body.invoices.exported.sort()).toEqual(["3001", "3002", "3003", "3004"]);
    const file = r.body.files[0];
    const dl = await fetch(`${agent.url}${file.download}`, { headers: auth });
    expect(dl.headers.get("content-disposition")).toBe(`attachment; filename="${file.fileName}"`);
    const bytes = new Uint8Array(await dl.arrayBuffer());
    expect(bytes.length).toBe(file.size);
    expect(new Bun.CryptoHasher("sha256").update(bytes).digest("hex")).toBe(file.sha256);
    expect(readSie(bytes).document.vouchers).toHaveLength(4);
    const meta = await call("GET", `/api/v1/exports/files/${file.id}`);
    expect(meta.body.invoices).toEqual(["3001", "3002", "3003", "3004"]);
    expect((await call("GET", "/api/v1/exports/invoices/3001")).body).toMatchObject({
      status: "transferred",
      changedBy: "export",
      exportFileId: file.id,
    });
    const again = await call("POST", "/api/v1/exports/runs", { format: "sie4" });
    expect([again.status, again.body.message, again.body.files]).toEqual([200, "No invoices to transfer.", []]);
    expect((await call("GET", "/api/v1/exports/files/99999/download")).status).toBe(404);
  });

  test("template export by period: the response says rows repeat, and names an overlap", async () => {
    const first = await call("POST", "/api/v1/exports/runs", { template: "hours-per-employee", from: "2026-03-01", to: "2026-03-31" });
    expect(first.status).toBe(201);
    expect(first.body.warnings.map((w: any) => w.code)).toEqual(["exports.no_exported_flag"]);
    const second = await call("POST", "/api/v1/exports/runs", { template: "hours-per-employee", from: "2026-03-08", to: "2026-03-14" });
    expect(second.body.warnings.map((w: any) => w.code)).toEqual(["exports.no_exported_flag", "exports.period_overlap"]);
    expect(second.body.warnings[1].message).toContain("were already exported");
    const missing = await call("POST", "/api/v1/exports/runs", { template: "hours-per-employee" });
    expect([missing.status, missing.body.problems[0].code]).toEqual([422, "exports.period_required"]);
    const badDate = await call("POST", "/api/v1/exports/runs", { format: "sie4", from: "31.03.2026" });
    expect([badDate.status, badDate.body.problems[0].field]).toEqual([422, "from"]);
    expect((await call("POST", "/api/v1/exports/runs", { template: "nope" })).status).toBe(404);
    const files = (await call("GET", "/api/v1/exports/files")).body.files;
    expect(files.map((f: any) => f.kind)).toEqual(["template", "template", "sie4"]);
  });

  test("templates: list, get, save (422 with field problems when invalid), download as a file, import it back, test, delete", async () => {
    const list = (await call("GET", "/api/v1/exports/templates")).body.templates;
    expect(list.find((t: any) => t.name === "xledger-ar10")).toMatchObject({
      builtin: true,
      guessedColumns: 12,
      dataType: "invoices_by_account",
    });
    const invalid = await call("PUT", "/api/v1/exports/templates/mine", {
      dataType: "users",
      columns: [{ header: "x", field: "salary" }],
      filters: [{ field: "active", op: "gt", value: true }],
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body.problems.map((p: any) => p.field)).toEqual(["columns.0.field", "filters.0.op"]);
    const body = {
      title: "Brukere",
      dataType: "users",
      encoding: "cp865",
      columns: [
        { header: "Nr", field: "number" },
        { header: "Navn", field: "name" },
      ],
    };
    expect((await call("PUT", "/api/v1/exports/templates/mine", body)).status).toBe(201);
    expect((await call("PUT", "/api/v1/exports/templates/xledger-ar10", body)).status).toBe(409);
    const file = await fetch(`${agent.url}/api/v1/exports/templates/mine/file`, { headers: auth });
    expect(file.headers.get("content-disposition")).toContain("mine.kontobro-template.json");
    const text = await file.text();
    expect((await call("DELETE", "/api/v1/exports/templates/mine")).status).toBe(204);
    expect((await call("GET", "/api/v1/exports/templates/mine")).status).toBe(404);
    const imported = await call("POST", "/api/v1/exports/templates/import", text);
    expect([imported.status, imported.body]).toEqual([201, { name: "mine", created: true }]);
    expect((await call("POST", "/api/v1/exports/templates/import", text)).status).toBe(409);
    expect((await call("POST", "/api/v1/exports/templates/import?replace=true", text)).status).toBe(200);
    const test = await call("POST", "/api/v1/exports/templates/mine/test", { rows: 1 });
    expect(test.body).toMatchObject({ ok: true, header: ["Nr", "Navn"], rows: [["7", "Åse Øvrebø"]], totalRows: 2 });
    const unsaved = await call("POST", "/api/v1/exports/templates/test", {
      template: { ...body, name: "draft", columns: [{ header: "N", field: "nme" }] },
    });
    expect([unsaved.status, unsaved.body.problems[0].field]).toEqual([422, "template.columns.0.field"]);
    const run = await call("POST", "/api/v1/exports/runs", { template: "mine" });
    const bytes = new Uint8Array(await (await fetch(`${agent.url}${run.body.files[0].download}`, { headers: auth })).arrayBuffer());
    expect([...bytes.slice(bytes.indexOf(0x9b) - 2, bytes.indexOf(0x9b) + 1)]).toEqual([0x65, 0x62, 0x9b]); // "ebø" (Øvrebø): ø is 0x9B in CP865
    expect(bytes.includes(0x9d)).toBe(true); // Ø
    expect((await call("GET", "/api/v1/exports/data-types")).body.dataTypes.map((d: any) => d.name)).toContain("time_records_grouped");
  });
});

describe("status page", () => {
  test("shows counts, the files with download links, and the forms", async () => {
    const page = await (await fetch(`${agent.url}/`)).text();
    expect(page).toContain("Exports to accounting");
    expect(page).toMatch(/data-export-status="transferred">\d+</);
    expect(page).toContain('action="/ui/exports/status"');
    expect(page).toContain('action="/ui/exports/run"');
    const id = /href="\/ui\/exports\/files\/(\d+)\/download"/.exec(page)![1];
    const dl = await fetch(`${agent.url}/ui/exports/files/${id}/download`);
    expect(dl.status).toBe(200);
    expect((await dl.arrayBuffer()).byteLength).toBeGreaterThan(0);
  });

  test("the forms change a status and run an export; cross-site posts are refused", async () => {
    await call("POST", "/api/v1/events", [invoice(4001), invoice(4002)]);
    const form = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${agent.url}/ui/exports/status`, { method: "POST", body: new URLSearchParams(fields), headers });
    expect((await form({ number: "4001", status: "do_not_transfer" }, { origin: "http://evil.example" })).status).toBe(403);
    const changed = await form({ from: "4001", to: "4002", status: "do_not_transfer" });
    expect(changed.status).toBe(200);
    expect(await changed.text()).toContain('2 invoice(s) set to "Do not transfer": 4001, 4002');
    const refused = await form({ number: "3001", status: "do_not_transfer" });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain("has already been transferred");
    await form({ number: "4002", status: "to_transfer" });
    const run = await fetch(`${agent.url}/ui/exports/run`, { method: "POST", body: new URLSearchParams({ what: "sie4" }) });
    const html = await run.text();
    expect(html).toContain("1 invoice(s) marked as transferred");
    expect(html).toMatch(/href="\/ui\/exports\/files\/\d+\/download"/);
  });
});

describe("a file whose content retention removed", () => {
  test("its download answers 410 exports.file_pruned, saying where the copy is, in the API and on the status page", async () => {
    const files = (await call("GET", "/api/v1/exports/files")).body.files as { id: number; size: number }[];
    const oldest = files[files.length - 1]!;
    const now = Date.now();
    agent.db.$client.run(`UPDATE export_files SET created_at = ?1 WHERE id = ?2`, [now - 100 * 86_400_000, oldest.id]);
    expect((await pruneOnce(agent.db, { retentionDays: 90, now: () => now })).exportFiles).toBe(1);
    const api = await call("GET", `/api/v1/exports/files/${oldest.id}/download`);
    // Before: 200 with an empty body (or, before retention pruned them, the file for ever).
    expect(api.status).toBe(410);
    expect(api.body).toMatchObject({ error: "gone", code: "exports.file_pruned" });
    expect(api.body.hint).toContain("exports.output_dir");
    expect((await call("GET", `/api/v1/exports/files/${oldest.id}`)).body).toMatchObject({
      id: oldest.id,
      size: oldest.size,
      contentPruned: true,
    });
    expect((await fetch(`${agent.url}/`).then((r) => r.text())).includes("content removed after retention_days")).toBe(true);
    const page = await fetch(`${agent.url}/ui/exports/files/${oldest.id}/download`);
    expect(page.status).toBe(410);
    expect(await page.text()).toContain("its content was removed");
  });
});
