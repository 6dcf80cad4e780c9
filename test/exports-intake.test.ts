// The intake types the exports need (users, time records, expense claims), and the export status that
// intake gives a finalized invoice in the same transaction.
import { describe, expect, test } from "bun:test";
import { economic } from "../connectors/economic/index.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Outbox } from "../agent/outbox.ts";
import { BASE, claim, count, creditNote, invoice, seed, statusOf, testDb, timeRecord, user } from "./exports-fixtures.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

const problemsOf = (events: unknown) => {
  const r = parseEvents(events);
  if (r.ok) throw new Error("expected a refusal");
  return r.events[0]!.problems;
};

describe("intake: users, time records and expense claims", () => {
  test("valid events get their entity and key", () => {
    const r = parseEvents([
      user(7, "Åse", "E7"),
      timeRecord("T-1", "2026-03-02", 7, 7.5),
      claim("EC-1", "2026-03-03", 7, [{ text: "Taxi", amount: 12500, vatAmount: 1339 }]),
    ]);
    expect(r.ok).toBe(true);
    if (r.ok)
      expect(r.events.map((e) => [e.entity, e.key])).toEqual([
        ["user", "7"],
        ["time_record", "T-1"],
        ["expense_claim", "EC-1"],
      ]);
  });

  test("invalid fields are named, with a hint", () => {
    const tr = problemsOf(timeRecord("T-1", "02.03.2026", 7, 25, { billable: "yes" }));
    expect(tr.map((p) => p.field).sort()).toEqual(["data.billable", "data.date", "data.hours"]);
    expect(tr.find((p) => p.field === "data.hours")!.message).toContain("at most 24 hours");
    const cl = problemsOf(
      claim("EC-1", "2026-03-03", 7, [
        { text: "Taxi", amount: 100, vatAmount: 200 },
        { text: "Hotell", amount: 10.5 },
      ]),
    );
    expect(cl.map((p) => p.field).sort()).toEqual(["data.lines.0.vatAmount", "data.lines.1.amount"]);
    expect(cl.find((p) => p.field === "data.lines.0.vatAmount")!.message).toContain("part of amount");
    expect(problemsOf(claim("EC-2", "2026-03-03", 7, [])).map((p) => p.field)).toEqual(["data.lines"]);
    const u = problemsOf({ id: "u", type: "user.upserted", data: { number: 1, name: "", email: "not-mail" } });
    expect(u.map((p) => p.field).sort()).toEqual(["data.email", "data.name"]);
    for (const list of [tr, cl, u]) for (const p of list) expect(p.hint).toBeTruthy();
  });

  test("they are stored as records but get no deliveries: no connector supports them", async () => {
    const { db } = testDb();
    const connector = economic.create("eco", economic.configSchema.parse({ app_secret_token: "x", agreement_grant_token: "y" }), {
      log: silentLogger,
    });
    const parsed = parseEvents([
      ...BASE(),
      timeRecord("T-1", "2026-03-02", 7, 7.5),
      claim("EC-1", "2026-03-03", 7, [{ text: "Taxi", amount: 12500 }]),
    ]);
    if (!parsed.ok) throw new Error("invalid");
    await new IntakeWriter(new Outbox(sqliteRunner(db.$client)), (e) => (connector.supports(e) ? ["eco"] : [])).submit(parsed.events);
    expect(
      await count(sqliteRunner(db.$client), `SELECT count(*) AS n FROM records WHERE entity IN ('user', 'time_record', 'expense_claim')`),
    ).toBe(4);
    expect((db.$client.query(`SELECT DISTINCT entity FROM deliveries ORDER BY entity`).all() as any[]).map((r) => r.entity)).toEqual([
      "customer",
      "project",
    ]);
  });
});

describe("intake sets the export status", () => {
  test("a finalized invoice and a credit note start as to_transfer; an update keeps the status", async () => {
    const { db, runner } = testDb();
    await seed(runner, [...BASE(), invoice(1001), creditNote(1002, 1001)]);
    expect([await statusOf(runner, 1001), await statusOf(runner, 1002)]).toEqual(["to_transfer", "to_transfer"]);
    expect(await count(runner, `SELECT count(*) AS n FROM invoice_export_status`)).toBe(2);
    db.$client.run(`UPDATE invoice_export_status SET status = 'transferred' WHERE invoice_key = '1001'`);
    await seed(runner, [invoice(1001, { heading: "changed" })]);
    expect(await statusOf(runner, 1001)).toBe("transferred");
    expect(await count(runner, `SELECT count(*) AS n FROM invoice_export_status`)).toBe(2);
  });

  test("the status is written in intake's transaction: a failed batch stores neither invoice nor status", async () => {
    const { db, runner } = testDb();
    // A trigger aborts the batch when the customer is stored, after the invoice and its status were written.
    db.$client.exec(
      `CREATE TRIGGER fail_on_customer AFTER INSERT ON records WHEN new.entity = 'customer' BEGIN SELECT RAISE(ABORT, 'injected'); END`,
    );
    await expect(seed(runner, [invoice(2001), { ...BASE()[0]!, id: "c-fail" }])).rejects.toThrow("injected");
    expect(await count(runner, `SELECT count(*) AS n FROM records WHERE entity = 'invoice'`)).toBe(0);
    expect(await count(runner, `SELECT count(*) AS n FROM invoice_export_status`)).toBe(0);
  });
});
