// Export templates, pure parts: value formats, encodings, validation, filters, rendering, template files.
import { describe, expect, test } from "bun:test";
import { CreditNote, Invoice, type InvoiceLike } from "../agent/model.ts";
import { SieInvoiceConfig, invoiceToVoucher } from "../formats/sie4/invoices.ts";
import { builtinTemplate, builtinTemplates } from "../formats/templates/builtin.ts";
import { parseTemplate, type Template, templateFromFile, templateToFile, type TemplateInput } from "../formats/templates/definition.ts";
import { decodeText, encodeText, toEncodable } from "../formats/encoding.ts";
import { checkDateFormat, csvCell, formatDate, formatDecimal, formatMoney } from "../formats/templates/format.ts";
import { invoiceNumbersIn, namesInvoices, writtenNumber } from "../formats/templates/read.ts";
import { renderTemplate, templateFileName, templateFileNameRegExp } from "../formats/templates/render.ts";
import { buildRows, type ExportData } from "../formats/templates/rows.ts";

const tpl = (over: Partial<TemplateInput>): Template => {
  const r = parseTemplate({ name: "t", dataType: "customers", columns: [{ header: "No", field: "number" }], ...over });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.template;
};
const fieldsOf = (input: unknown) => {
  const r = parseTemplate(input);
  if (r.ok) throw new Error("expected problems");
  return r.problems.map((p) => p.field);
};
const empty: ExportData = { customers: new Map(), projects: new Map(), users: new Map() };

describe("value formats", () => {
  test("dates", () => {
    expect(formatDate("2026-03-09", "yyyyMMdd")).toBe("20260309");
    expect(formatDate("2026-03-09", "dd.MM.yyyy")).toBe("09.03.2026");
    expect(formatDate("2026-03-09", "d/M/yy")).toBe("9/3/26");
    expect(formatDate("2026-03-09", "MM")).toBe("03");
    expect(checkDateFormat("yyyy-MM-dd")).toBeNull();
    expect(checkDateFormat("YYYY-mm-DD")).toContain("letters");
    expect(checkDateFormat("--")).toContain("no year");
  });

  test("money in minor units, exact, with any decimals and separator", () => {
    expect(formatMoney(123450, 2, ".")).toBe("1234.50");
    expect(formatMoney(-5, 2, ",")).toBe("-0,05");
    expect(formatMoney(167832, 3, ".")).toBe("1678.320");
    expect(formatMoney(12350, 0, ".")).toBe("124"); // half away from zero
    expect(formatMoney(-12350, 1, ",")).toBe("-123,5");
    expect(formatMoney(-40, 0, ".")).toBe("0");
  });

  test("decimals (hours)", () => {
    expect(formatDecimal(7.5, 2, ",")).toBe("7,50");
    expect(formatDecimal(1.005, 2, ".")).toBe("1.01");
    expect(formatDecimal(0.1 + 0.2, 2, ".")).toBe("0.30");
    expect(formatDecimal(-2.25, 1, ".")).toBe("-2.3");
    expect(formatDecimal(9.75, 0, ".")).toBe("10");
  });

  test("CSV cells", () => {
    expect(csvCell("a;b", ";", "as_needed", true).cell).toBe('"a;b"');
    expect(csvCell('say "hi"', ",", "as_needed", true).cell).toBe('"say ""hi"""');
    expect(csvCell("plain", ";", "as_needed", true).cell).toBe("plain");
    expect(csvCell("12.5", ";", "text", false).cell).toBe("12.5");
    expect(csvCell("name", ";", "text", true).cell).toBe('"name"');
    expect(csvCell("1", ";", "all", false).cell).toBe('"1"');
    expect(csvCell('a;"b"', ";", "never", true)).toEqual({ cell: "a 'b'", changed: true });
  });
});

