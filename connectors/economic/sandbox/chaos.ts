// The chaos run's adapter for the e-conomic sandbox (scripts/chaos.ts): the sandbox behind a request log,
// its fault rules, the [[targets]] table, and the booked invoices, drafts, customers and projects read back.
import { chaosBackgroundFaults, minor, serveLogged, type BookedDoc, type ChaosAdapter, type LoggedRequest } from "../../sandbox.ts";
import { createEconomicSandbox } from "./index.ts";

export const chaos: ChaosAdapter = async ({ name, random, plan }) => {
  const log: LoggedRequest[] = [];
  let server: ReturnType<typeof Bun.serve> | undefined;
  // Pooled keep-alive connections would let a client silently retry a dropped request (faults.ts).
  const sandbox = createEconomicSandbox({ random, onDropArmed: () => server?.closeIdleConnections() });
  server = serveLogged((req) => sandbox.app.fetch(req), log);
  const url = `http://127.0.0.1:${server.port}`;
  const running = server;
  return {
    log,
    toml:
      `[[targets]]\nname = "${name}"\nkind = "economic"\nrest_url = "${url}"\nprojects_url = "${url}/projectsapi/v1.1.0"\n` +
      `app_secret_token = "demo-app-secret"\nagreement_grant_token = "demo-agreement-grant"\nrequests_per_second = 0\nrequest_timeout_ms = ${plan.timeoutMs}\nlate_answer_wait_ms = ${plan.lateAnswerWaitMs}\n`,
    background() {
      sandbox.clearFaults();
      for (const { fault, ...rule } of chaosBackgroundFaults(plan, ["^/invoices/drafts$"])) sandbox.addFault({ kind: fault, ...rule });
    },
    throttle(retryAfterSeconds) {
      sandbox.clearFaults();
      sandbox.addFault({ kind: "429", probability: 1, retryAfterSeconds });
    },
    faultsInjected: () => ({ ...sandbox.stats().faults }),
    snapshot() {
      const s = sandbox.state;
      const booked: BookedDoc[] = [...s.booked.values()].map(({ invoice: b }) => ({
        psaId: b.references?.other ?? null,
        number: String(b.bookedInvoiceNumber),
        customer: String(b.customer?.customerNumber),
        lines: [...(b.lines ?? [])]
          .sort((x, y) => x.lineNumber - y.lineNumber)
          .map((l) => ({ text: l.description, quantity: l.quantity, unitPrice: minor(l.unitNetPrice) })),
        total: minor(b.netAmount),
      }));
      return {
        booked,
        drafts: [...s.drafts.values()].map((d) => ({
          psaId: d.invoice.references?.other ?? null,
          createdAt: Date.parse(d.invoice.lastUpdated),
        })),
        customers: [...s.customers.keys()].map(String),
        projects: [...s.projects.keys()].map(String),
      };
    },
    stop: () => running.stop(true),
  };
};
