// Shared set-up for the e-conomic connector tests: a real sandbox on loopback, a connector talking to it
// over HTTP, and canonical payloads made by the intake's own parser.
import { parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import type { PushContext } from "../connectors/contract.ts";
import { EconomicConfig } from "../connectors/economic/config.ts";
import { EconomicConnector } from "../connectors/economic/connector.ts";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";

export const TOKENS = { app_secret_token: "demo-app-secret", agreement_grant_token: "demo-agreement-grant" };

export function economicConfig(sb: StartedEconomicSandbox, over: Record<string, unknown> = {}): EconomicConfig {
  return EconomicConfig.parse({ rest_url: sb.url, projects_url: sb.projectsUrl, ...TOKENS, requests_per_second: 0, ...over });
}

export function connectorFor(sb: StartedEconomicSandbox, over: Record<string, unknown> = {}): EconomicConnector {
  return new EconomicConnector("eco", economicConfig(sb, over), { log: silentLogger });
}

export async function startEconomic(over: Record<string, unknown> = {}) {
  const sb = await startEconomicSandbox({ port: 0 });
  return { sb, conn: connectorFor(sb, over) };
}

/** The canonical payload intake stores for one PSA event (so sign and number rules are the model's). */
export function canonical(event: unknown): any {
  const parsed = parseEvents([event]);
  if (!parsed.ok) throw new Error(`fixture refused by intake: ${JSON.stringify(parsed)}`);
  return parsed.events[0]!.data;
}

let keys = 0;
/** A push context; `customer` is what `record("customer", …)` answers. */
export function pushCtx(opts: { uncertain?: boolean; link?: string; customer?: unknown } = {}): PushContext {
  return {
    link: opts.link ? { remoteId: opts.link } : null,
    uncertain: opts.uncertain ?? false,
    idempotencyKey: `test-${process.pid}-${++keys}`,
    record: (entity) => (entity === "customer" ? (opts.customer ?? null) : null),
  };
}

/** Drafts at the sandbox carrying this PSA id in references.other. */
export function draftsFor(sb: StartedEconomicSandbox, psaId: string): any[] {
  return [...sb.sandbox.state.drafts.values()].map((d) => d.invoice).filter((d) => d.references?.other === psaId);
}

/** Books an invoice at the sandbox the way a person would by hand (another reference, or ours). */
export async function bookByHand(
  sb: StartedEconomicSandbox,
  number: number,
  customerNumber: number,
  other: string | undefined,
): Promise<void> {
  const headers = {
    "X-AppSecretToken": TOKENS.app_secret_token,
    "X-AgreementGrantToken": TOKENS.agreement_grant_token,
    "content-type": "application/json",
  };
  const draft = await fetch(`${sb.restUrl}/invoices/drafts`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      date: "2026-10-01",
      currency: "NOK",
      customer: { customerNumber },
      paymentTerms: { paymentTermsNumber: 1 },
      layout: { layoutNumber: 19 },
      recipient: { name: "Booked by hand", vatZone: { vatZoneNumber: 1 } },
      ...(other ? { references: { other } } : {}),
      lines: [{ lineNumber: 1, product: { productNumber: "TIME" }, description: "by hand", quantity: 1, unitNetPrice: 10 }],
    }),
  });
  const { draftInvoiceNumber } = (await draft.json()) as any;
  const booked = await fetch(`${sb.restUrl}/invoices/booked/${number}`, {
    method: "PUT",
    headers,
    body: JSON.stringify({ draftInvoice: { draftInvoiceNumber }, bookWithNumber: number }),
  });
  if (booked.status >= 300) throw new Error(`booking by hand failed: ${await booked.text()}`);
}
