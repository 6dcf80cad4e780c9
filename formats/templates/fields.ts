// The data types an export template can export, and the fields each one offers. Pure data.
// Field names are what a template's columns and filters refer to; the types decide how values are
// formatted (dates by dateFormat, money and decimals by decimals and decimalSeparator).

export const DATA_TYPES = [
  "customers",
  "expense_claims",
  "invoices",
  "invoices_by_account",
  "projects",
  "time_records",
  "time_records_grouped",
  "users",
] as const;
export type DataType = (typeof DATA_TYPES)[number];

export const DATA_TYPE_TITLES: Record<DataType, string> = {
  customers: "Customers",
  expense_claims: "Expenses (claims)",
  invoices: "Invoices",
  invoices_by_account: "Invoices grouped by account",
  projects: "Projects",
  time_records: "Time records",
  time_records_grouped: "Time records (grouped)",
  users: "Users",
};

/** money: integer minor units, written in currency units; decimal: a plain number (hours). */
export type FieldType = "text" | "integer" | "decimal" | "money" | "date" | "boolean";

export interface FieldSpec {
  type: FieldType;
  description: string;
}

/**
 * Fields whose values are names or free text: a column's maxLength may cut them (reported). Any other value (a number,
 * account, code, e-mail, amount, date) is never cut: a cut one is another one, so a value too long refuses the file.
 */
export const CUTTABLE_FIELDS: ReadonlySet<string> = new Set([
  "name",
  "customerName",
  "projectName",
  "personName",
  "accountName",
  "contactName",
  "heading",
  "ourReference",
  "yourReference",
  "description",
  "rowText",
  "text",
  "activity",
  "street",
  "city",
  "group",
  "category",
]);

/** How a data type selects its records when exported. */
export type Selection =
  /** Every record (customers, projects, users). */
  | "all"
  /** Invoices and credit notes whose export status is "to transfer"; exporting marks them transferred. */
  | "to_transfer"
  /** Records dated inside a period (from, to): no exported flag, so overlapping periods repeat rows. */
  | "period";

const f = (type: FieldType, description: string): FieldSpec => ({ type, description });

const INVOICE_FIELDS: Record<string, FieldSpec> = {
  number: f("text", "invoice or credit note number"),
  kind: f("text", "invoice or credit_note"),
  psaId: f("text", "the PSA's own id of the invoice"),
  customerNumber: f("text", "customer number"),
  customerName: f("text", "customer name (from the customer record)"),
  customerOrgNumber: f("text", "customer organisation number"),
  projectNumber: f("text", "project number"),
  projectName: f("text", "project name"),
  department: f("text", "the project's department (cost centre)"),
  date: f("date", "invoice date"),
  dueDate: f("date", "due date"),
  currency: f("text", "ISO currency code"),
  paymentId: f("text", "payment id (KID / OCR)"),
  creditedInvoiceNumber: f("text", "for a credit note: the invoice it credits"),
  heading: f("text", "invoice heading"),
  ourReference: f("text", "our reference"),
  yourReference: f("text", "the customer's reference"),
  netAmount: f("money", "sum excl. VAT; negative for a credit note"),
  vatAmount: f("money", "output VAT; negative for a credit note"),
  grossAmount: f("money", "sum incl. VAT (the receivable); negative for a credit note"),
};

const PERSON_FIELDS: Record<string, FieldSpec> = {
  personNumber: f("text", "the user's number"),
  personName: f("text", "the user's name (from the user record)"),
  externalEmployeeNumber: f("text", "the user's employee number in the payroll system"),
  personDepartment: f("text", "the user's department"),
};

const PROJECT_REF_FIELDS: Record<string, FieldSpec> = {
  projectNumber: f("text", "project number"),
  projectName: f("text", "project name (from the project record)"),
  customerNumber: f("text", "the project's customer number"),
};

