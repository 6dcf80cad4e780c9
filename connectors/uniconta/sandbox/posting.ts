// What posting does in the sandbox's Uniconta company: an order becomes a posted invoice numbered from the
// invoice number series (InvoicePostingResult as the .NET API and the gateway return it, uniconta.md §6),
// with its debtor, ledger and project transactions; payments settle debtor transactions; posted project
// costs (a journal posting) create project, ledger and supplier transactions with a new JournalPostedId.
import fixtures from "./fixtures.json";
import { type CompanyStore, UcError, type Row } from "./store.ts";

export interface PostingOptions {
  /** A non-zero InvoiceNumber given to PostInvoice is used (unverified, uniconta.md §6); else the series decides. */
  honourInvoiceNumber: boolean;
  /** The order (and its lines) is deleted once invoiced. */
  deleteOrderAfterPosting: boolean;
  /** The invoice date: the order's InvoiceDate, or the day of posting (rmja/unicontarest passes DateTime.Now). */
  invoiceDate: "order" | "today";
}

export interface InvoicePostingResult {
  Err: "Succes";
  Header: Row;
  ledgerRes: { JournalPostedlId: number };
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const day = (d: unknown) => String(d ?? "").slice(0, 10);
const stamp = (d: string) => `${d}T00:00:00`;

export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

function dims(src: Row): Row {
  return Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`Dimension${i}`, src[`Dimension${i}`]]).filter(([, v]) => v !== undefined));
}

function invoiceSeries(store: CompanyStore): Row {
  const s = store.raw("NumberSerieClient").find((r) => r.Use === "Invoice");
  if (!s) throw new UcError("InvoiceNumberMissing", "The company has no number series for invoices");
  return s;
}

