// What a person does in Uniconta during `kontobro demo` (ConnectorFactory.startDemoActivity), through the
// sandbox's control API (sandbox/control.ts): posts a project cost from a supplier on each project the PSA sent,
// up to DEMO_COSTED_PROJECTS (in the purchase number series the demo target pulls, so the expenses pull brings
// it back), and registers the payment of each posted invoice a round after it appeared (the payments pull
// reports it paid).
import { DEMO_COSTED_PROJECTS, demoLoop, sandboxControl } from "../demo-activity.ts";

/** The demo company's set-up (sandbox/fixtures.json): creditors, expense categories and accounts. */
const COSTS = [
  { category: "REJSE", account: "2750", creditor: "30011", text: "Hotel, befaring" },
  { category: "MATERIALER", account: "2800", creditor: "30012", text: "Byggematerialer" },
  { category: "REJSE", account: "2750", creditor: "30013", text: "Togbilletter" },
];

export function startDemoActivity(sandboxUrl: string, intervalMs: number, log: (msg: string) => void = () => {}): () => void {
  const control = sandboxControl(sandboxUrl);
  const costed = new Set<string>();
  const seen = new Set<number>();
  const paid = new Set<number>();
  return demoLoop(
    async () => {
      const state = await control("state");
      const company = Object.values(state.companies ?? {})[0] as { rows: Record<string, any[]> } | undefined;
      const rows = company?.rows ?? {};
      const toPay = [...seen].filter((n) => !paid.has(n));
      for (const n of toPay) {
        await control("payments", { invoice: n });
        paid.add(n);
      }
      for (const inv of rows.DebtorInvoiceClient ?? []) if (inv.TotalAmount > 0) seen.add(inv.InvoiceNumber);
      const projects = (rows.ProjectClient ?? [])
        .map((p) => String(p.Number))
        .filter((n) => !costed.has(n))
        .slice(0, DEMO_COSTED_PROJECTS - costed.size);
      if (projects.length > 0) {
        await control("project-costs", {
          costs: projects.map((project, i) => {
            const cost = COSTS[(costed.size + i) % COSTS.length]!;
            return {
              project,
              // No date: the sandbox posts it on the company's calendar day (Danish), the day the expense pull's
              // window counts from; this machine's date differs from it around midnight.
              category: cost.category,
              account: cost.account,
              creditorAccount: cost.creditor,
              text: cost.text,
              amount: 980 + ((costed.size + i) % 5) * 245,
              numberSerie: "KOB",
            };
          }),
        });
        for (const p of projects) costed.add(p);
      }
      if (projects.length + toPay.length > 0)
        log(
          `demo: in Uniconta, costs posted on project(s) ${projects.join(", ") || "none"}, invoice(s) paid ${toPay.join(", ") || "none"}`,
        );
    },
    intervalMs,
    log,
  );
}
