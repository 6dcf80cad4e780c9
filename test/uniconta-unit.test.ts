// Pure parts of the Uniconta connector: mapping, rules, config, the error envelope, the call budget and the
// expense cursor; the sandbox's OData filter engine; the agent's period counters.
import { describe, expect, test } from "bun:test";
import { openDatabase } from "../agent/db/index.ts";
import { customerQuantity } from "../agent/model.ts";
import { budgetGauges, periodCounters } from "../agent/target-counters.ts";
import { CallBudget, dayIn, nextMidnight } from "../connectors/uniconta/budget.ts";
import { describeUnicontaError, errorCodeOf, orChunks } from "../connectors/uniconta/client.ts";
import { UnicontaConfig } from "../connectors/uniconta/config.ts";
import { demoTarget, uniconta } from "../connectors/uniconta/index.ts";
import {
  countryName,
  debtorFields,
  differs,
  invoiceDepartment,
  lineNeeds,
  mergeEntity,
  orderFields,
  orderLines,
  projectFields,
  sameLines,
  sameNumber,
} from "../connectors/uniconta/map.ts";
import { expenseFilter, isExpense, parseExpenseCursor, paymentStatus, windowStart } from "../connectors/uniconta/pull-map.ts";
import { parseFilter, runQuery } from "../connectors/uniconta/sandbox/odata.ts";
import { BASE_CONFIG, creditNote, customer, invoice, memoryCounters, project, related } from "./uniconta-fixtures.ts";
import { tempDir } from "./helpers.ts";
import { join } from "node:path";

const cfg = (over: Record<string, unknown> = {}) =>
  UnicontaConfig.parse({ api_url: "http://uc.test", gateway_url: "http://gw.test", ...BASE_CONFIG, ...over });

