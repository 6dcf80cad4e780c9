// Which account a target's records go to, and what happens when a configuration keeps a target's name but points it
// at another one (review finding 7). kontobro holds remote ids per target: links (the id each record got there, so a
// change goes as an update), master data (customers and products matched there) and the pull cursors (a position in
// that account's feeds). Pointed at another account, the same name would send updates to ids that do not exist there,
// or worse exist as other records. The rule, the same for kontobro.toml (the SQLite agent at its start) and a hosted
// tenant (`kontobro tenant set`, PUT /admin/v1/tenants/:slug/config):
//   - The account is the target's kind and its connector's accountKeys (connectors/contract.ts), kept per target in
//     the settings row `target_account:<name>` as a hash per key (some are secrets), written the first time the target
//     is seen (a hosted tenant's first change compares with its previous configuration instead).
//   - Another account while kontobro holds none of those ids for the target: recorded, nothing else.
//   - Another account while it holds some: refused, naming the target, what changed and how many ids are held, with
//     the two ways on: rename the target (a new name starts with no ids), or say which it is. `forget`: the target's
//     links, master data and cursors are dropped in the same transaction as the change, so its records are created
//     anew in the new account; `keep`: it is the same account after all (a new token for the same agreement), the ids
//     stay. Both are recorded and said in a warning.
//   - Whenever it now points at another account (not kept), what was pulled from the old one no longer counts as
//     seen: its inbox items are marked forgotten_at (kept, delivered if not yet) and its payment statuses dropped, so
//     the new account's items, numbered afresh with the same remote ids, reach the PSA; its master data reports are
//     resolved (they were about records there), a pull run of it under way is ended (its next page would start the
//     old account afresh), and a push under way to the old account has its lease taken back (its answer writes no link).
//   - A target new to kontobro (no account recorded) pointing at the account recorded for a target no longer configured
//     that holds ids there: that target renamed, refused naming the old name (its ids are under that name, so records
//     there could be made a second time), unless `forget` is given for the new name (start afresh all the same).
// Deliveries queued for the target stay queued and go to the account it now points at. Pure apart from the SQL,
// written once for both engines on the tenant's runner.
import { createHash } from "node:crypto";
import { connectorKinds } from "../connectors/registry.ts";
import { NOT_DONE } from "./db/open-deliveries.ts";
import type { SqlRunner } from "./db/pg/runner.ts";
import { lockTargets } from "./target-state.ts";

/** A target as configured: enough to know its account. */
export interface AccountTarget {
  name: string;
  kind: string;
  settings: Record<string, unknown> | undefined;
}

/** The target's account: its kind and a hash of each of its connector's accountKeys. Pure. */
export type Account = Record<string, string>;

/** Per target named: forget its ids, or keep them (the same account after all). */
export interface AccountChoices {
  forget?: string[];
  keep?: string[];
  /**
   * Targets whose ids are forgotten if, and only if, their account changed, with nothing said when it did not: a policy
   * of the caller (`kontobro demo`, whose sandbox is a new one at each start), not a person's choice to be checked.
   */
  forgetIfMoved?: string[];
}

/** A change refused: another account while kontobro holds ids of the old one. */
export interface AccountChange {
  target: string;
  /** "kind", or the keys whose values changed. */
  changed: string[];
  /** Links, master records and cursors kontobro holds for it. */
  held: number;
  /**
   * A target new to kontobro pointing at the account of a target no longer configured that holds ids there (`held`):
   * that target renamed. Under the new name those ids are not found, so records already there could be made again.
   */
  renamedFrom?: string;
  /** With renamedFrom: what the two have in common, the settings that tell the account (the kind and accountKeys). */
  sameBy?: string[];
}

const hash = (v: unknown) =>
  createHash("sha256")
    .update(JSON.stringify(v ?? null))
    .digest("hex")
    .slice(0, 16);

export function accountOf(t: AccountTarget): Account {
  const keys = connectorKinds[t.kind]?.accountKeys ?? [];
  return { kind: t.kind, ...Object.fromEntries(keys.map((k) => [k, hash(t.settings?.[k])])) };
}

/** What differs between two accounts of a target: "kind", else the keys whose hashes differ. Pure. */
export function accountDiff(before: Account, now: Account): string[] {
  if (before.kind !== now.kind) return ["kind"];
  return [...new Set([...Object.keys(before), ...Object.keys(now)])].filter((k) => k !== "kind" && before[k] !== now[k]);
}

