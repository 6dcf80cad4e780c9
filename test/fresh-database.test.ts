// A new, empty database against a company that already holds kontobro's bookings: the customer deleted the data
// directory (or moved kontobro to a new server without it, or a hosted tenant was removed and added again), and the
// PSA sends its history again. Nothing is detected (no backup marker, no high-water marks): the second agent starts
// as a new installation. Real agents on SQLite files against the real sandboxes over loopback: one agent books, a
// second one on a fresh data directory gets the same records again, a changed invoice and credit notes.
import { afterEach, describe, expect, test } from "bun:test";
import { startAgent, type RunningAgent } from "../agent/agent.ts";
import { demoConfig, startDemoTarget, type DemoTarget } from "../agent/demo.ts";
import { silentLogger } from "../agent/log.ts";
import { sandboxControl } from "../connectors/demo-activity.ts";
import { customerEvent, invoiceEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";

let agent: RunningAgent | undefined;
let target: DemoTarget | undefined;
afterEach(async () => {
  await agent?.stop();
  await target?.stop();
  agent = target = undefined;
});

/** Credit note `n` of invoice 20001 (11,375.00 NOK net: 7.5 h at 1,450.00 and 500.00 of travel), crediting `amount`. */
const credit = (n: number, unitPrice: number, id: string) => ({
  id,
  type: "invoice.credited",
  data: {
    ...invoiceEvent(n, 10501).data,
    psaId: `PSA-CN-${n}`,
    creditedInvoiceNumber: 20001,
    lines: [{ text: "Credit", kind: "hours", quantity: 1, unitPrice }],
  },
});
/** Invoice `n` (20001 unless said): 11,375.00 NOK net with 7.5 hours, 13,550.00 with 9. */
const invoice = (id: string, hours = 7.5, n = 20001) =>
  invoiceEvent(n, 10501, 30501, { lines: [{ text: "Consulting", quantity: hours, unitPrice: 145000, kind: "hours" }, TRAVEL] }, id);
const TRAVEL = { text: "Travel", quantity: 1, unitPrice: 50000, kind: "expenses" };

/** An agent on a data directory of its own (a new installation), against the one sandbox. */
async function startFresh(t: DemoTarget, settings: Record<string, unknown>): Promise<RunningAgent> {
  const target: Record<string, unknown> = { ...t.target, requests_per_second: 0, ...settings };
  // A new installation is connected anew (kontobro connect): the first one's refresh token has rotated since.
  if (t.target.kind === "eaccounting") target.refresh_token = (await sandboxControl(t.sandboxUrl)("oauth/grant", {})).refresh_token;
  const { config, targets } = demoConfig({ dataDir: tempDir(), port: 0, target });
  Object.assign(config.dispatch, { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 });
  return startAgent(config, targets, silentLogger);
}

async function post(events: unknown[]): Promise<void> {
  const res = await fetch(`${agent!.url}/api/v1/events`, {
    method: "POST",
    body: JSON.stringify(events),
    headers: { authorization: `Bearer ${agent!.apiToken}`, "content-type": "application/json" },
  });
  expect(res.status).toBe(202);
}

interface Settled {
  status: string;
  code: string | null;
  message: string | null;
  remoteId: string | null;
  note: string | null;
}
/** The delivery of event `eventId` once it is done or needs action. */
const settled = (eventId: string) =>
  waitFor(`delivery of ${eventId} settled`, () => {
    const d = agent!.db.$client
      .query(
        `SELECT d.status, d.error_code AS code, d.error_message AS message, d.remote_id AS remoteId, d.note
           FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.event_id = ?1 ORDER BY d.id DESC`,
      )
      .get(eventId) as Settled | null;
    return d && ["done", "needs_action"].includes(d.status) ? d : undefined;
  }) as Promise<Settled>;
const outcome = (d: { status: string; code: string | null }) => ({ status: d.status, code: d.code });

/** Per target: its settings, what a person does there after the first agent's pushes, and what the sandbox holds. */
interface Case {
  settings?: Record<string, unknown>;
  prepare?: (sandboxUrl: string) => Promise<void>;
  afterFirst?: (sandboxUrl: string) => Promise<void>;
  changedCode: string;
  /** Its invoices and credit notes: [number, our reference]; its customers' and projects' names. */
  held: (state: any) => { documents: [string, string][]; customers: string[]; projects: string[] };
}

const company = (state: any) => Object.values(state.companies)[0] as any;
const CASES: Record<string, Case> = {
  economic: {
    changedCode: "economic.invoice_already_booked",
    held: (s) => ({
      documents: s.booked.map((b: any) => [String(b.bookedInvoiceNumber), b.references?.other]),
      customers: s.customers.map((c: any) => c.address),
      projects: s.projects.map((p: any) => p.name),
    }),
  },
  unimicro: {
    changedCode: "unimicro.invoice_changed_after_booking",
    held: (s) => ({
      documents: company(s).invoices.map((i: any) => [String(i.InvoiceNumber), i.InternalNote]),
      customers: company(s).customers.map((c: any) => c.Info?.InvoiceAddress?.AddressLine1 ?? c.Info?.Addresses?.[0]?.AddressLine1),
      projects: company(s).projects.map((p: any) => p.Name),
    }),
  },
  uniconta: {
    // The sandbox's company keeps NOK (the demo's invoices): only invoices in company_currency are compared by amount.
    settings: { company_currency: "NOK" },
    prepare: async (url) => void (await sandboxControl(url)("number-series", { next: 20001 })),
    changedCode: "uniconta.invoice_changed_after_posting",
    held: (s) => ({
      documents: company(s).rows.DebtorInvoiceClient.map((r: any) => [String(r.InvoiceNumber), r.OurRef]),
      customers: company(s).rows.DebtorClient.map((c: any) => c.Address1),
      projects: company(s).rows.ProjectClient.map((p: any) => p.Name),
    }),
  },
  eaccounting: {
    settings: { credit_notes: "draft" },
    // A person sends the drafts the first agent made: eAccounting numbers them (1, 2).
    afterFirst: async (url) => {
      const control = sandboxControl(url);
      for (const d of (await control("state")).drafts) await control("send-draft", { draftId: d.Id });
    },
    changedCode: "eaccounting.invoice_changed_after_sending",
    held: (s) => ({
      documents: [
        ...s.drafts.map((d: any) => [`draft`, d.YourReference ?? d.ElectronicReference]),
        ...s.invoices.map((i: any) => [String(i.InvoiceNumber), i.YourReference ?? i.ElectronicReference]),
      ],
      customers: s.customers.map((c: any) => c.InvoiceAddress1),
      projects: s.costCenters.find((c: any) => c.Number === 1).Items.map((i: any) => i.Name),
    }),
  },
};

describe("a new, empty database against a company that holds kontobro's bookings", () => {
  for (const [kind, c] of Object.entries(CASES)) {
    test(`${kind}: the PSA's history sent again is found, not booked twice; a changed version and an over-credit need action`, async () => {
      target = await startDemoTarget(kind);
      await c.prepare?.(target.sandboxUrl);
      agent = await startFresh(target, c.settings ?? {});
      await post([customerEvent(10501, {}, "c1"), projectEvent(30501, 10501, {}, "p1"), invoice("i1"), credit(20002, 100_000, "cn1")]);
      expect(outcome(await settled("i1"))).toEqual({ status: "done", code: null });
      expect(outcome(await settled("cn1"))).toEqual({ status: "done", code: null });
      // After the credit note: Uniconta's number series gives numbers in the order of posting.
      await post([invoice("j1", 7.5, 20003)]);
      expect(outcome(await settled("j1"))).toEqual({ status: "done", code: null });
      await agent.stop();
      await c.afterFirst?.(target.sandboxUrl);
      const before = c.held(await sandboxControl(target.sandboxUrl)("state"));

      // The data directory is gone: a new installation, and the PSA sends its history again.
      agent = await startFresh(target, c.settings ?? {});
      // First a correction of an invoice the PSA does not send again as it was: other amounts than booked.
      await post([customerEvent(10501, {}, "c2a"), projectEvent(30501, 10501, {}, "p2a"), invoice("j2", 9, 20003)]);
      const correction = await settled("j2");
      expect(outcome(correction)).toEqual({ status: "needs_action", code: c.changedCode });
      expect(correction.message).toContain("13550.00");
      const moved = { addresses: [{ street: "Kaigaten 9", zip: "5015", city: "Bergen", country: "NO" }] };
      await post([customerEvent(10501, moved, "c2"), projectEvent(30501, 10501, { name: "Project 30501 renamed" }, "p2")]);
      await post([invoice("i2"), credit(20002, 100_000, "cn2")]);
      expect(outcome(await settled("c2"))).toEqual({ status: "done", code: null });
      expect(outcome(await settled("p2"))).toEqual({ status: "done", code: null });
      expect(outcome(await settled("i2"))).toEqual({ status: "done", code: null });
      expect(outcome(await settled("cn2"))).toEqual({ status: "done", code: null });
      const held = () => sandboxControl(target!.sandboxUrl)("state").then(c.held);
      expect((await held()).documents).toEqual(before.documents);
      // A further credit note that, with the 1,000.00 credited, credits more than the invoice's 11,375.00.
      await post([credit(20005, 1_100_000, "cn3")]);
      const over = await settled("cn3");
      expect(outcome(over)).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
      // A corrected version of the booked invoice: other amounts.
      await post([invoice("i3", 9)]);
      const changed = await settled("i3");
      expect(outcome(changed)).toEqual({ status: "needs_action", code: c.changedCode });
      expect(changed.message).toContain("13550.00");

      const after = await held();
      expect(after.documents).toEqual(before.documents);
      expect(after.documents).toHaveLength(3);
      expect(after.customers).toEqual(["Kaigaten 9"]);
      expect(after.projects).toEqual(["Project 30501 renamed"]);
    }, 60_000);
  }
});