export const FIELDS: Record<DataType, Record<string, FieldSpec>> = {
  customers: {
    number: f("text", "customer number"),
    name: f("text", "name"),
    orgNumber: f("text", "organisation number"),
    vatNumber: f("text", "VAT number"),
    email: f("text", "invoice e-mail"),
    phone: f("text", "phone"),
    website: f("text", "website"),
    street: f("text", "postal address: street"),
    zip: f("text", "postal address: postal code"),
    city: f("text", "postal address: city"),
    country: f("text", "postal address: ISO country code"),
    currency: f("text", "currency"),
    paymentTermsDays: f("integer", "payment terms in days"),
    group: f("text", "customer group"),
    active: f("boolean", "active"),
    contactName: f("text", "first contact's name"),
    contactEmail: f("text", "first contact's e-mail"),
  },
  projects: {
    number: f("text", "project number"),
    name: f("text", "name"),
    customerNumber: f("text", "customer number"),
    customerName: f("text", "customer name"),
    status: f("text", "active, closed or planned"),
    startDate: f("date", "start date"),
    endDate: f("date", "end date"),
    department: f("text", "department"),
    description: f("text", "description"),
  },
  users: {
    number: f("text", "user number"),
    name: f("text", "name"),
    email: f("text", "e-mail"),
    department: f("text", "department"),
    externalEmployeeNumber: f("text", "employee number in the payroll system"),
    active: f("boolean", "active"),
  },
  invoices: {
    ...INVOICE_FIELDS,
    lineCount: f("integer", "number of invoice lines"),
    exportStatus: f("text", "export status before this export"),
  },
  invoices_by_account: {
    ...INVOICE_FIELDS,
    rowType: f("text", "receivable, revenue, vat or rounding"),
    account: f("text", "ledger account"),
    accountName: f("text", "account name (exports.posting.account_names)"),
    vatCode: f("text", "the VAT code of a revenue row when all its lines share one; the code on VAT rows"),
    amount: f("money", "the row's amount, debit positive, credit negative"),
    debit: f("money", "the amount when it is a debit, else 0"),
    credit: f("money", "the amount when it is a credit (as a positive number), else 0"),
    rowText: f("text", "the row's text"),
    costCentre: f("text", "cost centre (dimension 1) on the row"),
    receivableCustomerNumber: f("text", "the customer number on the receivable row, empty on the others (ledger rows)"),
  },
  time_records: {
    id: f("text", "the PSA's id of the time record"),
    date: f("date", "the day worked"),
    ...PERSON_FIELDS,
    ...PROJECT_REF_FIELDS,
    activity: f("text", "activity"),
    hours: f("decimal", "hours"),
    billable: f("boolean", "billable"),
    approved: f("boolean", "approved"),
    description: f("text", "description"),
  },
  time_records_grouped: {
    ...PERSON_FIELDS,
    ...PROJECT_REF_FIELDS,
    activity: f("text", "activity"),
    billable: f("boolean", "billable"),
    approved: f("boolean", "approved"),
    date: f("date", "the day (when grouped by date)"),
    month: f("text", "yyyy-MM (when grouped by month)"),
    hours: f("decimal", "sum of hours in the group"),
    billableHours: f("decimal", "sum of billable hours in the group"),
    records: f("integer", "number of time records in the group"),
    firstDate: f("date", "first day in the group"),
    lastDate: f("date", "last day in the group"),
    periodFrom: f("date", "the export's period: from"),
    periodTo: f("date", "the export's period: to"),
  },
  expense_claims: {
    claimNumber: f("text", "claim number"),
    ...PERSON_FIELDS,
    claimDate: f("date", "claim date"),
    date: f("date", "the expense's date (the line's, else the claim's)"),
    lineNumber: f("integer", "line number in the claim, from 1"),
    text: f("text", "the line's text"),
    description: f("text", "the claim's description"),
    category: f("text", "expense category"),
    account: f("text", "ledger account of the line"),
    ...PROJECT_REF_FIELDS,
    currency: f("text", "currency"),
    amount: f("money", "gross amount incl. VAT"),
    vatAmount: f("money", "VAT"),
    netAmount: f("money", "amount excl. VAT"),
    vatCode: f("text", "VAT code"),
    approved: f("boolean", "approved"),
  },
};

/**
 * Data types whose rows are the parts of one document that an export marks transferred as a whole (the rows of an
 * invoice's voucher): their filters may only test the document's own fields, which hold one value on every row of it,
 * so a filter keeps or leaves out a document whole. A filter on a row's own field (rowType, account, amount) would write
 * part of a voucher (unbalanced at import) and mark the whole invoice transferred, never to be exported again.
 */
export const WHOLE_DOCUMENTS: Partial<Record<DataType, { row: string; document: string; fields: readonly string[] }>> = {
  invoices_by_account: { row: "voucher row", document: "invoice", fields: Object.keys(INVOICE_FIELDS) },
};

export const SELECTION: Record<DataType, Selection> = {
  customers: "all",
  projects: "all",
  users: "all",
  invoices: "to_transfer",
  invoices_by_account: "to_transfer",
  time_records: "period",
  time_records_grouped: "period",
  expense_claims: "period",
};

/** Data types that read the same records: an overlapping period of any of them repeats the same data. */
export const PERIOD_SOURCE: Partial<Record<DataType, "time_records" | "expense_claims">> = {
  time_records: "time_records",
  time_records_grouped: "time_records",
  expense_claims: "expense_claims",
};

/** What time records may be grouped by, and the fields that come along with each key. */
export const GROUP_KEYS: Record<string, string[]> = {
  personNumber: ["personName", "externalEmployeeNumber", "personDepartment"],
  projectNumber: ["projectName", "customerNumber"],
  activity: [],
  billable: [],
  approved: [],
  date: [],
  month: [],
};
export const DEFAULT_GROUP_BY = ["personNumber", "projectNumber", "activity"];

/** Fields of time_records_grouped computed per group. Filters on them apply to the groups. */
export const AGGREGATE_FIELDS: ReadonlySet<string> = new Set([
  "hours",
  "billableHours",
  "records",
  "firstDate",
  "lastDate",
  "periodFrom",
  "periodTo",
]);

/**
 * For grouped time records, a filter on anything but an aggregate applies to the time records before
 * they are grouped ("approved = true" keeps approved hours), so it may name any time record field.
 */
export const filtersRecords = (dataType: DataType, field: string) => dataType === "time_records_grouped" && !AGGREGATE_FIELDS.has(field);

/** The type of the field a filter tests, or undefined when the data type has no such field. */
export function filterFieldType(dataType: DataType, field: string): FieldType | undefined {
  if (filtersRecords(dataType, field)) return field === "month" ? "text" : FIELDS.time_records[field]?.type;
  return FIELDS[dataType][field]?.type;
}