const SETTING = (target: string) => `target_account:${target}`;
const READ = `SELECT value FROM settings WHERE name = ?1`;
const LOCK = `SELECT name FROM settings WHERE name = ?1 FOR UPDATE`;
const WRITE = `INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`;
/** The ids of the target's account kontobro holds: its links, master records and pull cursors. */
const HELD = `SELECT (SELECT count(*) FROM links WHERE target = ?1) + (SELECT count(*) FROM master_records WHERE target = ?1)
  + (SELECT count(*) FROM cursors WHERE target = ?1) AS n`;
const FORGET = [
  `DELETE FROM links WHERE target = ?1`,
  `DELETE FROM master_records WHERE target = ?1`,
  `DELETE FROM cursors WHERE target = ?1`,
] as const;
/**
 * What was pulled from the old account, whenever the target now points at another one (its ids forgotten, or none
 * held): its inbox items stay (those not delivered yet still go to the PSA) but no longer count as seen, since a new
 * account numbers its entries and invoices afresh and its items would carry the same remote ids; and the payment
 * statuses seen there go (a final one kept the invoice, booked anew in the new account, from being asked again).
 */
const PULLED_FROM_OLD = `UPDATE inbox SET forgotten_at = ?2 WHERE target = ?1 AND forgotten_at IS NULL`;
const STATUS_FROM_OLD = `DELETE FROM pull_status WHERE target = ?1`;
/**
 * A pull run of the target under way (on another worker, with the configuration before the change) stores nothing more:
 * its next page would read the cursor forgotten here and pull the old account from its start as the new one's.
 */
const RUNS_OF_OLD = `UPDATE job_runs SET status = 'interrupted', finished_at = ?2, error_code = 'interrupted',
    error_message = 'The run was stopped: its target was pointed at another account and what kontobro held of the old one was forgotten.',
    error_hint = 'Nothing to do: the next run pulls the account the target points at now.'
  WHERE target = ?1 AND status = 'running'`;
/**
 * A push to the old account under way (a worker with the configuration before the change) writes nothing when it
 * answers: its lease is taken back as a dead worker's is (pending, uncertain, an interrupted attempt), so no link to
 * a record in the old account lands after the ids were forgotten, and the delivery goes to the new account.
 */
const PUSHES_TO_OLD = [
  `INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, message, hint)
    SELECT id, attempts, ?2, 'interrupted', 'No answer was recorded: the target was pointed at another account while this push to the old one was under way.', 'Nothing to do: it goes to the account the target points at now.'
    FROM deliveries WHERE target = ?1 AND status = 'in_flight' AND ${NOT_DONE}`,
  `UPDATE deliveries SET status = 'pending', uncertain = 1, lease_until = NULL, lease_owner = NULL, updated_at = ?2
    WHERE target = ?1 AND status = 'in_flight' AND ${NOT_DONE}`,
] as const;
/** What a person was told of the old account's master data (a change there, a renumbering) is over: resolved. */
const REPORTS_FROM_OLD = `UPDATE master_reports SET resolved_at = ?2 WHERE target = ?1 AND resolved_at IS NULL`;

/** One line per refused change, for a ConfigError or a TenantError. Pure. */
export function accountProblems(
  refused: AccountChange[],
  how: { forget: (target: string) => string; keep: (target: string) => string },
): string[] {
  return refused.map((r) =>
    r.renamedFrom
      ? `targets.${r.target}: points at the same account as target "${r.renamedFrom}", which is no longer configured and under whose name kontobro holds ${r.held} id(s) of records there (links, master data, pull cursors), as far as the settings tell (the same ${(r.sameBy ?? ["kind"]).join(", ")}). Under a new name those ids are not found, so records already in that account could be created (booked) a second time. Give the target back its name "${r.renamedFrom}"; or, if it is another company or agreement (one chosen at sign-in is not in the settings), or to start afresh under the new name all the same, ${how.forget(r.target)}`
      : `targets.${r.target}: points at another account than before (${r.changed.join(", ")} changed), and kontobro holds ${r.held} id(s) of records in the old one (links, master data, pull cursors), to which updates would go. Give the target a new name to start afresh in the new account; or ${how.forget(r.target)} to forget those ids with this change (its records are then created anew there); or, if it is the same account after all (a new token), ${how.keep(r.target)}`,
  );
}