describe("map", () => {
  test("a customer: only what the PSA sent, ISO countries as Uniconta's names, org number without spaces", () => {
    const d = debtorFields(customer(), cfg(), true);
    expect(d).toMatchObject({
      Account: "10042",
      CompanyRegNo: "12345678",
      Country: "Denmark",
      Address1: "Vesterbrogade 1",
      Address2: "2. sal",
      Group: "ERHVERV",
      Blocked: false,
    });
    expect("Payment" in d).toBe(false);
    expect(debtorFields(customer(), cfg({ payment_terms: "NK14" }), true).Payment).toBe("NK14");
    expect(debtorFields(customer(), cfg({ payment_terms: "NK14" }), false).Payment).toBeUndefined(); // terms set in Uniconta are kept
    const bare = debtorFields(
      customer({ website: undefined, phone: undefined, fax: undefined, addresses: [], contacts: [], group: undefined }),
      cfg({ default_customer_group: "PRIV" }),
      false,
    );
    expect(Object.keys(bare).sort()).toEqual(
      ["Account", "Blocked", "ContactEmail", "CompanyRegNo", "Currency", "Group", "InvoiceEmail", "Name", "VatNumber"].sort(),
    );
    expect(bare.Group).toBe("PRIV");
    expect([countryName("NO"), countryName("GB"), countryName("XX")]).toEqual(["Norway", "UnitedKingdom", undefined]);
  });

  test("an update merges into what Uniconta has and is skipped when nothing the PSA sent changed", () => {
    const existing = { Account: "10042", Name: "Old", CreditMax: 5000, RowId: 7 };
    const mapped = { Account: "10042", Name: "New" };
    expect(mergeEntity(existing, mapped)).toEqual({ Account: "10042", Name: "New", CreditMax: 5000, RowId: 7 });
    expect(differs(existing, mapped)).toBe(true);
    expect(differs({ ...existing, Name: "New" }, mapped)).toBe(false);
  });

  test("a project: dates as Uniconta date-times, closed as Blocked, the department by the configured choice", () => {
    expect(projectFields(project({ status: "closed" }), cfg({ project_department: "project", project_group: "TIMER" }), true)).toEqual({
      Number: "P24017",
      Name: "ERP migration",
      Account: "10042",
      StartDate: "2026-03-01T00:00:00",
      Blocked: true,
      Dimension1: "KBH",
      Group: "TIMER",
    });
    expect(
      projectFields(
        project({ tags: { Afd: "AAR" } }),
        cfg({ project_department: "tag_group", project_department_tag_group: "Afd", department_dimension: 3 }),
        false,
      ).Dimension3,
    ).toBe("AAR");
    expect(projectFields(project(), cfg(), false).Dimension1).toBeUndefined();
  });

  test("the invoice department: none, invoice, invoice tag group, project, project tag group", () => {
    const inv = invoice({ department: "ODE", tags: { Afd: "AAR" } });
    const p = project({ tags: { Afd: "KBH" }, department: "SALG" });
    const d = (invoice_department: string) => invoiceDepartment(inv, p, cfg({ invoice_department, invoice_department_tag_group: "Afd" }));
    expect(["none", "invoice", "invoice_tag_group", "project", "project_tag_group"].map(d)).toEqual([
      undefined,
      "ODE",
      "AAR",
      "SALG",
      "KBH",
    ]);
  });

  test("an order: the reference field carries kontobro's marker, the PSA's references the others; lines with the customer's quantities", () => {
    const c = cfg();
    expect(orderFields(invoice(), { cfg: c, project: null })).toEqual({
      Account: "10042",
      Project: "P24017",
      InvoiceDate: "2026-04-30T00:00:00",
      DueDate: "2026-05-14T00:00:00",
      Currency: "DKK",
      PricesInclVat: false,
      OurRef: "kontobro:psa-inv-20001",
      YourRef: "Ole Olsen",
      Remark: "April 2026",
      PaymentId: "20001",
    });
    const req = orderFields(invoice({ paymentId: "+71<0000020001>" }), { cfg: cfg({ reference_field: "Requisition" }), project: null });
    expect(req).toMatchObject({
      Requisition: "kontobro:psa-inv-20001",
      OurRef: "Kari Nordmann",
      YourRef: "Ole Olsen",
      PaymentId: "+71<0000020001>",
    });
    const cn = creditNote();
    expect(orderFields(cn, { cfg: c, project: null })).toMatchObject({ Payment: "NK0", DueDate: "2026-04-30T00:00:00" });
    const lines = orderLines(cn, 101, { cfg: c, project: null });
    expect(lines.map((l) => l.Qty)).toEqual(cn.lines.map((l) => customerQuantity(cn, l)));
    expect(lines.map((l) => l.Qty)).toEqual([-37.5, -1]);
    expect(lines[0]).toEqual({
      OrderNumber: 101,
      Text: "Konsulenttimer april",
      Qty: -37.5,
      Price: 1250,
      Vat: "U25",
      PostingAccount: "1000",
      Project: "P24017",
      PrCategory: "TIMER",
    });
    expect(orderLines(invoice({ projectNumber: undefined }), 1, { cfg: c, project: null })[0]!.PrCategory).toBeUndefined();
  });

  test("a line's own account, VAT code and category win over the project's tag and the kind's default", () => {
    const c = cfg({ project_category_tag_group: "Kat" });
    const p = project({ tags: { Kat: "REJSE" } });
    expect(lineNeeds({ kind: "hours" }, p, c)).toEqual({ account: "1000", vat: "U25", category: "REJSE", item: undefined });
    expect(lineNeeds({ kind: "hours", account: "1010", vatCode: "U0", category: "VARER" }, p, c)).toMatchObject({
      account: "1010",
      vat: "U0",
      category: "VARER",
    });
    expect(lineNeeds({ kind: "products" }, null, c).category).toBe("VARER");
  });

  test("lines compare by content and order; numbers compare as numbers", () => {
    const wanted = orderLines(invoice(), 5, { cfg: cfg(), project: null });
    expect(
      sameLines(
        wanted.map((l, i) => ({ ...l, LineNumber: i + 1, RowId: 100 + i })),
        wanted,
      ),
    ).toBe(true);
    expect(
      sameLines(
        [...wanted].reverse().map((l, i) => ({ ...l, LineNumber: 2 - i })),
        wanted,
      ),
    ).toBe(true);
    expect(sameLines(wanted.slice(1), wanted)).toBe(false);
    expect(sameLines([{ ...wanted[0], Qty: 1 }, wanted[1]!], wanted)).toBe(false);
    expect([sameNumber(20001, "20001"), sameNumber("020001", 20001), sameNumber(20002, "20001")]).toEqual([true, true, false]);
  });
});

