// Credentials that end on a known date while nobody looks (a Uni Micro client certificate's notAfter): an alert some
// weeks before (notifications.credential_expiry_warn_days), naming the target, the date and how to renew, that stays
// open once the date has passed and is resolved when the credential is renewed (or no longer configured). Read from
// the connectors (Connector.expiringCredentials: the settings, no network), as problems only the process knows.
import type { Connector } from "../../connectors/contract.ts";
import type { Problem } from "./alerts.ts";
import { capitalise } from "../problem.ts";

const DAY_MS = 86_400_000;

/** The alert's subject for a credential: one alert per credential, from "expires soon" to "expired". */
export const EXPIRY_SUBJECT_PREFIX = "expiry:";

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Every credential that ends within `warnDays` (or has ended), as an alert of its target. */
export function credentialExpiryProblems(connectors: Iterable<[string, Connector]>, warnDays: number, now: number): Problem[] {
  if (warnDays <= 0) return [];
  const problems: Problem[] = [];
  for (const [target, connector] of connectors) {
    for (const c of connector.expiringCredentials?.() ?? []) {
      if (c.expiresAt - now > warnDays * DAY_MS) continue;
      const expired = c.expiresAt <= now;
      problems.push({
        target,
        kind: "credentials",
        subject: EXPIRY_SUBJECT_PREFIX + c.id,
        code: expired ? "credential_expired" : "credential_expiring",
        message: expired
          ? `${capitalise(c.what)} of ${target} expired on ${utcDay(c.expiresAt)}: nothing is sent to ${target} until it is renewed.`
          : `${capitalise(c.what)} of ${target} expires on ${utcDay(c.expiresAt)}: after that nothing is sent to ${target} until it is renewed.`,
        hint: c.renew,
        detail: { credential: c.id, expiresAt: c.expiresAt },
      });
    }
  }
  return problems;
}