/**
 * Compares each target's account with the one recorded (else `previous`, a hosted tenant's configuration before the
 * change) in `tx`, the change's transaction. Returns the changes refused (nothing written then: the caller refuses the
 * whole configuration) or, when none is, records every target's account, applies the choices and returns warnings.
 */
export async function reconcileAccounts(
  tx: SqlRunner,
  targets: AccountTarget[],
  choices: AccountChoices = {},
  previous: AccountTarget[] = [],
): Promise<{ refused: AccountChange[]; unknownChoices: string[]; warnings: string[] }> {
  const forget = new Set(choices.forget ?? []);
  const keep = new Set(choices.keep ?? []);
  const forgetIfMoved = new Set(choices.forgetIfMoved ?? []);
  const unknownChoices = [...forget, ...keep].filter((n) => !targets.some((t) => t.name === n));
  const refused: AccountChange[] = [];
  /** `forget`: its ids go; `fresh`: it now points at another account than before (not taken for the same one). */
  const plan: { target: AccountTarget; account: Account; forget: boolean; fresh?: boolean; warning?: string }[] = [];
  for (const t of targets) {
    const account = accountOf(t);
    const row = await tx.get<{ value: string }>(READ, SETTING(t.name));
    const earlier = previous.find((p) => p.name === t.name);
    const before = row ? (JSON.parse(row.value) as Account) : earlier ? accountOf(earlier) : null;
    const changed = before ? accountDiff(before, account) : [];
    const renamed = before ? null : await renamedFrom(tx, t, account, targets);
    if (renamed && !forget.has(t.name)) {
      refused.push({ target: t.name, changed: [], ...renamed });
      continue;
    }
    if (renamed) {
      // Started afresh under the new name as asked: the old name's ids stay, unused (nothing to forget under this one).
      const warning = `target ${t.name} starts afresh, as asked: the ${renamed.held} id(s) kontobro holds under "${renamed.renamedFrom}" for the same account are not used, so records already booked there under that name are created again when they are sent`;
      plan.push({ target: t, account, forget: false, warning });
      continue;
    }
    if (changed.length === 0) {
      const asked = forget.has(t.name) ? "forget" : keep.has(t.name) ? "keep" : null;
      const warning = asked ? await sameAccountAsked(tx, t.name, asked, before !== null) : undefined;
      if (warning || !row || row.value !== JSON.stringify(account)) plan.push({ target: t, account, forget: false, warning });
      continue;
    }
    const held = (await tx.get<{ n: number }>(HELD, t.name))!.n;
    if (held === 0) plan.push({ target: t, account, forget: false, fresh: true });
    else if (forget.has(t.name) || forgetIfMoved.has(t.name))
      plan.push({
        target: t,
        account,
        forget: true,
        fresh: true,
        warning: `target ${t.name} points at another account (${changed.join(", ")} changed): its ${held} id(s) of records in the old one were forgotten; its records are created anew in the new account as they are sent`,
      });
    else if (keep.has(t.name))
      plan.push({
        target: t,
        account,
        forget: false,
        warning: `target ${t.name}: ${changed.join(", ")} changed and was taken for the same account (kept): its ${held} id(s) of records there stay`,
      });
    else refused.push({ target: t.name, changed, held });
  }
  if (refused.length > 0 || unknownChoices.length > 0) return { refused, unknownChoices, warnings: [] };
  // A target the change drops keeps its account recorded: back under its name later, it is compared with that.
  for (const p of previous)
    if (!targets.some((t) => t.name === p.name) && !(await tx.get(READ, SETTING(p.name))))
      plan.push({ target: p, account: accountOf(p), forget: false });
  const warnings: string[] = [];
  const now = Date.now();
  // The targets pointed at another account: their locks (target_state, in name order) before any of their deliveries
  // is taken back, the order in which a dispatcher round takes them (agent/outbox.ts, completeAndClaim). A round on
  // another worker writing its pushes' outcomes holds the lock: the change waits for it to commit and then finds those
  // outcomes written. It took the leases back first, and holding some of those rows while the round held others, one
  // of the two was aborted as a deadlock (PostgreSQL; SQLite: nothing to do).
  await lockTargets(
    tx,
    plan.filter((p) => p.fresh).map((p) => p.target.name),
    now,
  );
  for (const p of plan) {
    // The account first: on PostgreSQL a pull's page takes this row before its run's (accountStillIs), so a page being
    // stored is in what the statements below see, and one after the commit finds the new account.
    await tx.run(WRITE, SETTING(p.target.name), JSON.stringify(p.account));
    if (p.fresh) for (const statement of [RUNS_OF_OLD, ...PUSHES_TO_OLD]) await tx.run(statement, p.target.name, now);
    if (p.forget) for (const statement of FORGET) await tx.run(statement, p.target.name);
    if (p.fresh) {
      await tx.run(PULLED_FROM_OLD, p.target.name, now);
      await tx.run(STATUS_FROM_OLD, p.target.name);
      await tx.run(REPORTS_FROM_OLD, p.target.name, now);
    }
    if (p.warning) warnings.push(p.warning);
  }
  return { refused, unknownChoices, warnings };
}