describe("rules", () => {
  test("customer group, project customer, invoice numbers, lines, credit-note terms, signs", () => {
    const c = uniconta.create("t", cfg(), { log: { child: () => null } as any });
    expect(c.validate("customer", customer())).toEqual([]);
    expect(c.validate("customer", customer({ group: undefined }))[0]!.code).toBe("uniconta.customer_group_missing");
    expect(c.validate("customer", customer({ number: "1".repeat(21) }))[0]!.code).toBe("uniconta.number_too_long");
    expect(c.validate("invoice", invoice())).toEqual([]);
    expect(c.validate("invoice", invoice({ number: "INV-1" })).map((p) => p.code)).toEqual(["uniconta.invoice_number_not_numeric"]);
    expect(c.validate("invoice", creditNote())).toEqual([]);
    const noAccounts = uniconta.create("t", cfg({ accounts: { hours: "1000" } }), { log: { child: () => null } as any });
    const [p] = noAccounts.validate("invoice", invoice());
    expect(p).toMatchObject({ code: "uniconta.line_account_missing", field: "lines.1.account" });
    expect(p!.message).toContain('Line 2 (expenses, "Hotel Bergen")');
    expect(p!.hint).toContain("accounts.expenses");
    // Without a project, lines need no category.
    const noCats = uniconta.create("t", cfg({ categories: {} }), { log: { child: () => null } as any });
    expect(noCats.validate("invoice", invoice({ projectNumber: undefined }))).toEqual([]);
    expect(noCats.validate("invoice", invoice(), related({ project: project() })).map((x) => x.code)).toEqual([
      "uniconta.line_category_missing",
      "uniconta.line_category_missing",
    ]);
  });
});

describe("config", () => {
  test("gateway posting needs its URL; tag-group choices need the group; lists hold at most 40; defaults", () => {
    const base = { company_id: 1, username: "u", password: "p" };
    expect(UnicontaConfig.safeParse({ ...base, posting: "gateway" }).error?.issues[0]?.path).toEqual(["gateway_url"]);
    expect(UnicontaConfig.safeParse({ ...base, invoice_department: "project_tag_group" }).error?.issues[0]?.path).toEqual([
      "invoice_department_tag_group",
    ]);
    expect(
      UnicontaConfig.safeParse({ ...base, expenses: { accounts: Array.from({ length: 41 }, (_, i) => String(i)).join(",") } }).success,
    ).toBe(false);
    const d = UnicontaConfig.parse(base);
    expect(d).toMatchObject({
      api_url: "https://odata.uniconta.com",
      posting: "order_only",
      reference_field: "OurRef",
      calls_per_day: 5000,
      reserve_for_pushes: 1000,
      request_timeout_ms: 30000,
      requests_per_second: 5,
      burst: 10,
      expenses: { number_series: [], accounts: [], overlap_days: 7 },
    });
    expect(UnicontaConfig.parse({ ...base, expenses: { number_series: "KOB, KASSE" } }).expenses.number_series).toEqual(["KOB", "KASSE"]);
    expect(UnicontaConfig.safeParse({ ...base, unknown_key: 1 }).success).toBe(false);
    // The demo's target validates, and names the sandbox's gateway.
    const { name, kind, ...settings } = demoTarget("http://127.0.0.1:9/");
    expect([name, kind]).toEqual(["uniconta-demo", "uniconta"]);
    expect(UnicontaConfig.parse(settings).gateway_url).toBe("http://127.0.0.1:9/gateway");
  });
});

