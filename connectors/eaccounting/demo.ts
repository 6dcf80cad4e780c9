// What a person does in eAccounting during `kontobro demo --target eaccounting` (ConnectorFactory.startDemoActivity),
// through the sandbox's control API (sandbox/control.ts), every round: registers payment for the invoices sent a
// round earlier, sends the drafts kontobro made (eAccounting numbers them), books a supplier invoice with a row on
// each project the PSA sent, up to DEMO_COSTED_PROJECTS (its cost-centre item: the expenses pull brings it back),
// and creates a customer and an article (they reach the PSA's inbox feed).
import { DEMO_COSTED_PROJECTS, demoLoop, demoToday, sandboxControl } from "../demo-activity.ts";

const SUPPLIERS = ["Hotell Stockholm AB", "Byggvaruhuset i Solna AB", "SJ AB"];

export function startDemoActivity(sandboxUrl: string, intervalMs: number, log: (msg: string) => void = () => {}): () => void {
  const control = sandboxControl(sandboxUrl);
  const costed = new Set<string>();
  let round = 0;
  let sent: number[] = [];
  return demoLoop(
    async () => {
      round++;
      for (const n of sent) await control("payments", { invoiceNumber: n });
      const state = await control("state");
      sent = [];
      for (const d of state.drafts ?? []) sent.push((await control("send-draft", { draftId: d.Id })).InvoiceNumber);
      const center = (state.costCenters ?? []).find((c: any) => c.Number === 1);
      const items = ((center?.Items ?? []) as any[])
        .filter((i) => i.IsActive !== false && !costed.has(i.ShortName))
        .slice(0, DEMO_COSTED_PROJECTS - costed.size);
      if (items.length > 0) {
        await control("supplier-invoices", {
          invoices: items.map((item, i) => {
            const amount = 1200 + ((costed.size + i) % 5) * 350;
            return {
              SupplierName: SUPPLIERS[(costed.size + i) % SUPPLIERS.length],
              InvoiceNumber: `L-${round}-${i + 1}`,
              InvoiceDate: `${demoToday()}T00:00:00`,
              Rows: [
                { AccountNumber: 5830, DebetAmount: amount, CreditAmount: 0, TransactionText: "Resa och logi", CostCenterItemId1: item.Id },
                { AccountNumber: 2641, DebetAmount: amount * 0.25, CreditAmount: 0, TransactionText: "Moms" },
                { AccountNumber: 2440, DebetAmount: 0, CreditAmount: amount * 1.25, TransactionText: "Leverantörsskuld" },
              ],
            };
          }),
        });
        for (const item of items) costed.add(item.ShortName);
      }
      const number = `9${String(round).padStart(3, "0")}`;
      await control("customers", {
        CustomerNumber: number,
        Name: `Kund från eAccounting ${round} AB`,
        InvoiceAddress1: `Storgatan ${round}`,
        InvoicePostalCode: "11122",
        InvoiceCity: "Stockholm",
        InvoiceCountryCode: "SE",
        ContactPersonName: "Anna Svensson",
      });
      await control("articles", { Number: `EA-${round}`, Name: `Artikel från eAccounting ${round}`, NetPrice: 100 * round });
      log(
        `demo: eAccounting made customer ${number} and article EA-${round}, sent ${sent.length} draft(s), booked supplier costs on ${items.length} project(s)`,
      );
    },
    intervalMs,
    log,
  );
}
