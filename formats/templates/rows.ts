// Canonical records → flat rows of a data type (field name → value). Pure. Invoice amounts come from the
// same posting rules as the SIE 4 export (formats/sie4/invoices.ts), so a template and a SIE file of
// the same invoices always agree on accounts, VAT and totals.
import type { Customer, ExpenseClaim, InvoiceLike, Project, TimeRecord, User } from "../../agent/model.ts";
import type { Problem } from "../../agent/problem.ts";
import { invoiceToVoucher, type SieInvoiceConfig, BAS_ACCOUNT_NAMES } from "../sie4/invoices.ts";
import { DEFAULT_GROUP_BY, GROUP_KEYS, type DataType } from "./fields.ts";

export type Value = string | number | boolean | undefined;
export type Row = Record<string, Value>;

/** What the rows are built from; the caller loads only what the data type needs. */
export interface ExportData {
  customers: ReadonlyMap<string, Customer>;
  projects: ReadonlyMap<string, Project>;
  users: ReadonlyMap<string, User>;
  /** invoices / invoices_by_account: the selected documents with their current export status. */
  invoices?: { doc: InvoiceLike; status: string }[];
  /** time_records(_grouped): already limited to the period. */
  timeRecords?: TimeRecord[];
  /** expense_claims: already limited to the period. */
  claims?: ExpenseClaim[];
}

export interface RowOptions {
  posting: SieInvoiceConfig;
  period?: { from: string; to: string };
  groupBy?: string[];
  /** time_records_grouped: which time records count (the template's record-level filters). */
  recordFilter?: (row: Row) => boolean;
}

export interface BuiltRows {
  rows: Row[];
  /** Invoices the posting rules refused (unknown VAT code, …): left out, and they stay "to transfer". */
  rejected: { number: string; problems: Problem[] }[];
}

const byNumber = (a: string, b: string) => a.localeCompare(b, "nb", { numeric: true });

function personFields(users: ReadonlyMap<string, User>, number: string): Row {
  const u = users.get(number);
  return { personNumber: number, personName: u?.name, externalEmployeeNumber: u?.externalEmployeeNumber, personDepartment: u?.department };
}

function projectFields(projects: ReadonlyMap<string, Project>, number: string | undefined): Row {
  const p = number ? projects.get(number) : undefined;
  return { projectNumber: number, projectName: p?.name, customerNumber: p?.customerNumber };
}

function invoiceRows(data: ExportData, options: RowOptions, byAccount: boolean): BuiltRows {
  const rows: Row[] = [];
  const rejected: BuiltRows["rejected"] = [];
  const projects = [...data.projects.values()];
  const docs = [...(data.invoices ?? [])].sort((a, b) => a.doc.date.localeCompare(b.doc.date) || byNumber(a.doc.number, b.doc.number));
  const names = { ...BAS_ACCOUNT_NAMES, ...options.posting.accountNames };
  for (const { doc, status } of docs) {
    // A template file may mix currencies (SIE may not): post each document in its own currency.
    const r = invoiceToVoucher(doc, { ...options.posting, currency: doc.currency }, { projects });
    if (!r.ok) {
      rejected.push({ number: doc.number, problems: r.problems });
      continue;
    }
    const sum = (role: string) => r.voucher.transactions.filter((t) => t.meta?.role === role).reduce((s, t) => s + t.amountMinor, 0);
    const customer = data.customers.get(doc.customerNumber);
    const project = doc.projectNumber ? data.projects.get(doc.projectNumber) : undefined;
    const base: Row = {
      number: doc.number,
      kind: doc.kind,
      psaId: doc.psaId,
      customerNumber: doc.customerNumber,
      customerName: customer?.name,
      customerOrgNumber: customer?.orgNumber,
      projectNumber: doc.projectNumber,
      projectName: project?.name,
      department: project?.department,
      date: doc.date,
      dueDate: doc.dueDate,
      currency: doc.currency,
      paymentId: doc.paymentId,
      creditedInvoiceNumber: doc.kind === "credit_note" ? doc.creditedInvoiceNumber : undefined,
      heading: doc.heading,
      ourReference: doc.ourReference,
      yourReference: doc.yourReference,
      netAmount: -sum("revenue"),
      vatAmount: -sum("vat"),
      grossAmount: sum("receivable"),
    };
    if (!byAccount) {
      rows.push({ ...base, lineCount: doc.lines.length, exportStatus: status });
      continue;
    }
    for (const t of r.voucher.transactions) {
      const account = String(t.account);
      rows.push({
        ...base,
        rowType: t.meta?.role,
        account,
        accountName: names[account],
        vatCode: t.meta?.vatCode,
        amount: t.amountMinor,
        debit: Math.max(t.amountMinor, 0),
        credit: Math.max(-t.amountMinor, 0),
        rowText: t.text ?? r.voucher.text,
        costCentre: t.objects?.find((o) => o.dimension === 1)?.id,
        receivableCustomerNumber: t.meta?.role === "receivable" ? doc.customerNumber : undefined,
      });
    }
  }
  return { rows, rejected };
}