describe("encodings", () => {
  const sample = "Bølgen Ærø café 100 €";
  test("windows-1252 holds ø and €; the bytes are real windows-1252", () => {
    const { text, substitutions } = toEncodable(sample, "windows-1252");
    expect(substitutions).toEqual([]);
    const bytes = encodeText(text, "windows-1252");
    expect(bytes.length).toBe(sample.length);
    expect(bytes[1]).toBe(0xf8); // ø
    expect(bytes[bytes.length - 1]).toBe(0x80); // €
    expect(new TextDecoder("windows-1252").decode(bytes)).toBe(sample);
  });

  test("ISO 8859-1 has ø but no €: € becomes EUR and is reported", () => {
    const { text, substitutions } = toEncodable(sample, "iso-8859-1");
    expect(text).toBe("Bølgen Ærø café 100 EUR");
    expect(substitutions).toEqual([{ char: "€", replacement: "EUR" }]);
    expect(encodeText(text, "iso-8859-1")[1]).toBe(0xf8);
  });

  test("CP865 has ø at 0x9B; CP437 transliterates it to ö; emoji become ?", () => {
    expect(encodeText(toEncodable("ø", "cp865").text, "cp865")).toEqual(new Uint8Array([0x9b]));
    expect(toEncodable("Bølgen 😀", "cp437")).toEqual({
      text: "Bölgen ?",
      substitutions: [
        { char: "ø", replacement: "ö" },
        { char: "😀", replacement: "?" },
      ],
    });
    expect(decodeText(encodeText("ÆØÅ æøå", "cp865"), "cp865")).toBe("ÆØÅ æøå");
  });

  test("UTF-8 with BOM for spreadsheets; line breaks in values become spaces", () => {
    expect([...encodeText("a", "utf-8-bom")]).toEqual([0xef, 0xbb, 0xbf, 0x61]);
    expect(toEncodable("line\r\nbreak\ttab", "utf-8").text).toBe("line  break tab");
    expect(() => encodeText("€", "iso-8859-1")).toThrow(/cannot be written/);
  });
});