const RECORDED = `SELECT name, value FROM settings WHERE name LIKE 'target_account:%'`;

/**
 * A target seen for the first time whose account is the one recorded for a target no longer configured that holds ids
 * there: that target, renamed (the name it had and the ids held under it), else null.
 */
async function renamedFrom(
  tx: SqlRunner,
  t: AccountTarget,
  account: Account,
  targets: AccountTarget[],
): Promise<{ renamedFrom: string; held: number; sameBy: string[] } | null> {
  const same = JSON.stringify(account);
  for (const row of await tx.all<{ name: string; value: string }>(RECORDED)) {
    const old = row.name.slice(SETTING("").length);
    if (old === t.name || targets.some((o) => o.name === old) || row.value !== same) continue;
    const held = (await tx.get<{ n: number }>(HELD, old))!.n;
    if (held > 0) return { renamedFrom: old, held, sameBy: Object.keys(account) };
  }
  return null;
}

/**
 * A target named to forget (or keep) its ids whose account did not change: nothing is forgotten, and the change says
 * so, rather than leaving the person to think its ids went (e.g. a setting of the account that kontobro does not take
 * for one, or the wrong target named).
 */
async function sameAccountAsked(tx: SqlRunner, target: string, asked: "forget" | "keep", known: boolean): Promise<string> {
  const held = (await tx.get<{ n: number }>(HELD, target))!.n;
  const why = known ? "it points at the same account as before" : "no earlier account of it is known (a new target)";
  return asked === "forget"
    ? `target ${target}: asked to forget its ids of records in its old account, but ${why}: nothing was forgotten, its ${held} id(s) stay. To start afresh in an account, give the target a new name`
    : `target ${target}: asked to keep its ids as the same account's, but ${why}: nothing to keep (its ${held} id(s) stay as they were)`;
}

/**
 * Whether the account recorded for the target is still the one `t` (as this process was configured) points at: false
 * once a change pointed it elsewhere (a hosted worker that has not heard of it yet; `kontobro pull` with a kontobro.toml
 * the agent has not started with). Nothing recorded: true.
 */
export async function accountStillIs(tx: SqlRunner, t: AccountTarget): Promise<boolean> {
  // In a pull page's transaction, before its run's row: a change of the account (which writes this row first) waits
  // for the page, or the page for the change (PostgreSQL; SQLite's write transaction holds the file).
  await tx.lockForUpdate(LOCK, SETTING(t.name));
  const row = await tx.get<{ value: string }>(READ, SETTING(t.name));
  return !row || row.value === JSON.stringify(accountOf(t));
}

/**
 * Whether `t` points at another account than the one recorded for its name (else `earlier`'s, a hosted tenant's
 * configuration before the change): false when none is known.
 */
export async function accountMoved(tx: SqlRunner, t: AccountTarget, earlier?: AccountTarget): Promise<boolean> {
  const row = await tx.get<{ value: string }>(READ, SETTING(t.name));
  const before = row ? (JSON.parse(row.value) as Account) : earlier ? accountOf(earlier) : null;
  return before !== null && accountDiff(before, accountOf(t)).length > 0;
}

/** Names given as --forget-links/--keep-links (comma-separated). Pure. */
export const choiceList = (value: string | undefined): string[] =>
  (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
