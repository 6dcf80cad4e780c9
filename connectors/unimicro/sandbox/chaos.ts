// The chaos run's adapter for the Uni Micro sandbox (scripts/chaos.ts): the sandbox behind a request log,
// its fault rules, the [[targets]] table (with the demo client's key in a file), and the invoices, drafts,
// customers and projects read back.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { minor, serveLogged, type BookedDoc, type ChaosAdapter, type LoggedRequest, chaosBackgroundFaults } from "../../sandbox.ts";
import { markerPsaId } from "../map.ts";
import { FaultRulesBody } from "./faults.ts";
import { createUniMicroSandbox, DEMO_CLIENT_ID, DEMO_COMPANY } from "./index.ts";
import { INVOICE_STATUS } from "./store.ts";

export const chaos: ChaosAdapter = async ({ name, dir, plan }) => {
  const log: LoggedRequest[] = [];
  const sandbox = createUniMicroSandbox({});
  const server = serveLogged((req) => sandbox.fetch(req), log);
  const url = `http://127.0.0.1:${server.port}`;
  const keyPath = join(dir, "unimicro-client-key.pem");
  writeFileSync(keyPath, sandbox.demo!.privateKeyPem, { mode: 0o600 });
  const setRules = (rules: unknown[]) => {
    sandbox.faults.clear();
    sandbox.faults.add(FaultRulesBody.parse(rules));
    server.closeIdleConnections(); // a drop must not hit a pooled connection (see faults.ts)
  };
  return {
    log,
    toml:
      `[[targets]]\nname = "${name}"\nkind = "unimicro"\nplatform = "custom"\nbase_url = "${url}"\nidentity_url = "${url}/connect/token"\n` +
      `client_id = "${DEMO_CLIENT_ID}"\nprivate_key = "${keyPath}"\ncompany_key = "${DEMO_COMPANY.Key}"\n` +
      `accounts = { hours = 3000, expenses = 3400, products = 3000 }\nvat_codes = { hours = "3", expenses = "3", products = "3" }\n` +
      `product_numbers = { hours = "1", expenses = "2", products = "3" }\nrequests_per_second = 0\nrequest_timeout_ms = ${plan.timeoutMs}\nlate_answer_wait_ms = ${plan.lateAnswerWaitMs}\n`,
    background: () => setRules(chaosBackgroundFaults(plan, ["^/api/biz/invoices$"])),
    throttle: (retryAfterSeconds) => setRules([{ fault: "429", probability: 1, retryAfterSeconds }]),
    faultsInjected() {
      const counts: Record<string, number> = {};
      for (const r of sandbox.state().requests) for (const f of r.fault?.split(",") ?? []) counts[f] = (counts[f] ?? 0) + 1;
      return counts;
    },
    snapshot() {
      const rows = sandbox.store().rows;
      const byId = new Map(rows.invoices!.map((r) => [r.ID, r]));
      const customerNumber = new Map(rows.customers!.map((c) => [c.ID, String(c.CustomerNumber)]));
      const booked: BookedDoc[] = rows
        .invoices!.filter((r) => r.StatusCode !== INVOICE_STATUS.draft)
        .map((r) => ({
          psaId: markerPsaId(r.InternalNote),
          number: String(r.InvoiceNumber),
          customer: customerNumber.get(r.CustomerID) ?? `(ID ${r.CustomerID})`,
          lines: [...(r.Items ?? [])]
            .sort((x, y) => x.SortIndex - y.SortIndex)
            .map((it) => ({ text: it.ItemText, quantity: it.NumberOfItems, unitPrice: minor(it.PriceExVat) })),
          total: minor(r.TaxExclusiveAmount),
          createdAt: Date.parse(r.CreatedAt),
          ...(r.InvoiceReferenceID ? { creditedInvoiceNumber: String(byId.get(r.InvoiceReferenceID)?.InvoiceNumber) } : {}),
        }));
      return {
        booked,
        drafts: rows
          .invoices!.filter((r) => r.StatusCode === INVOICE_STATUS.draft)
          .map((r) => ({ psaId: markerPsaId(r.InternalNote), createdAt: Date.parse(r.CreatedAt) })),
        customers: rows.customers!.map((c) => String(c.CustomerNumber)),
        projects: rows.projects!.map((p) => String(p.ProjectNumber)),
      };
    },
    stop: async () => {
      server.stop(true);
    },
  };
};