describe("template validation", () => {
  test("every built-in template is valid and says which columns are guesses", () => {
    expect(builtinTemplates().map((t) => t.name)).toEqual([
      "xledger-ar10",
      "visma-document-center-expenses",
      "hours-per-employee",
      "invoice-journal",
      "customer-list",
    ]);
    for (const t of builtinTemplates()) expect(parseTemplate(t).ok).toBe(true);
    const ar10 = builtinTemplate("xledger-ar10")!;
    expect(ar10.columns).toHaveLength(29);
    expect(ar10.columns.filter((c) => c.guess).map((c) => c.header)).toContain("Voucher type");
    for (const c of builtinTemplates()
      .flatMap((t) => t.columns)
      .filter((c) => c.guess && c.value === undefined))
      expect(c.field).toBeTruthy();
  });

  test("an invalid template is refused with one problem per field", () => {
    const fields = fieldsOf({
      name: "Bad Name",
      dataType: "invoices",
      delimiter: ";;",
      encoding: "ebcdic",
      columns: [
        { header: "x", field: "nope" },
        { header: "y" },
        { header: "z", field: "date", dateFormat: "DD/MM" },
        { header: "w", field: "number", decimals: 2 },
      ],
    });
    expect(fields.sort()).toEqual(["delimiter", "encoding", "name"]);
    const semantic = fieldsOf({
      name: "ok",
      dataType: "invoices",
      columns: [
        { header: "x", field: "nope" },
        { header: "y" },
        { header: "z", field: "date", dateFormat: "DD/MM" },
        { header: "w", field: "number", decimals: 2 },
        { header: "c", value: "X", dateFormat: "yyyy" },
      ],
      filters: [
        { field: "grossAmount", op: "contains", value: "1" },
        { field: "currency", op: "in", value: "NOK" },
        { field: "date", op: "gte", value: "31.03.2026" },
        { field: "kind", op: "eq" },
      ],
      groupBy: ["personNumber"],
    });
    expect(semantic.sort()).toEqual(
      [
        "columns.0.field",
        "columns.1",
        "columns.2.dateFormat",
        "columns.3.decimals",
        "columns.4.dateFormat",
        "filters.0.op",
        "filters.1.value",
        "filters.2.value",
        "filters.3.value",
        "groupBy",
      ].sort(),
    );
    const r = parseTemplate({ name: "ok", dataType: "invoices", columns: [{ header: "x", field: "customerNam" }] });
    expect(!r.ok && r.problems[0]).toMatchObject({ code: "template.unknown_field", field: "columns.0.field" });
    expect(!r.ok && r.problems[0]!.hint).toContain("customerName");
  });

  test("grouped time records: columns need their group key, filters may use any time record field", () => {
    expect(
      fieldsOf({ name: "g", dataType: "time_records_grouped", groupBy: ["personNumber"], columns: [{ field: "projectName" }] }),
    ).toEqual(["columns.0.field"]);
    expect(
      parseTemplate({
        name: "g",
        dataType: "time_records_grouped",
        groupBy: ["personNumber"],
        columns: [{ field: "personName" }, { field: "hours" }],
        filters: [
          { field: "approved", op: "eq", value: true },
          { field: "hours", op: "gt", value: 0 },
        ],
      }).ok,
    ).toBe(true);
    expect(
      fieldsOf({ name: "g", dataType: "time_records_grouped", columns: [{ field: "hours" }], filters: [{ field: "bogus", op: "empty" }] }),
    ).toEqual(["filters.0.field"]);
  });

  test("a file name with an unknown placeholder, a brace left open or a period the data type has not is refused, saying where", () => {
    const fileNameProblems = (fileName: string, dataType = "invoices") => {
      const r = parseTemplate({ name: "t", dataType, columns: [{ field: "number" }], fileName });
      return r.ok ? [] : r.problems.filter((p) => p.field === "fileName").map((p) => `${p.message} | ${p.hint}`);
    };
    // Before: all were accepted, and "{dato}" became "_dato_": every export's file had the same name.
    expect(fileNameProblems("faktura_{dato}.csv")).toEqual([
      'fileName: "{dato}" (character 9) is not a placeholder. | Use {from}, {to}, {date} (today) or {run} (the export\'s number), e.g. t_{date}_{run}.csv.',
    ]);
    expect(fileNameProblems("faktura_{date.csv")[0]).toContain('"{" (character 9) is not closed');
    expect(fileNameProblems("faktura_date}.csv")[0]).toContain('"}" (character 13) closes no "{"');
    expect(fileNameProblems("faktura_{from}-{to}.csv")[0]).toContain("Invoices are not exported by period, so {from} is always empty");
    expect(fileNameProblems("timer_{from}-{to}_{run}.csv", "time_records")).toEqual([]);
    expect(fileNameProblems("faktura_{date}_{run}.csv")).toEqual([]);
  });

  test("quote never: a column whose amounts, dates or yes/no texts hold the delimiter is refused at save, naming the column", () => {
    // Before: only the template-wide decimal separator was checked; a column's own "," with delimiter "," wrote 1234,50
    // as "1234 50" (another amount) with a warning only, and a date format "dd-MM-yyyy" with delimiter "-" split dates.
    const never = (over: Record<string, unknown>, columns: unknown[]) =>
      parseTemplate({ name: "t", dataType: "invoices", quote: "never", columns, ...over });
    const clashes = (r: ReturnType<typeof parseTemplate>) =>
      r.ok ? [] : r.problems.filter((p) => p.code === "template.delimiter_clash").map((p) => p.field);
    expect(clashes(never({ delimiter: "," }, [{ field: "number" }, { field: "netAmount", decimalSeparator: "," }]))).toEqual([
      "columns.1.decimalSeparator",
    ]);
    expect(
      clashes(never({ delimiter: "-" }, [{ field: "netAmount" }, { field: "date" }, { field: "date", dateFormat: "yyyyMMdd" }])),
    ).toEqual(["columns.0.field", "columns.1.field"]);
    expect(clashes(never({ delimiter: "/" }, [{ field: "date", dateFormat: "dd/MM/yyyy" }]))).toEqual(["columns.0.dateFormat"]);
    expect(
      clashes(
        parseTemplate({
          name: "t",
          dataType: "customers",
          quote: "never",
          delimiter: ";",
          trueText: "ja;1",
          columns: [{ field: "active" }],
        }),
      ),
    ).toEqual(["columns.0.field"]);
    // Quoted as needed, or a separator that is not the delimiter: fine.
    expect(never({ delimiter: "," }, [{ field: "netAmount", decimalSeparator: "." }]).ok).toBe(true);
    expect(
      parseTemplate({ name: "t", dataType: "invoices", delimiter: ",", columns: [{ field: "netAmount", decimalSeparator: "," }] }).ok,
    ).toBe(true);
  });

  test("a template file broken by hand says at which line and column, and what was expected there", () => {
    const good = templateToFile(builtinTemplate("customer-list")!);
    const messageFor = (text: string) => {
      const r = templateFromFile(text);
      return r.ok ? "accepted" : r.problems[0]!.message;
    };
    // Before: only Bun's "JSON Parse error: Unexpected token '}'", with no place in the file.
    expect(messageFor(good.replace('"name": "customer-list",', '"name": "customer-list"'))).toMatch(
      /^The file is not valid JSON: line \d+, column \d+: expected , or } after the value, found "\\""/,
    );
    expect(messageFor('{\n  "format": "kontobro-export-template",\n  "template": {"name": "x",}\n}')).toBe(
      'The file is not valid JSON: line 3, column 28: expected a name in double quotes, found "}" (a comma before } is not allowed).',
    );
    expect(messageFor('{"a": "C:\\Users"}')).toContain("line 1, column 10: a backslash in a text must be written");
    expect(messageFor("{")).toBe(
      "The file is not valid JSON: line 1, column 2: expected a name in double quotes, found the end of the file.",
    );
  });

  test("template file round trip; a foreign or broken file is refused", () => {
    for (const t of builtinTemplates()) {
      const back = templateFromFile(templateToFile(t));
      expect(back.ok && back.template).toEqual(t);
    }
    const notOurs = templateFromFile('{"name": "x"}');
    expect(!notOurs.ok && notOurs.problems[0]!.code).toBe("template.not_a_template_file");
    expect(templateFromFile("{").ok).toBe(false);
    const invalid = templateFromFile(
      JSON.stringify({
        format: "kontobro-export-template",
        version: 1,
        template: { name: "x", dataType: "users", columns: [{ field: "salary" }] },
      }),
    );
    expect(!invalid.ok && invalid.problems[0]!.field).toBe("template.columns.0.field");
  });
});

