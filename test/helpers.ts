// Shared test helpers: temp data directories and small canonical payloads.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pushUnder } from "../connectors/http.ts";

export const tempDir = (prefix = "kontobro-") => mkdtempSync(join(tmpdir(), prefix));

export const customerEvent = (n: number, extra: Record<string, unknown> = {}, id = `c-${n}-${Math.random()}`) => ({
  id,
  type: "customer.upserted",
  data: {
    number: n,
    name: `Customer ${n}`,
    currency: "NOK",
    addresses: [{ street: "Strandgaten 1", zip: "5013", city: "Bergen", country: "NO" }],
    ...extra,
  },
});

export const projectEvent = (n: number, customer: number, extra: Record<string, unknown> = {}, id = `p-${n}-${Math.random()}`) => ({
  id,
  type: "project.upserted",
  data: { number: n, name: `Project ${n}`, customerNumber: customer, ...extra },
});

export const invoiceEvent = (n: number, customer: number, project?: number, extra: Record<string, unknown> = {}, id = `i-${n}`) => ({
  id,
  type: "invoice.finalized",
  data: {
    number: n,
    psaId: `PSA-INV-${n}`,
    customerNumber: customer,
    ...(project ? { projectNumber: project } : {}),
    date: "2026-11-20",
    dueDate: "2026-12-04",
    currency: "NOK",
    lines: [
      { text: "Consulting", quantity: 7.5, unitPrice: 145000, kind: "hours" },
      { text: "Travel", quantity: 1, unitPrice: 50000, kind: "expenses" },
    ],
    ...extra,
  },
});

/** Polls until `fn` returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what} (last value: ${JSON.stringify(last)})`);
}

/**
 * One attempt as the dispatcher makes it (connectors/http.ts pushUnder): a write answered after request_timeout_ms
 * fails the push at the deadline, and the attempt ends only once that write has answered.
 */
export const asDispatcher = <T>(push: () => Promise<T>): Promise<T> => pushUnder(() => null, push);

/**
 * An attempt whose hold on its late writes is lost (a stop past its grace, a lease taken over): it settles as soon as
 * the push fails or succeeds, while a write answered late is still listened to (and acted on) behind it.
 */
export function attemptHoldLost<T>(push: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    pushUnder(
      () => null,
      () =>
        push().then(resolve, (e) => {
          reject(e);
          throw e;
        }),
    ).catch(() => undefined);
  });
}
