// What a person does in e-conomic during `kontobro demo` (ConnectorFactory.startDemoActivity), through the
// sandbox's ledger hooks (sandbox/ledger-control.ts): books a supplier invoice with its receipt on each project
// the PSA sent, up to DEMO_COSTED_PROJECTS (an expense the expenses pull brings back), marks each invoice
// kontobro booked as sent, and registers its payment a round later (the payments pull reports sent, then paid).
import { DEMO_COSTED_PROJECTS, demoLoop, demoToday, SAMPLE_RECEIPT_BASE64, sandboxControl } from "../demo-activity.ts";

/** The sandbox's suppliers and expense accounts (sandbox/ledger.ts createLedger). */
const SUPPLIERS = [1, 2, 3];
const COSTS = [
  { account: 2800, text: "Byggematerialer" },
  { account: 2810, text: "Underleverandør, elektriker" },
  { account: 2820, text: "Reise og opphold" },
];

export function startDemoActivity(sandboxUrl: string, intervalMs: number, log: (msg: string) => void = () => {}): () => void {
  const control = sandboxControl(sandboxUrl);
  const costed = new Set<number>();
  const sent = new Set<number>();
  const paid = new Set<number>();
  return demoLoop(
    async () => {
      const state = await control("state");
      const toPay = [...sent].filter((n) => !paid.has(n));
      for (const n of toPay) {
        await control("payments", { invoice: n });
        paid.add(n);
      }
      const toSend = (state.booked as any[])
        .filter((b) => b.grossAmount > 0 && !sent.has(b.bookedInvoiceNumber))
        .map((b) => b.bookedInvoiceNumber as number);
      for (const n of toSend) {
        await control(`invoices/booked/${n}`, { sent: true }, "PATCH");
        sent.add(n);
      }
      const projects = (state.projects as any[])
        .map((p) => p.number as number)
        .filter((n) => !costed.has(n))
        .slice(0, DEMO_COSTED_PROJECTS - costed.size);
      if (projects.length > 0) {
        await control("book/supplier-invoices", {
          vouchers: projects.map((project) => {
            const cost = COSTS[project % COSTS.length]!;
            return {
              date: demoToday(),
              supplierNumber: SUPPLIERS[project % SUPPLIERS.length]!,
              supplierInvoiceNumber: `F-${project}`,
              text: cost.text,
              lines: [{ account: cost.account, amount: 1250 + (project % 7) * 310, vatCode: "I25", projectNumber: project }],
              attachment: { fileName: `F-${project}.pdf`, contentBase64: SAMPLE_RECEIPT_BASE64 },
            };
          }),
        });
        for (const p of projects) costed.add(p);
      }
      if (projects.length + toSend.length + toPay.length > 0)
        log(
          `demo: in e-conomic, supplier invoices booked on project(s) ${projects.join(", ") || "none"}, invoice(s) sent ${toSend.join(", ") || "none"}, paid ${toPay.join(", ") || "none"}`,
        );
    },
    intervalMs,
    log,
  );
}