describe("rendering", () => {
  const users: ExportData = {
    ...empty,
    users: new Map([
      ["1", { number: "1", name: 'Åse; "Øvrebø"', active: true, email: "a@example.no" }],
      ["2", { number: "2", name: "Bo", active: false, department: "Oslo" }],
      ["10", { number: "10", name: "Cé € 😀", active: true }],
    ]),
  };
  const rowsOf = (t: Template) => renderTemplate(t, buildRows(t.dataType, users, { posting: SieInvoiceConfig.parse({}) }).rows);

  test("header, delimiter, quoting, booleans, line ends, numeric order", () => {
    const t = tpl({
      dataType: "users",
      delimiter: ",",
      lineEnding: "lf",
      columns: [
        { header: "No", field: "number" },
        { header: "Name", field: "name" },
        { header: "Active", field: "active", trueText: "Y", falseText: "N" },
        { header: "Const", value: "X" },
      ],
    });
    expect(rowsOf(t).text).toBe('No,Name,Active,Const\n1,"Åse; ""Øvrebø""",Y,X\n2,Bo,N,X\n10,Cé € 😀,Y,X\n');
  });

  test("maxLength cuts names and texts; a number, e-mail or amount too long is never cut: the file is refused, saying where", () => {
    const t = tpl({
      dataType: "users",
      columns: [
        { header: "#", field: "number", maxLength: 1 },
        { header: "Name", field: "name", maxLength: 2 },
        { header: "Mail", field: "email", maxLength: 5 },
      ],
    });
    const r = rowsOf(t);
    // Before: "10" was written as "1" (another user's number) and the e-mail cut, with only a warning.
    expect(r.errors.map((p) => [p.code, p.field])).toEqual([
      ["template.value_too_long", "columns.0.maxLength"],
      ["template.value_too_long", "columns.2.maxLength"],
    ]);
    expect(r.errors[0]!.message).toBe(
      'Column 1 ("#"): 1 value(s) are longer than 1 characters, first in row 3: "10". Cutting it would write another number, code or amount, so no file was written.',
    );
    expect(r.warnings.map((w) => w.code)).toEqual(["template.value_truncated"]); // the names, cut as before
  });

  test("tab delimiter without header, and a non-UTF-8 encoding with reported replacements", () => {
    const t = tpl({
      dataType: "users",
      delimiter: "\t",
      headerRow: false,
      encoding: "iso-8859-1",
      columns: [{ field: "number" }, { field: "name", maxLength: 4 }],
    });
    const r = rowsOf(t);
    expect(r.header).toBeNull();
    expect(new TextDecoder("windows-1252").decode(r.bytes)).toBe("1\tÅse;\r\n2\tBo\r\n10\tCé E\r\n"); // transliterated (€ → EUR), then cut to 4
    expect(r.warnings.map((w) => w.code).sort()).toEqual(["template.characters_replaced", "template.value_truncated"]);
    expect(r.warnings.find((w) => w.code === "template.value_truncated")!.message).toContain("2 value(s)");
  });

  test("filters combine with AND; in, empty, contains, booleans", () => {
    const names = (filters: TemplateInput["filters"]) =>
      rowsOf(tpl({ dataType: "users", headerRow: false, filters, columns: [{ field: "number" }] })).rows.map((r) => r.number);
    expect(names([{ field: "active", op: "eq", value: true }])).toEqual(["1", "10"]);
    expect(
      names([
        { field: "active", op: "eq", value: true },
        { field: "email", op: "empty" },
      ]),
    ).toEqual(["10"]);
    expect(names([{ field: "number", op: "in", value: ["2", "10"] }])).toEqual(["2", "10"]);
    expect(names([{ field: "name", op: "contains", value: "øvre" }])).toEqual(["1"]);
    expect(names([{ field: "department", op: "ne", value: "Oslo" }])).toEqual(["1", "10"]);
  });

  test("preview limit cuts the output, not the validation", () => {
    const t = tpl({ dataType: "users", columns: [{ header: "No", field: "number" }] });
    const r = renderTemplate(t, buildRows("users", users, { posting: SieInvoiceConfig.parse({}) }).rows, { limit: 1 });
    expect(r.cells).toEqual([["1"]]);
  });
});

