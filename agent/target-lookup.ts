// The settings by which a target's connector finds again what it sent (its lookupKeys, connectors/contract.ts: the
// field that carries kontobro's marker), and what happens when a configuration changes one. A delivery whose create may
// have landed with its answer lost (uncertain, or in flight when the change comes) is looked up by them before anything
// is created again: with another value the lookup finds nothing and the record is created (booked) a second time. The
// rule, the same for kontobro.toml (the SQLite agent at its start) and a hosted tenant's change:
//   - The values are kept per target in the settings row `target_lookup:<name>` with its kind, written the first time
//     the target is seen (a hosted tenant's first change compares with its previous configuration instead).
//   - Another value while no delivery of the target waits for its outcome there: recorded, nothing else.
//   - Another value while some do: refused, naming the target, the setting, its value before and how many wait, with
//     the way on: set it back until they are settled (done, or refused by the target), then change it.
//   - Another account (or kind) under the name: not compared; the records waiting were sent to the old one, and
//     agent/target-account.ts's rule decides (call this before it records the new account).
// Pure apart from the SQL, written once for both engines on the tenant's runner.
import { connectorKinds } from "../connectors/registry.ts";
import { NOT_DONE } from "./db/open-deliveries.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import { type AccountTarget, accountMoved } from "./target-account.ts";

/** What the lookups of a target depend on: its kind and the values of its connector's lookupKeys. */
interface Lookup {
  kind: string;
  values: Record<string, unknown>;
}

function lookupOf(t: AccountTarget): Lookup | null {
  const keys = connectorKinds[t.kind]?.lookupKeys ?? [];
  if (keys.length === 0) return null;
  return { kind: t.kind, values: Object.fromEntries(keys.map((k) => [k, t.settings?.[k] ?? null])) };
}

const SETTING = (target: string) => `target_lookup:${target}`;
const READ = `SELECT value FROM settings WHERE name = ?1`;
const WRITE = `INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`;
/** Deliveries of the target whose outcome there is not known: a write of theirs may have landed, unlinked. */
const WAITING = `SELECT count(*) AS n FROM deliveries
  WHERE target = ?1 AND ${NOT_DONE} AND status <> 'superseded' AND (uncertain = 1 OR status = 'in_flight')`;

const shown = (v: unknown) => JSON.stringify(v ?? null);

/**
 * Compares each target's lookup settings with the ones recorded (else `previous`'s, a hosted tenant's configuration
 * before the change) in `tx`, the change's transaction, before reconcileAccounts records the accounts. Returns one
 * problem line per refused change (nothing written then: the caller refuses the whole configuration), else records
 * every target's values and returns [].
 */
export async function reconcileLookups(tx: SqlRunner, targets: AccountTarget[], previous: AccountTarget[] = []): Promise<string[]> {
  const problems: string[] = [];
  const writes: [string, string][] = [];
  for (const t of targets) {
    const now = lookupOf(t);
    if (!now) continue;
    const row = await tx.get<{ value: string }>(READ, SETTING(t.name));
    const earlier = previous.find((p) => p.name === t.name);
    const before = row ? (JSON.parse(row.value) as Lookup) : earlier ? lookupOf(earlier) : null;
    const compared = before && before.kind === now.kind && !(await accountMoved(tx, t, earlier));
    const changed = compared ? Object.keys(now.values).filter((k) => shown(before.values[k]) !== shown(now.values[k])) : [];
    const waiting = changed.length > 0 ? (await tx.get<{ n: number }>(WAITING, t.name))!.n : 0;
    if (waiting > 0) {
      const was = changed.map((k) => `${k} back to ${shown(before!.values[k])}`).join(" and ");
      problems.push(
        `targets.${t.name}: ${changed.join(", ")} changed (it was ${changed.map((k) => shown(before!.values[k])).join(", ")}) while ${waiting} ${waiting === 1 ? "delivery" : "deliveries"} to the target ${waiting === 1 ? "waits" : "wait"} for ${waiting === 1 ? "its" : "their"} outcome there (sent, the answer lost or not yet in). kontobro finds such a record there by this setting before it sends it again: with the new value it would not find it and would create (book) it a second time. Set ${was} and let the agent settle them (each is listed with uncertain: true by GET /api/v1/deliveries until it is done; one that needs action is settled by its retry), then change it.`,
      );
      continue;
    }
    if (!row || row.value !== JSON.stringify(now)) writes.push([SETTING(t.name), JSON.stringify(now)]);
  }
  if (problems.length > 0) return problems;
  for (const [name, value] of writes) await tx.run(WRITE, name, value);
  return [];
}