describe("Uniconta's errors", () => {
  test("ErrorCodes names in object bodies, bare names (a gateway's 500) and messages; hints per code", () => {
    expect(errorCodeOf({ ErrorCode: "KeyExists", Message: "x" })).toBe("KeyExists");
    expect(errorCodeOf('"FieldCannotBeBlank"')).toBe("FieldCannotBeBlank");
    expect(errorCodeOf("AccountIsMissing")).toBe("AccountIsMissing");
    expect(errorCodeOf({ Message: "Failed: CouldNotFind on Account" })).toBe("CouldNotFind");
    expect(errorCodeOf({ Message: "something else" })).toBeUndefined();
    const p = describeUnicontaError(
      400,
      { ErrorCode: "NoRights", Message: "no", Field: "Account" },
      "POST",
      "/api/Entities/Insert/DebtorClient",
    );
    expect(p).toMatchObject({ code: "uniconta.NoRights", field: "Account" });
    expect(p.message).toBe("Uniconta refused POST /api/Entities/Insert/DebtorClient: NoRights: no");
    expect(p.hint).toContain("Integration or Automation package");
    expect(describeUnicontaError(401, null, "GET", "/x")).toMatchObject({
      code: "uniconta.http_401",
      hint: expect.stringContaining("company_id"),
    });
    expect(orChunks("A", [1, 2, "x'y"], 2)).toEqual(["(A eq 1 or A eq 2)", "(A eq 'x''y')"]);
  });
});