describe("invoice rows", () => {
  const posting = SieInvoiceConfig.parse({ costCentre: { source: "project_department" } });
  const inv = Invoice.parse({
    number: "10001",
    psaId: "a",
    customerNumber: "100",
    projectNumber: "P-1",
    date: "2026-03-10",
    dueDate: "2026-04-10",
    currency: "SEK",
    lines: [
      { text: "Konsult", quantity: 7.5, unitPrice: 120000 },
      { text: "Resa", quantity: 1, unitPrice: 45050, kind: "expenses", vatCode: "12" },
    ],
  });
  const cn = CreditNote.parse({
    ...inv,
    kind: "credit_note",
    number: "10002",
    creditedInvoiceNumber: "10001",
    lines: [{ text: "K", quantity: 1, unitPrice: 120000 }],
  });
  const data: ExportData = {
    ...empty,
    customers: new Map([["100", { number: "100", name: "Kund", currency: "SEK", addresses: [], contacts: [], active: true }]]),
    projects: new Map([["P-1", { number: "P-1", name: "Proj", status: "active", department: "200" }]]),
    invoices: [
      { doc: inv, status: "to_transfer" },
      { doc: cn as InvoiceLike, status: "to_transfer" },
    ],
  };

  test("grouped by account: the voucher's rows, balanced, with VAT codes and the customer on the receivable only", () => {
    const { rows, rejected } = buildRows("invoices_by_account", data, { posting });
    expect(rejected).toEqual([]);
    const voucher = invoiceToVoucher(inv, posting);
    const mine = rows.filter((r) => r.number === "10001");
    expect(
      mine.map((r) => [r.rowType, r.account, r.amount, r.vatCode ?? null, r.receivableCustomerNumber ?? null, r.costCentre ?? null]),
    ).toEqual([
      ["receivable", "1510", 900000 + 45050 + 225000 + 5406, null, "100", null],
      ["revenue", "3041", -900000, "25", null, "200"],
      ["revenue", "3590", -45050, "12", null, "200"],
      ["vat", "2611", -225000, "25", null, null],
      ["vat", "2621", -5406, "12", null, null],
    ]);
    expect(voucher.ok ? voucher.voucher.transactions.map((t) => t.amountMinor) : []).toEqual(mine.map((r) => r.amount as number));
    for (const n of ["10001", "10002"]) expect(rows.filter((r) => r.number === n).reduce((s, r) => s + (r.amount as number), 0)).toBe(0);
    expect(rows.filter((r) => r.number === "10002").map((r) => r.amount)).toEqual([-150000, 120000, 30000]);
  });

  test("one row per invoice: net, VAT and gross agree; an unmappable invoice is rejected with the reason", () => {
    const bad = Invoice.parse({ ...inv, number: "10003", lines: [{ text: "x", quantity: 1, unitPrice: 100, vatCode: "99" }] });
    const { rows, rejected } = buildRows(
      "invoices",
      { ...data, invoices: [...data.invoices!, { doc: bad, status: "to_transfer" }] },
      { posting },
    );
    expect(rows.map((r) => [r.number, r.netAmount, r.vatAmount, r.grossAmount])).toEqual([
      ["10001", 945050, 230406, 1175456],
      ["10002", -120000, -30000, -150000],
    ]);
    expect(rejected.map((r) => [r.number, r.problems[0]!.code])).toEqual([["10003", "sie4.unknown_vat_code"]]);
  });
});