/** PostInvoice for a debtor order. `simulate` computes the result and changes nothing. */
export function postOrder(
  store: CompanyStore,
  orderNumber: number,
  args: { simulate: boolean; invoiceNumber?: number; today: string },
  o: PostingOptions,
): InvoicePostingResult {
  const order = store.byKey("DebtorOrderClient", orderNumber);
  if (!order) throw new UcError("CouldNotFind", `Order ${orderNumber} was not found`);
  const lines = store
    .raw("DebtorOrderLineClient")
    .filter((l) => l.OrderNumber === order.OrderNumber)
    .sort((a, b) => Number(a.LineNumber) - Number(b.LineNumber));
  if (lines.length === 0) throw new UcError("NoLinesFound", `Order ${orderNumber} has no lines`);
  const debtor = store.byKey("DebtorClient", order.Account);
  if (!debtor) throw new UcError("AccountIsMissing", `Debtor ${order.Account} does not exist`);
  const rate = (vat: unknown) => Number(store.byKey("GLVatClient", vat)?.Rate ?? 0);
  // PricesInclVat on the order: each line's Price includes its VAT, so the net amount is taken out of it.
  const gross = order.PricesInclVat === true;
  const priced = lines.map((l) => {
    const sum = round2(Number(l.Qty ?? 0) * Number(l.Price ?? 0) * (1 - Number(l.DiscountPct ?? 0) / 100));
    const vatCode = l.Vat ?? debtor.Vat;
    const amount = gross ? round2(sum / (1 + rate(vatCode) / 100)) : sum;
    return { line: l, amount, vatCode, vat: gross ? round2(sum - amount) : round2((amount * rate(vatCode)) / 100) };
  });
  const net = round2(priced.reduce((s, p) => s + p.amount, 0));
  const vat = round2(priced.reduce((s, p) => s + p.vat, 0));
  const total = round2(net + vat);
  const date = o.invoiceDate === "order" && order.InvoiceDate ? day(order.InvoiceDate) : args.today;
  const payment = order.Payment ?? debtor.Payment;
  const days = Number(store.byKey("PaymentTermClient", payment)?.Days ?? 0);
  const due = order.DueDate ? day(order.DueDate) : addDays(date, days);
  const series = invoiceSeries(store);
  const wanted = o.honourInvoiceNumber && args.invoiceNumber ? args.invoiceNumber : undefined;
  const number = wanted ?? Number(series.NextNumber);
  if (!wanted && number > Number(series.LastNumber))
    throw new UcError("InvoiceNumberMissing", `Number series ${series.Number} is used up (last number ${series.LastNumber})`);
  if (store.byKey("DebtorInvoiceClient", number)) throw new UcError("KeyExists", `Invoice ${number} already exists`, "InvoiceNumber");
  const journalPostedId = args.simulate ? store.nextJournalPostedId : store.nextJournalPostedId++;
  const header: Row = {
    RowId: args.simulate ? 0 : store.newRowId(),
    InvoiceNumber: number,
    Account: debtor.Account,
    Name: debtor.Name,
    Date: stamp(date),
    DueDate: stamp(due),
    Payment: payment,
    Currency: order.Currency ?? debtor.Currency ?? store.company.Currency,
    OrderNumber: order.OrderNumber,
    OurRef: order.OurRef,
    YourRef: order.YourRef,
    Requisition: order.Requisition,
    Remark: order.Remark,
    Project: order.Project,
    NetAmount: net,
    Vat: vat,
    TotalAmount: total,
    JournalPostedId: journalPostedId,
    ...dims(order),
  };
  const result: InvoicePostingResult = { Err: "Succes", Header: clean(header), ledgerRes: { JournalPostedlId: journalPostedId } };
  if (args.simulate) return result;

  store.raw("DebtorInvoiceClient").push(clean(header));
  const numberSerie = String(series.Number);
  const gl = (account: unknown, amount: number, text: string, extra: Row = {}) =>
    store.raw("GLTransClient").push(
      clean({
        RowId: store.newRowId(),
        Account: account,
        Date: stamp(date),
        Text: text,
        Amount: amount,
        Voucher: number,
        Invoice: number,
        JournalPostedId: journalPostedId,
        DCAccount: debtor.Account,
        DCType: "Debtor",
        NumberSerie: numberSerie,
        ...extra,
      }),
    );
  gl(fixtures.accounts.debtors, total, `Faktura ${number} ${debtor.Name}`);
  priced.forEach((p, i) => {
    const l = p.line;
    store.raw("DebtorInvoiceLines").push(
      clean({
        RowId: store.newRowId(),
        InvoiceNumber: number,
        LineNumber: i + 1,
        Text: l.Text,
        Qty: l.Qty,
        Price: l.Price,
        NetAmount: p.amount,
        Vat: p.vatCode,
        PostingAccount: l.PostingAccount,
        Project: l.Project,
        PrCategory: l.PrCategory,
        Item: l.Item,
        DCAccount: debtor.Account,
        ...dims(l),
      }),
    );
    gl(l.PostingAccount ?? "1000", -p.amount, String(l.Text ?? ""), { Vat: p.vatCode, VoucherLine: i + 1, ...dims(l) });
    if (l.Project) {
      const cat = store.byKey("PrCategoryClient", l.PrCategory);
      store.raw("ProjectTransClient").push(
        clean({
          RowId: store.newRowId(),
          Project: l.Project,
          Date: stamp(date),
          PrCategory: l.PrCategory,
          CategoryName: cat?.Name,
          CatType: "Revenue",
          Text: l.Text,
          Qty: l.Qty,
          SalesAmount: p.amount,
          SalesPrice: l.Price,
          CostAmount: 0,
          Invoice: number,
          Invoiced: true,
          JournalPostedId: journalPostedId,
          Voucher: number,
          LineNumber: i + 1,
          NumberSerie: numberSerie,
          ...dims(l),
        }),
      );
    }
  });
  if (vat !== 0) gl(fixtures.accounts.salesVat, -vat, `Moms faktura ${number}`);
  store.raw("DebtorTransClient").push(
    clean({
      RowId: store.newRowId(),
      Account: debtor.Account,
      Name: debtor.Name,
      Date: stamp(date),
      Invoice: number,
      Amount: total,
      Currency: header.Currency,
      Text: `Faktura ${number}`,
      Voucher: number,
      JournalPostedId: journalPostedId,
      PostType: "Invoice",
      Open: total !== 0,
    }),
  );
  series.NextNumber = Math.max(Number(series.NextNumber), number + 1);
  // Documents attached to the order follow it to the invoice.
  for (const d of store.raw("UserDocsClient")) {
    if (d.TableId === "DebtorOrderClient" && d.TableRowId === order.RowId) {
      d.TableId = "DebtorInvoiceClient";
      d.TableRowId = header.RowId;
    }
  }
  if (o.deleteOrderAfterPosting) store.delete("DebtorOrderClient", { OrderNumber: order.OrderNumber });
  return result;
}

function clean(r: Row): Row {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined && v !== null));
}