describe("the call budget", () => {
  test("counted before sending, never past the limit; pulls stop at the reserve; a new day starts at 0", () => {
    let now = Date.parse("2026-03-30T21:59:00Z"); // 23:59 in Copenhagen (summer time)
    const counters = memoryCounters();
    const b = new CallBudget(
      { limit: 100, reserve: 30, timezone: "Europe/Copenhagen", gatewayPostCalls: 3, gatewaySessionMinutes: 10 },
      counters,
      () => now,
    );
    b.spend(69, "x");
    expect(b.pullAllowed(1).ok).toBe(true);
    expect(b.pullAllowed(2)).toMatchObject({ ok: false, reason: expect.stringContaining("31 of today's 100") });
    b.spend(31, "x");
    let err: any;
    try {
      b.spend(1, "order 7");
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ kind: "retryable", code: "uniconta.call_budget_spent" });
    expect(err.message).toContain("100 of 100");
    expect(err.retryAfterMs).toBe(60_000 + 60_000); // a minute to midnight, plus a minute
    expect(b.report("t")).toMatchObject({ used: 100, limit: 100, period: "2026-03-30", note: expect.stringContaining("spent") });
    // Another process (or a restart) sees the stored count.
    const again = new CallBudget(
      { limit: 100, reserve: 30, timezone: "Europe/Copenhagen", gatewayPostCalls: 3, gatewaySessionMinutes: 10 },
      counters,
      () => now,
    );
    expect(again.used()).toBe(100);
    now += 2 * 60_000;
    expect([b.used(), b.report("t").period]).toEqual([0, "2026-03-31"]);
    // The gateway's logins: 2 more calls when its 10-minute session has expired.
    expect(b.gatewayCost()).toBe(5);
    b.gatewayUsed(5);
    expect(b.gatewayCost()).toBe(3);
    now += 10 * 60_000;
    expect(b.gatewayCost()).toBe(5);
  });

  test("midnight in the quota's time zone, across daylight saving changes", () => {
    expect(new Date(nextMidnight("Europe/Copenhagen", Date.parse("2026-03-28T12:00:00Z"))).toISOString()).toBe("2026-03-28T23:00:00.000Z");
    expect(new Date(nextMidnight("Europe/Copenhagen", Date.parse("2026-03-29T12:00:00Z"))).toISOString()).toBe("2026-03-29T22:00:00.000Z");
    expect(new Date(nextMidnight("Europe/Copenhagen", Date.parse("2026-10-25T12:00:00Z"))).toISOString()).toBe("2026-10-25T23:00:00.000Z");
    expect(dayIn("Europe/Copenhagen", Date.parse("2026-03-30T22:30:00Z"))).toBe("2026-03-31");
  });

  test("the agent's period counters: atomic adds in the database, a new period starts at 0; budgets as gauges", () => {
    const db = openDatabase(join(tempDir(), "k.db"));
    try {
      const a = periodCounters(db, "uc"),
        b = periodCounters(db, "uc"),
        other = periodCounters(db, "eco");
      expect(a.add("calls", "2026-03-30", 5)).toBe(5);
      expect(b.add("calls", "2026-03-30", 2)).toBe(7);
      expect(other.get("calls", "2026-03-30")).toBe(0);
      expect(a.get("calls", "2026-03-31")).toBe(0);
      expect(a.add("calls", "2026-03-31", 1)).toBe(1);
      expect(b.get("calls", "2026-03-30")).toBe(0);
    } finally {
      db.$client.close();
    }
    const gauges = budgetGauges(
      new Map([
        ["uc", { budgets: () => [{ name: "calls_per_day", title: "t", used: 12, limit: 5000, period: "d" }] }],
        ["eco", {}],
      ]),
    );
    expect(gauges.map((g) => [g.name, g.rows])).toEqual([
      ["kontobro_target_budget_used", [{ labels: { target: "uc", budget: "calls_per_day" }, value: 12 }]],
      ["kontobro_target_budget_limit", [{ labels: { target: "uc", budget: "calls_per_day" }, value: 5000 }]],
    ]);
  });
});

describe("expense pull", () => {
  test("the cursor: start date, window moving forward with an overlap, later postings by JournalPostedId, resume key", () => {
    const c0 = parseExpenseCursor(null, "2026-03-01", "2026-03-20");
    expect(c0).toEqual({ v: 1, start: "2026-03-01", floor: 0 });
    expect(windowStart(c0, "2026-03-20", 7)).toBe("2026-03-01");
    expect(parseExpenseCursor(null, undefined, "2026-03-20").start).toBe("2026-03-20");
    const done = { v: 1 as const, start: "2026-03-01", done: "2026-03-20", floor: 88190 };
    expect(windowStart(done, "2026-03-25", 7)).toBe("2026-03-13");
    expect(windowStart({ ...done, done: "2026-03-03" }, "2026-03-25", 7)).toBe("2026-03-01"); // never before the start
    const run = { since: "2026-03-13", until: "2026-03-25", floor: 88190, max: 88190 };
    expect(expenseFilter(done, run, [])).toBe("Date ge 2026-03-01 and (Date ge 2026-03-13 or JournalPostedId gt 88190)");
    expect(expenseFilter(c0, { ...run, floor: 0, after: [88191, 5512, 1] }, ["KOB", "KASSE"])).toBe(
      "Date ge 2026-03-01 and Date ge 2026-03-13 and (NumberSerie eq 'KOB' or NumberSerie eq 'KASSE') and (JournalPostedId gt 88191 or (JournalPostedId eq 88191 and (Voucher gt 5512 or (Voucher eq 5512 and LineNumber gt 1))))",
    );
    expect(() => parseExpenseCursor("{bad", undefined, "2026-03-20")).toThrow("cannot be read");
    expect(parseExpenseCursor(JSON.stringify(done), "2026-03-10", "2026-03-20").start).toBe("2026-03-10"); // a later start_date applies
  });

  test("costs only: not time registrations, not invoiced revenue, not rows without a project", () => {
    expect(isExpense({ Project: "P1", CostAmount: 10, CatType: "Expenses" })).toBe(true);
    expect(isExpense({ Project: "P1", CostAmount: 10, IsTimeJournal: true })).toBe(false);
    expect(isExpense({ Project: "P1", CostAmount: 0, SalesAmount: 100, CatType: "Revenue" })).toBe(false);
    expect(isExpense({ CostAmount: 10 })).toBe(false);
  });

  test("payment status from the invoice and its debtor transactions", () => {
    const inv = { InvoiceNumber: 1, TotalAmount: 125, DueDate: "2026-05-14T00:00:00" };
    expect(paymentStatus(inv, [{ PostType: "Invoice", Amount: 125, Open: true }], "2026-05-01")).toEqual({
      status: "unpaid",
      remainder: 125,
    });
    expect(
      paymentStatus(
        inv,
        [
          { PostType: "Invoice", Amount: 125, Open: true },
          { PostType: "Payment", Amount: -25 },
        ],
        "2026-05-20",
      ),
    ).toEqual({ status: "overdue", remainder: 100 });
    expect(
      paymentStatus(
        inv,
        [
          { PostType: "Invoice", Amount: 125, Open: false },
          { PostType: "Payment", Amount: -125 },
        ],
        "2026-05-20",
      ),
    ).toEqual({ status: "paid", remainder: 0 });
  });
});