describe("reading back which invoices a template's file holds", () => {
  const awkward = ["10;01", 'K"2"', " 3 ", "Ø4"];
  const rows = awkward.map((number) => ({ number, customerName: 'Kund; "A"' }));
  for (const quote of ["as_needed", "all", "text", "never"] as const)
    for (const encoding of ["utf-8-bom", "iso-8859-1", "cp437"] as const)
      test(`quote ${quote}, ${encoding}: every number as written`, () => {
        const t = tpl({
          dataType: "invoices",
          quote,
          encoding,
          columns: [
            { header: "Name", field: "customerName" },
            { header: "No", field: "number" },
          ],
        });
        const bytes = renderTemplate(t, rows).bytes;
        expect(namesInvoices(t)).toBe(true);
        expect([...invoiceNumbersIn(t, bytes)].sort()).toEqual(awkward.map((n) => writtenNumber(t, n)).sort());
        if (quote !== "never") expect(writtenNumber(t, "10;01")).toBe("10;01");
      });

  test("a template without the invoice number column, or of other data, names no invoices", () => {
    expect(namesInvoices(tpl({ dataType: "invoices", columns: [{ header: "Net", field: "netAmount" }] }))).toBe(false);
    expect(namesInvoices(tpl({}))).toBe(false);
  });

  test("the file name pattern matches every name the template gives, and no other", () => {
    const given = tpl({ dataType: "invoices", fileName: "AR {date}-{run}.csv" });
    const named = tpl({ name: "journal", dataType: "invoices" });
    const names = [
      templateFileName(given, { today: "2026-03-20", run: 7 }),
      templateFileName(named, { today: "2026-03-20", run: 12 }),
      templateFileName(named, { today: "2026-03-20", from: "2026-03-01", to: "2026-03-31", run: 3 }),
      templateFileName(named, { today: "2026-03-20", from: "2026-03-01", run: 4 }),
    ];
    expect(names).toEqual(["AR_20260320-7.csv", "journal_20260320_12.csv", "journal_20260301-20260331_3.csv", "journal_20260301-_4.csv"]);
    expect(templateFileNameRegExp(given).test(names[0]!)).toBe(true);
    for (const n of names.slice(1)) expect(templateFileNameRegExp(named).test(n)).toBe(true);
    for (const other of [
      "AR_20260320-7.csv.part",
      "xAR_20260320-7.csv",
      "AR_2026032-7.csv",
      "journal_20260320_.csv",
      "journal2_20260320_1.csv",
    ])
      expect([other, templateFileNameRegExp(given).test(other) || templateFileNameRegExp(named).test(other)]).toEqual([other, false]);
  });
});