/** A payment received for a posted invoice (the whole remainder when `amount` is absent). */
export function registerPayment(
  store: CompanyStore,
  invoiceNumber: number,
  amount: number | undefined,
  today: string,
): { remainder: number } {
  const inv = store.byKey("DebtorInvoiceClient", invoiceNumber);
  if (!inv) throw new UcError("CouldNotFind", `Invoice ${invoiceNumber} was not found`);
  const trans = () => store.raw("DebtorTransClient").filter((t) => t.Invoice === inv.InvoiceNumber);
  const remainder = () => round2(trans().reduce((s, t) => s + Number(t.Amount ?? 0), 0));
  const paid = amount ?? remainder();
  const jp = store.nextJournalPostedId++;
  store.raw("DebtorTransClient").push({
    RowId: store.newRowId(),
    Account: inv.Account,
    Name: inv.Name,
    Date: stamp(today),
    Invoice: inv.InvoiceNumber,
    Amount: -paid,
    Currency: inv.Currency,
    Text: `Indbetaling faktura ${inv.InvoiceNumber}`,
    Voucher: store.nextVoucher++,
    JournalPostedId: jp,
    PostType: "Payment",
    Open: false,
  });
  const left = remainder();
  if (left === 0) for (const t of trans()) t.Open = false;
  return { remainder: left };
}

export interface ProjectCost {
  project: string;
  /** The posting date (YYYY-MM-DD); the control API fills in the company's calendar day when it is left out. */
  date: string;
  category: string;
  text?: string;
  qty?: number;
  /** Cost excluding VAT, in kroner. */
  amount: number;
  account: string;
  vat?: string;
  creditorAccount?: string;
  numberSerie?: string;
  /** A time registration (not an expense): CatType Labour, IsTimeJournal. */
  timeJournal?: boolean;
}

/** A posted journal of project costs: one JournalPostedId for the batch, one voucher per cost. */
export function postProjectCosts(store: CompanyStore, costs: ProjectCost[]): { journalPostedId: number; vouchers: number[] } {
  for (const c of costs) {
    if (!store.byKey("ProjectClient", c.project)) throw new UcError("CouldNotFind", `Project ${c.project} does not exist`);
    if (!store.byKey("PrCategoryClient", c.category)) throw new UcError("CouldNotFind", `Project category ${c.category} does not exist`);
    if (!store.byKey("GLAccountClient", c.account)) throw new UcError("AccountIsMissing", `Account ${c.account} does not exist`);
  }
  const jp = store.nextJournalPostedId++;
  const vouchers: number[] = [];
  costs.forEach((c) => {
    const series = store.byKey("NumberSerieClient", c.numberSerie ?? "KOB");
    if (!series) throw new UcError("CouldNotFind", `Number series ${c.numberSerie} does not exist`);
    const voucher = Number(series.NextNumber);
    series.NextNumber = voucher + 1;
    vouchers.push(voucher);
    const cat = store.byKey("PrCategoryClient", c.category)!;
    const creditor = c.creditorAccount ? store.byKey("CreditorClient", c.creditorAccount) : undefined;
    const vat = round2((c.amount * Number(store.byKey("GLVatClient", c.vat ?? "I25")?.Rate ?? 0)) / 100);
    const base = { Date: stamp(c.date), Voucher: voucher, JournalPostedId: jp, NumberSerie: series.Number };
    store.raw("ProjectTransClient").push(
      clean({
        RowId: store.newRowId(),
        ...base,
        Project: c.project,
        PrCategory: c.category,
        CategoryName: cat.Name,
        CatType: c.timeJournal ? "Labour" : cat.CatType,
        Text: c.text,
        Qty: c.qty ?? 1,
        CostAmount: c.amount,
        CostPrice: round2(c.amount / (c.qty ?? 1)),
        SalesAmount: 0,
        CreditorAccount: creditor?.Account,
        CreditorName: creditor?.Name,
        LineNumber: 1,
        Invoiceable: true,
        Invoiced: false,
        IsTimeJournal: c.timeJournal ?? false,
      }),
    );
    const gl = (account: unknown, amount: number, line: number) =>
      store.raw("GLTransClient").push(
        clean({
          RowId: store.newRowId(),
          ...base,
          Account: account,
          Amount: amount,
          Text: c.text,
          VoucherLine: line,
          DCAccount: creditor?.Account,
          DCType: creditor ? "Creditor" : undefined,
        }),
      );
    gl(c.account, c.amount, 1);
    if (vat) gl(fixtures.accounts.purchaseVat, vat, 2);
    if (creditor) {
      gl(fixtures.accounts.creditors, -round2(c.amount + vat), 3);
      store.raw("CreditorTransClient").push({
        RowId: store.newRowId(),
        ...base,
        Account: creditor.Account,
        Name: creditor.Name,
        Amount: -round2(c.amount + vat),
        Project: c.project,
        Text: c.text ?? "",
        Open: true,
        PostType: "Invoice",
      });
    }
  });
  return { journalPostedId: jp, vouchers };
}

/** What each debtor owes: the sum of its debtor transactions (invoices positive, credit notes and payments negative). */
export function balances(store: CompanyStore): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of store.raw("DebtorTransClient")) out[String(t.Account)] = round2((out[String(t.Account)] ?? 0) + Number(t.Amount ?? 0));
  return out;
}