function timeRecordRows(data: ExportData): Row[] {
  return [...(data.timeRecords ?? [])]
    .sort((a, b) => a.date.localeCompare(b.date) || byNumber(a.personNumber, b.personNumber) || byNumber(a.id, b.id))
    .map((t) => ({
      id: t.id,
      date: t.date,
      ...personFields(data.users, t.personNumber),
      ...projectFields(data.projects, t.projectNumber),
      activity: t.activity,
      hours: t.hours,
      billable: t.billable,
      approved: t.approved,
      description: t.description,
    }));
}

function groupedTimeRows(data: ExportData, options: RowOptions): Row[] {
  const keys = options.groupBy ?? DEFAULT_GROUP_BY;
  const groups = new Map<string, Row>();
  for (const r of timeRecordRows(data)) {
    const keyRow: Row = { ...r, month: String(r.date).slice(0, 7) };
    if (options.recordFilter && !options.recordFilter(keyRow)) continue;
    const id = JSON.stringify(keys.map((k) => keyRow[k] ?? null));
    let g = groups.get(id);
    if (!g) {
      g = {
        hours: 0,
        billableHours: 0,
        records: 0,
        firstDate: r.date,
        lastDate: r.date,
        periodFrom: options.period?.from,
        periodTo: options.period?.to,
      };
      for (const k of keys) for (const f of [k, ...(GROUP_KEYS[k] ?? [])]) g[f] = keyRow[f];
      groups.set(id, g);
    }
    g.hours = (g.hours as number) + (r.hours as number);
    if (r.billable) g.billableHours = (g.billableHours as number) + (r.hours as number);
    g.records = (g.records as number) + 1;
    if (String(r.date) < String(g.firstDate)) g.firstDate = r.date;
    if (String(r.date) > String(g.lastDate)) g.lastDate = r.date;
  }
  const sortKey = (row: Row) => keys.map((k) => String(row[k] ?? ""));
  return [...groups.values()].sort((a, b) => {
    const x = sortKey(a),
      y = sortKey(b);
    for (let i = 0; i < x.length; i++) {
      const c = byNumber(x[i]!, y[i]!);
      if (c !== 0) return c;
    }
    return 0;
  });
}

function claimRows(data: ExportData): Row[] {
  const rows: Row[] = [];
  const claims = [...(data.claims ?? [])].sort((a, b) => a.date.localeCompare(b.date) || byNumber(a.number, b.number));
  for (const c of claims) {
    c.lines.forEach((l, i) =>
      rows.push({
        claimNumber: c.number,
        ...personFields(data.users, c.personNumber),
        claimDate: c.date,
        date: l.date ?? c.date,
        lineNumber: i + 1,
        text: l.text,
        description: c.description,
        category: l.category,
        account: l.account,
        ...projectFields(data.projects, l.projectNumber ?? c.projectNumber),
        currency: c.currency,
        amount: l.amount,
        vatAmount: l.vatAmount,
        netAmount: l.amount - l.vatAmount,
        vatCode: l.vatCode,
        approved: c.approved,
      }),
    );
  }
  return rows;
}

/** Builds the rows of one data type, in a stable order. */
export function buildRows(dataType: DataType, data: ExportData, options: RowOptions): BuiltRows {
  const none = { rejected: [] };
  switch (dataType) {
    case "customers":
      return {
        ...none,
        rows: [...data.customers.values()]
          .sort((a, b) => byNumber(a.number, b.number))
          .map((c) => {
            const a = c.addresses.find((x) => x.kind === "postal") ?? c.addresses[0];
            return {
              number: c.number,
              name: c.name,
              orgNumber: c.orgNumber,
              vatNumber: c.vatNumber,
              email: c.email,
              phone: c.phone,
              website: c.website,
              street: a?.street,
              zip: a?.zip,
              city: a?.city,
              country: a?.country,
              currency: c.currency,
              paymentTermsDays: c.paymentTermsDays,
              group: c.group,
              active: c.active,
              contactName: c.contacts[0]?.name,
              contactEmail: c.contacts[0]?.email,
            };
          }),
      };
    case "projects":
      return {
        ...none,
        rows: [...data.projects.values()]
          .sort((a, b) => byNumber(a.number, b.number))
          .map((p) => ({
            number: p.number,
            name: p.name,
            customerNumber: p.customerNumber,
            customerName: p.customerNumber ? data.customers.get(p.customerNumber)?.name : undefined,
            status: p.status,
            startDate: p.startDate,
            endDate: p.endDate,
            department: p.department,
            description: p.description,
          })),
      };
    case "users":
      return {
        ...none,
        rows: [...data.users.values()]
          .sort((a, b) => byNumber(a.number, b.number))
          .map((u) => ({
            number: u.number,
            name: u.name,
            email: u.email,
            department: u.department,
            externalEmployeeNumber: u.externalEmployeeNumber,
            active: u.active,
          })),
      };
    case "invoices":
      return invoiceRows(data, options, false);
    case "invoices_by_account":
      return invoiceRows(data, options, true);
    case "time_records":
      return { ...none, rows: timeRecordRows(data) };
    case "time_records_grouped":
      return { ...none, rows: groupedTimeRows(data, options) };
    case "expense_claims":
      return { ...none, rows: claimRows(data) };
  }
}