describe("the sandbox's OData filters", () => {
  const rows = [
    { Account: "1", Name: "O'Brien", Balance: 10, Date: "2026-04-12T00:00:00", Open: true },
    { Account: "2", Name: "Bo", Balance: 0, Date: "2026-03-01T00:00:00", Open: false },
    { Account: "3", Name: "Ann", Balance: 5 },
  ];
  test("comparisons, and/or/not, quoted strings, dates, booleans, null; $orderby, $top, $skip, $select", () => {
    const q = (f: string, extra: Record<string, string> = {}) =>
      runQuery(rows, { $filter: f, ...extra }, { skipSupported: true }).map((r) => r.Account);
    expect(q("Name eq 'O''Brien'")).toEqual(["1"]);
    expect(q("Balance gt 0 and not (Account eq '3')")).toEqual(["1"]);
    expect(q("Date ge 2026-04-01")).toEqual(["1"]);
    expect(q("Date lt 2026-04-01 or Open eq true")).toEqual(["1", "2"]);
    expect(q("Date eq null")).toEqual(["3"]);
    expect(runQuery(rows, { $orderby: "Balance desc", $top: "2", $select: "Account" }, { skipSupported: true })).toEqual([
      { Account: "1" },
      { Account: "3" },
    ]);
    expect(runQuery(rows, { $orderby: "Name", $skip: "1" }, { skipSupported: true }).map((r) => r.Name)).toEqual(["Bo", "O'Brien"]);
    expect(() => runQuery(rows, { $skip: "1" }, { skipSupported: false })).toThrow("$skip");
  });

  test("at most 40 ORs in one predicate (Uniconta's limit); malformed filters are refused", () => {
    const ors = (n: number) => Array.from({ length: n }, (_, i) => `Account eq '${i}'`).join(" or ");
    expect(() => parseFilter(ors(40))).not.toThrow();
    expect(() => parseFilter(ors(41))).toThrow("maximum number of OR's");
    expect(() => parseFilter(`(${ors(30)}) and (${ors(30)})`)).not.toThrow();
    expect(() => parseFilter(`(${ors(30)}) or (${ors(11)})`)).toThrow("41");
    expect(() => parseFilter("Name eq 'open")).toThrow("Unterminated");
    expect(() => parseFilter("Name like 'x'")).toThrow('Unknown operator "like"');
  });
});
