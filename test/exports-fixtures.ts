// Test data for the exports: a real SQLite file (or a tenant on a real PostgreSQL server, test/engines.ts) filled
// through the real intake, and PSA events with awkward text (quotes, braces, backslashes, ø, €, long names).
import { join } from "node:path";
import { openDatabase, type Db } from "../agent/db/index.ts";
import { ExportsConfig, exportSettings, type ExportSettings } from "../agent/exports/config.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { Outbox } from "../agent/outbox.ts";
import { tempDir } from "./helpers.ts";
import { type SqlRunner, sqliteRunner } from "../agent/db/pg/runner.ts";

/** A SQLite file in `dir`: the file, and its runner (`runner`), which the exports take. */
export function testDb(dir = tempDir("kontobro-exports-")): { db: Db; runner: SqlRunner; dir: string; path: string } {
  const path = join(dir, "kontobro.db");
  const db = openDatabase(path);
  return { db, runner: sqliteRunner(db.$client), dir, path };
}

/** Stores events through intake exactly as the API does (validation, group commit, hooks). */
export async function seed(db: SqlRunner, events: unknown[]): Promise<void> {
  const parsed = parseEvents(events);
  if (!parsed.ok) throw new Error(`test events invalid: ${JSON.stringify(parsed.events)}`);
  await new IntakeWriter(new Outbox(db), () => []).submit(parsed.events);
}

export const settings = (over: Record<string, unknown> = {}): ExportSettings =>
  exportSettings(ExportsConfig.parse({ company_name: "Testbolaget AB", org_number: "556677-8899", ...over }));

let seq = 0;
const id = (p: string) => `${p}-${++seq}-${Math.random().toString(36).slice(2)}`;

export const AWKWARD = 'Bølgen "Nord" {AS} \\ 100 € – ' + "Lang ".repeat(30) + "slut";

export const customer = (n: number, name = `Kund ${n}`) => ({
  id: id("c"),
  type: "customer.upserted",
  data: { number: n, name, currency: "SEK", orgNumber: `55${n}-0000` },
});
export const project = (n: string, customerNumber: number, name = `Projekt ${n}`, department?: string) => ({
  id: id("p"),
  type: "project.upserted",
  data: { number: n, name, customerNumber, ...(department ? { department } : {}) },
});
export const user = (n: number, name: string, externalEmployeeNumber?: string) => ({
  id: id("u"),
  type: "user.upserted",
  data: { number: n, name, ...(externalEmployeeNumber ? { externalEmployeeNumber } : {}) },
});

export function invoice(n: number, extra: Record<string, unknown> = {}) {
  return {
    id: id("i"),
    type: "invoice.finalized",
    data: {
      number: n,
      psaId: `PSA-${n}`,
      customerNumber: 100,
      date: "2026-03-10",
      dueDate: "2026-04-10",
      currency: "SEK",
      lines: [
        { text: "Konsult", quantity: 7.5, unitPrice: 120000, kind: "hours" },
        { text: "Resa", quantity: 1, unitPrice: 45050, kind: "expenses", vatCode: "12" },
      ],
      ...extra,
    },
  };
}

export function creditNote(n: number, credited: number, extra: Record<string, unknown> = {}) {
  return {
    ...invoice(n, { creditedInvoiceNumber: credited, lines: [{ text: "Kreditering", quantity: 1, unitPrice: 120000 }], ...extra }),
    type: "invoice.credited",
  };
}

export const timeRecord = (rid: string, date: string, person: number, hours: number, extra: Record<string, unknown> = {}) => ({
  id: id("t"),
  type: "time_record.upserted",
  data: { id: rid, date, personNumber: person, projectNumber: "P-1", activity: "Utvikling", hours, approved: true, ...extra },
});

export const claim = (
  number: string,
  date: string,
  person: number,
  lines: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
) => ({
  id: id("e"),
  type: "expense_claim.upserted",
  data: { number, personNumber: person, date, projectNumber: "P-1", currency: "NOK", lines, ...extra },
});

/** A customer, a project and a user the other records refer to. */
export const BASE = () => [
  customer(100, AWKWARD),
  project("P-1", 100, 'Nybygg Ærø {fase "2"}', "200"),
  user(7, "Åse Øvrebø", "E7"),
  user(8, "Per Uten Nummer"),
];

export const statusOf = async (db: SqlRunner, n: number | string) =>
  (await db.get<{ status: string }>(`SELECT status FROM invoice_export_status WHERE invoice_key = ?1`, String(n)))?.status ?? null;

export const count = async (db: SqlRunner, sql: string) => (await db.get<{ n: number }>(sql))!.n;
