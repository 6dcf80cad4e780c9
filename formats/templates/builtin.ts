// Built-in export templates, from the file formats in ../shared/reference/api-notes/psa-moment.md §7.
// They can be used as they are or saved under a new name and edited (like Moment's "global templates").
// Columns marked `guess: true` are not settled by any published specification; their notes say why.
import { once } from "../../agent/lazy-schema.ts";
import { parseTemplate, type Template, type TemplateInput } from "./definition.ts";

const ymd = "yyyyMMdd";

const XLEDGER_AR10: TemplateInput = {
  name: "xledger-ar10",
  title: "Xledger AR10 (GBAT10) invoice vouchers",
  description:
    "One line per voucher row of each invoice: the receivable with the customer, revenue per account, output VAT. " +
    "Semicolon-separated, dates yyyyMMdd, decimal point, no header (psa-moment.md §7.1). No public GBAT10 specification exists: " +
    "the columns marked as guesses follow the usual GBAT10 meaning; the encoding (ISO 8859-1) is a guess too. " +
    "Before the first import, save a copy and fill in your Xledger voucher type (column 4).",
  dataType: "invoices_by_account",
  delimiter: ";",
  encoding: "iso-8859-1",
  headerRow: false,
  quote: "never",
  dateFormat: ymd,
  decimalSeparator: ".",
  fileName: "AR10_{date}_{run}.csv",
  columns: [
    { header: "Identification", value: "GBAT10" },
    {
      header: "Voucher no.",
      field: "number",
      maxLength: 8,
      guess: true,
      note: "The invoice number as voucher number; Xledger may number vouchers itself.",
    },
    { header: "Voucher date", field: "date" },
    {
      header: "Voucher type",
      value: "",
      guess: true,
      note: "Required, numeric, from Xledger's StdReg_xxx.xls: save a copy of this template and write your voucher type here.",
    },
    {
      header: "Period",
      field: "date",
      dateFormat: "MM",
      guess: true,
      note: "Blank in the published description; the usual GBAT10 meaning is the accounting period.",
    },
    {
      header: "Year",
      field: "date",
      dateFormat: "yyyy",
      guess: true,
      note: "Blank in the published description; the usual GBAT10 meaning is the year.",
    },
    { header: "Account", field: "account", maxLength: 4 },
    {
      header: "VAT code",
      field: "vatCode",
      maxLength: 5,
      guess: true,
      note: "The PSA's VAT code is written; Xledger expects its own codes (StdReg_xxx.xls): map them in the PSA or in exports.posting.vat_codes.",
    },
    { header: "Balance (amount)", field: "amount", decimals: 2 },
    {
      header: "Customer no.",
      field: "receivableCustomerNumber",
      maxLength: 9,
      guess: true,
      note: "Blank in the published description; written on the receivable row only (the customer ledger row).",
    },
    { header: "Supplier no.", value: "" },
    {
      header: "Name",
      field: "customerName",
      maxLength: 30,
      guess: true,
      note: "Blank in the published description; the customer's name (max 30).",
    },
    { header: "Address", value: "" },
    { header: "Postal code", value: "" },
    { header: "Postal place", value: "" },
    { header: "Invoice no.", field: "number", maxLength: 25 },
    { header: "KID", field: "paymentId", maxLength: 30 },
    { header: "Due date", field: "dueDate" },
    { header: "N/A", value: "" },
    { header: "Bank account", value: "" },
    { header: "Description General ledger", field: "rowText", maxLength: 100 },
    {
      header: "Description Ledger",
      field: "rowText",
      maxLength: 100,
      guess: true,
      note: "The same text as the general ledger description.",
    },
    { header: "(unknown)", value: "", guess: true, note: "Meaning not published (1 character, numeric)." },
    {
      header: "Department",
      field: "costCentre",
      maxLength: 6,
      guess: true,
      note: "Blank in the published description; the usual GBAT10 meaning is the department.",
    },
    { header: "Project", field: "projectNumber", maxLength: 4 },
    { header: "Payment terms", value: "" },
    { header: "(unknown)", value: "", guess: true, note: "Meaning not published (1 character, text)." },
    {
      header: "GrossSum",
      field: "grossAmount",
      decimals: 3,
      guess: true,
      note: "Published as 'three decimals'; which rows carry it is not: written on every row of the invoice.",
    },
    { header: "Extra", value: "" },
  ],
};

