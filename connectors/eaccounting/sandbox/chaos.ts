// The chaos run's adapter for the eAccounting sandbox (scripts/chaos.ts): the sandbox behind a request log, its
// fault rules, the [[targets]] table (the sandbox's demo grant, credit notes as credit invoice drafts), and what the
// PSA's invoices became read back. kontobro makes drafts and a person sends them (README "Invoices → drafts"), so
// a PSA invoice is done when one draft carries its reference (or one invoice eAccounting made from such a draft):
// that one stands for it. Any further draft with the same reference is left over: sending it would invoice the
// customer twice, so a person would have to delete it.
import {
  minor,
  retryAfterHeaderMs,
  serveLogged,
  type BookedDoc,
  type ChaosAdapter,
  type LoggedRequest,
  chaosBackgroundFaults,
} from "../../sandbox.ts";
import { waitInMessage } from "../client.ts";
import { demoTarget } from "../index.ts";
import { psaIdOf } from "../map.ts";
import { FaultRulesBody } from "./faults.ts";
import { createEaccountingSandbox } from "./index.ts";
import type { Row } from "./validate.ts";

/** The draft field kontobro writes its reference to (the connector's default `reference_field`). */
const REFERENCE_FIELD = "ElectronicReference";
const CREDITED = /^Kreditering av faktura (\S+)$/;

/** A draft or invoice read back: eAccounting numbers an invoice itself when a person sends the draft, so it never carries the PSA's number. */
function bookedDoc(doc: Row, createdAt: number | undefined): BookedDoc {
  const rows = [...(doc.Rows as Row[])].sort((x, y) => Number(x.LineNumber) - Number(y.LineNumber));
  const credited = rows.map((r) => (r.IsTextRow ? CREDITED.exec(String(r.Text ?? "")) : null)).find((m) => m)?.[1];
  return {
    psaId: psaIdOf(doc[REFERENCE_FIELD]) ?? null,
    number: null,
    customer: String(doc.CustomerNumber),
    lines: rows
      .filter((r) => !r.IsTextRow)
      .map((r) => ({ text: String(r.Text ?? ""), quantity: Number(r.Quantity), unitPrice: minor(r.UnitPrice) })),
    total: minor(Number(doc.TotalAmount) - Number(doc.TotalVatAmount)),
    ...(createdAt !== undefined ? { createdAt } : {}),
    ...(credited !== undefined ? { creditedInvoiceNumber: credited } : {}),
  };
}

/** The wait a 429 asks for: eAccounting says it in the message ("Try again in N seconds"); a Retry-After header is unverified (§4). */
async function retryAfterMs(res: Response): Promise<number | undefined> {
  const header = retryAfterHeaderMs(res);
  return header !== undefined || res.status !== 429 ? header : waitInMessage(await res.clone().text());
}

export const chaos: ChaosAdapter = async ({ name, random, plan }) => {
  const log: LoggedRequest[] = [];
  // A rate limit no chaos run reaches (the agent's own bucket is off too, as for the other targets).
  const sandbox = createEaccountingSandbox({ random, rateLimitPerMinute: 1_000_000 });
  const invoicing = () => sandbox.invoicing();
  // Drafts carry their creation time to the second only: noted when the answer that made them is written (a
  // dropped or slow answer included: the sandbox commits before it answers), to tell which create made each.
  const madeAt = new Map<string, number>();
  const noteMade = () => {
    const now = Date.now();
    for (const id of invoicing().drafts.keys()) if (!madeAt.has(id)) madeAt.set(id, now);
  };
  const server = serveLogged(
    async (req) => {
      const res = await sandbox.fetch(req);
      if (req.method === "POST") noteMade();
      return res;
    },
    log,
    retryAfterMs,
  );
  // Pooled keep-alive connections would let a client silently retry a dropped request (faults.ts).
  sandbox.faults.onDropArmed = () => server.closeIdleConnections();
  const url = `http://127.0.0.1:${server.port}`;
  const demo = demoTarget(url);
  const setRules = (rules: unknown[]) => {
    sandbox.faults.clear();
    sandbox.faults.add(FaultRulesBody.parse(rules));
  };
  return {
    log,
    toml:
      `[[targets]]\nname = "${name}"\nkind = "eaccounting"\napi_url = "${demo.api_url}"\nidentity_url = "${demo.identity_url}"\n` +
      `client_id = "${demo.client_id}"\nclient_secret = "${demo.client_secret}"\nrefresh_token = "${demo.refresh_token}"\n` +
      `default_article = "${demo.default_article}"\nreference_field = "${REFERENCE_FIELD}"\ncredit_notes = "draft"\n` +
      `requests_per_second = 0\nrequest_timeout_ms = ${plan.timeoutMs}\nlate_answer_wait_ms = ${plan.lateAnswerWaitMs}\n`,
    // Dropped answers to writes of the API only: a refresh answer lost after the identity server rotated the token ends
    // in the reconnect state by design (README "Authorisation"; its own tests), which would stop the run, not test it.
    background: () => setRules(chaosBackgroundFaults(plan, ["^/v2/customerinvoicedrafts$"], "^/v2/")),
    throttle: (retryAfterSeconds) => setRules([{ fault: "429", probability: 1, retryAfterSeconds }]),
    faultsInjected: () => ({ ...sandbox.faults.injected }),
    snapshot() {
      const s = sandbox.store();
      // Invoices a person sent first (none in a chaos run), then the drafts in the order they were made.
      const docs = [
        ...[...invoicing().invoices.values()].map((i) => bookedDoc(i, undefined)),
        ...[...invoicing().drafts.values()].map((d) => bookedDoc(d, madeAt.get(String(d.Id)) ?? Date.parse(String(d.CreatedUtc)))),
      ];
      const booked: BookedDoc[] = [];
      const drafts: { psaId: string | null; createdAt: number }[] = [];
      const done = new Set<string>();
      for (const d of docs) {
        if (d.psaId !== null && !done.has(d.psaId)) {
          done.add(d.psaId);
          booked.push(d);
        } else drafts.push({ psaId: d.psaId, createdAt: d.createdAt ?? 0 });
      }
      return {
        booked,
        drafts,
        customers: [...s.customers.values()].map((c) => String(c.CustomerNumber)),
        projects: s.costCenters.flatMap((c) => (c.Items as Row[]).map((i) => String(i.ShortName))),
      };
    },
    stop: async () => {
      server.stop(true);
    },
  };
};