const VISMA_DOCUMENT_CENTER: TemplateInput = {
  name: "visma-document-center-expenses",
  title: "Expense claims in the Visma Document Center CSV layout",
  description:
    "The 26 columns of the Visma Document Center CSV (psa-moment.md §7.4): UTF-8, semicolons, quoted header row, dates yyyyMMdd. " +
    "That layout is published for supplier expenses going into Moment; using it for employees' expense claims is our own mapping, " +
    "so every column that is not a plain amount, date or text is a guess. Lines without a project are left out, as Moment skips them.",
  dataType: "expense_claims",
  delimiter: ";",
  encoding: "utf-8",
  headerRow: true,
  quoteHeader: true,
  quote: "as_needed",
  dateFormat: ymd,
  decimalSeparator: ".",
  fileName: "F{to}_{run}.csv",
  filters: [{ field: "projectNumber", op: "not_empty" }],
  columns: [
    { header: "JNo", field: "claimNumber", guess: true, note: "Journal number: the claim number." },
    { header: "EntNo", field: "lineNumber", guess: true, note: "Entity number (tells expenses of one journal apart): the line number." },
    { header: "WfId", value: "", note: "Visma Document Center's own id: none for claims." },
    { header: "Sup", field: "externalEmployeeNumber", guess: true, note: "Supplier number: the employee's payroll number." },
    { header: "actor.Nm", field: "personName", guess: true, note: "Supplier name: the employee's name." },
    { header: "AcNo", field: "account" },
    { header: "VoNo", field: "claimNumber", guess: true },
    { header: "VoDt", field: "date" },
    { header: "ValDt", field: "claimDate", guess: true, note: "Validation date: the claim's date." },
    { header: "VoTp", value: "", guess: true, note: "Voucher type: not known for claims." },
    { header: "Txt", field: "text" },
    { header: "Cur", field: "currency" },
    { header: "ExRt", value: "100", guess: true, note: "100 means company currency; claims in another currency need the rate." },
    { header: "CurAm", field: "amount" },
    { header: "AcAm", field: "amount", guess: true, note: "Amount in company currency: equal to CurAm for company-currency claims." },
    { header: "Qty", value: "" },
    { header: "R1", field: "projectNumber", guess: true, note: "Dimension 1: the project." },
    { header: "R2", value: "" },
    { header: "EntAm", value: "" },
    { header: "Bas", field: "netAmount", guess: true, note: "VAT basis: the amount excl. VAT." },
    { header: "VatAm", field: "vatAmount" },
    { header: "TxCl", value: "" },
    { header: "TxCd", field: "vatCode", guess: true },
    { header: "VatRt", value: "" },
    { header: "SrcTp", value: "" },
    { header: "InvoNo", field: "claimNumber", guess: true },
  ],
};

const HOURS_FOR_PAYROLL: TemplateInput = {
  name: "hours-per-employee",
  title: "Approved hours per employee and project (payroll)",
  description:
    "Approved hours summed per employee, project and activity for the period; only users with an external employee number, " +
    "as Moment's hours export does. A plain CSV: Moment's own payroll row layout is not published.",
  dataType: "time_records_grouped",
  delimiter: ";",
  encoding: "utf-8",
  headerRow: true,
  decimalSeparator: ",",
  dateFormat: "yyyy-MM-dd",
  groupBy: ["personNumber", "projectNumber", "activity"],
  filters: [
    { field: "approved", op: "eq", value: true },
    { field: "externalEmployeeNumber", op: "not_empty" },
  ],
  columns: [
    { header: "Employee no.", field: "externalEmployeeNumber" },
    { header: "Name", field: "personName" },
    { header: "Project", field: "projectNumber" },
    { header: "Activity", field: "activity" },
    { header: "Hours", field: "hours", decimals: 2 },
    { header: "Billable hours", field: "billableHours", decimals: 2 },
    { header: "From", field: "periodFrom" },
    { header: "To", field: "periodTo" },
  ],
};

const INVOICE_JOURNAL: TemplateInput = {
  name: "invoice-journal",
  title: "Invoice journal (spreadsheet)",
  description:
    "One line per invoice and credit note with net, VAT and gross, for a spreadsheet: UTF-8 with byte order mark, semicolons, decimal comma.",
  dataType: "invoices",
  delimiter: ";",
  encoding: "utf-8-bom",
  headerRow: true,
  decimalSeparator: ",",
  dateFormat: "dd.MM.yyyy",
  columns: [
    { header: "Number", field: "number" },
    { header: "Type", field: "kind" },
    { header: "Date", field: "date" },
    { header: "Due", field: "dueDate" },
    { header: "Customer no.", field: "customerNumber" },
    { header: "Customer", field: "customerName" },
    { header: "Project", field: "projectNumber" },
    { header: "Currency", field: "currency" },
    { header: "Net", field: "netAmount" },
    { header: "VAT", field: "vatAmount" },
    { header: "Gross", field: "grossAmount" },
    { header: "KID", field: "paymentId" },
  ],
};

const CUSTOMER_LIST: TemplateInput = {
  name: "customer-list",
  title: "Customer list (spreadsheet)",
  description: "Active customers with their postal address: UTF-8 with byte order mark, semicolons.",
  dataType: "customers",
  delimiter: ";",
  encoding: "utf-8-bom",
  headerRow: true,
  filters: [{ field: "active", op: "eq", value: true }],
  columns: [
    { header: "Number", field: "number" },
    { header: "Name", field: "name" },
    { header: "Org. no.", field: "orgNumber" },
    { header: "Street", field: "street" },
    { header: "Postal code", field: "zip" },
    { header: "City", field: "city" },
    { header: "Country", field: "country" },
    { header: "E-mail", field: "email" },
    { header: "Currency", field: "currency" },
  ],
};

/** The built-in templates, parsed when first asked for (an idle agent holds no template schema; issue 16). */
export const builtinTemplates = once((): readonly Template[] =>
  [XLEDGER_AR10, VISMA_DOCUMENT_CENTER, HOURS_FOR_PAYROLL, INVOICE_JOURNAL, CUSTOMER_LIST].map((input) => {
    const r = parseTemplate(input);
    if (!r.ok) throw new Error(`built-in template ${input.name} is invalid: ${r.problems.map((p) => p.message).join("; ")}`);
    return r.template;
  }),
);

export const builtinTemplate = (name: string): Template | undefined => builtinTemplates().find((t) => t.name === name);
