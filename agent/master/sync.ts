// Master per entity (DESIGN.md "Master per entity"): per target and entity (customers, products) the PSA or the
// target is master. New records travel both ways; changes only from the master; records match by number and
// name; our own push coming back is never echoed. Two doors, one set of rules:
//   pulled(): a record read back from the target (inside the inbox's transaction, with the watermark): deliver it
//             to the PSA, skip it (unchanged, or our own push coming back), or report it (not delivered).
//   push():   a PSA record on its way to the target (wraps the connector's push): create, update, match, or
//             report instead of sending.
// A change on the non-master side is reported once per record ("changed in the non-master system"); the status
// page lists the open reports (agent/master/status.ts).
// Both engines (the store's runner): a push's statements are each their own transaction, as they wait for the
// target in between; pushes of one record take turns across workers (the outbox's claim), pushes of different
// records touch different rows. A pull's decision reads and writes the record's row inside the page's transaction
// with the row locked (PostgreSQL; SQLite's write transaction holds the file), so a push on another worker writes it
// before or after, as a push in the same process does on SQLite. Rows are written with upserts (ON CONFLICT), so two
// first writers of one row (a pull and a push of a new record) never fail on each other.
import type { MasterData, MasterEntity, MasterRecord, PullItem, PushContext, PushResult } from "../../connectors/contract.ts";
import { TargetError } from "../../connectors/http.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { Inbox } from "../pulls/inbox.ts";
import { entityWord, fingerprint, keyOf, pluralWord, sameName } from "./policy.ts";
import type { MasterRow, MasterStore } from "./store.ts";

export type PulledOutcome = "deliver" | "skip" | "report";

/** The inbox item for a master record read back from the target: one per version (its modified stamp). */
export function masterItem(rec: MasterRecord): PullItem {
  return { remoteId: `${rec.entity}:${rec.remoteId}@${rec.modifiedAt ?? ""}`, type: `${rec.entity}.upserted`, data: rec.data, master: rec };
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export class MasterSync {
  constructor(
    private readonly store: MasterStore,
    readonly target: string,
    private readonly master: MasterData,
    /** The target system's name in messages (its factory's title). */
    private readonly title: string,
    /** Where a target's version goes when it is found to differ at first match (target master). */
    private readonly inbox?: Inbox,
  ) {}

  private fp(entity: MasterEntity, data: unknown): string {
    return fingerprint(this.master.project(entity, data));
  }

  private who(entity: MasterEntity, key: string, name?: unknown): string {
    return `${cap(entityWord(entity))} ${key}${name ? ` (${String(name).slice(0, 60)})` : ""}`;
  }

  // ---- target → PSA -------------------------------------------------------------------------------------------

  /** What to do with a master record pulled from the target. Runs inside the inbox's transaction (`tx`). */
  async pulled(item: PullItem, tx: SqlRunner): Promise<PulledOutcome> {
    const store = this.store.inside(tx);
    const rec = item.master!;
    const { entity } = rec;
    const side = this.master.sides[entity];
    const fpT = this.fp(entity, rec.data);
    const state = await store.byRemoteLocked(this.target, entity, rec.remoteId);
    if (state) {
      // Changed here while the PSA was master (reported, not sent), and the target is master now (kontobro.toml's
      // masters was switched): its version is the one that counts, so it goes to the PSA now.
      if (fpT === state.fingerprint && side === "target" && (await this.changedHereUnsent(store, entity, state.key))) {
        await store.resolve(this.target, entity, state.key);
        return "deliver";
      }
      // Unchanged, or our own push coming back.
      if (fpT === state.fingerprint || fpT === state.pending) {
        if (fpT !== state.fingerprint)
          await store.save(this.target, entity, state.key, {
            remoteId: rec.remoteId,
            name: rec.data.name,
            fingerprint: fpT,
            modifiedAt: rec.modifiedAt,
          });
        return "skip";
      }
      if (rec.key !== state.key) {
        // Renumbered at the target alone: the PSA matches by number, so delivering it would make a second record.
        await store.report(
          this.target,
          entity,
          state.key,
          "renumbered",
          "target",
          `${this.who(entity, state.key, rec.data.name)} was renumbered in ${this.title} to ${rec.key}; kontobro and the PSA match ${pluralWord(entity)} by number, so the change was not sent to the PSA.`,
          side === "target"
            ? `Renumber it in the PSA too (${state.key} → ${rec.key}), or change it back in ${this.title}; kontobro then links them again.`
            : `The PSA is master of ${pluralWord(entity)}: change the number back to ${state.key} in ${this.title} (or renumber it in the PSA first).`,
        );
        return "report";
      }
      await store.save(this.target, entity, state.key, {
        remoteId: rec.remoteId,
        name: rec.data.name,
        fingerprint: fpT,
        modifiedAt: rec.modifiedAt,
      });
      if (side === "target") {
        // The PSA's own change that was not sent here (reported) is replaced by this version at the PSA: the report
        // stays, saying so, unless the PSA already holds this version.
        const psa = await store.psaRecord(entity, state.key);
        const psaLoses =
          !!psa &&
          this.fp(entity, psa) !== fpT &&
          (await store.openReport(this.target, entity, state.key, "changed_in_non_master"))?.side === "psa";
        await store.resolve(this.target, entity, state.key);
        if (psaLoses) await this.changedInNonMaster(store, entity, state.key, psa.name, "psa", true);
        return "deliver";
      }
      await this.changedInNonMaster(store, entity, state.key, rec.data.name, "target");
      return "report";
    }
    // Not linked yet: a record the PSA has with this number, or a new one.
    const psa = await store.psaRecord(entity, rec.key);
    if (psa) {
      if (!sameName(psa.name, rec.data.name)) {
        await this.mismatch(store, entity, rec.key, psa.name, rec.data.name);
        return "report";
      }
      await store.save(this.target, entity, rec.key, {
        remoteId: rec.remoteId,
        name: rec.data.name,
        fingerprint: fpT,
        modifiedAt: rec.modifiedAt,
      });
      await store.link(this.target, entity, rec.key, rec.remoteId);
      if (this.fp(entity, psa) === fpT) return "skip";
      if (side === "target") return "deliver";
      await this.changedInNonMaster(store, entity, rec.key, rec.data.name, "target");
      return "report";
    }
    // New in the target. Another target may have sent the PSA a different record of this number (before the PSA
    // sent it back, or a PSA that never does): the PSA matches by number, so delivering it would merge the two.
    const other = (await store.otherTargets(this.target, entity, rec.key)).find((r) => !sameName(r.name, rec.data.name));
    if (other) {
      await this.mismatch(store, entity, rec.key, other.name, rec.data.name, other.target);
      return "report";
    }
    // It reaches the PSA whoever is master; linked, so the PSA's echo is known.
    await store.save(this.target, entity, rec.key, {
      remoteId: rec.remoteId,
      name: rec.data.name,
      fingerprint: fpT,
      modifiedAt: rec.modifiedAt,
    });
    await store.link(this.target, entity, rec.key, rec.remoteId);
    return "deliver";
  }

  private async changedHereUnsent(store: MasterStore, entity: MasterEntity, key: string): Promise<boolean> {
    return (await store.openReport(this.target, entity, key, "changed_in_non_master"))?.side === "target";
  }

  /**
   * The target is master of `entity`, and records changed here while the PSA was (reported, never sent) are not
   * pulled again, as their change is behind the watermark: read again, for a pull to send them to the PSA now.
   */
  async switchedToTarget(entity: MasterEntity, limit = 100): Promise<PullItem[]> {
    if (this.master.sides[entity] !== "target") return [];
    const items: PullItem[] = [];
    for (const key of await this.store.openKeys(this.target, entity, "changed_in_non_master", "target", limit)) {
      const found = await this.master.lookup(entity, key);
      if (found) items.push(masterItem(found));
    }
    return items;
  }

  // ---- PSA → target -------------------------------------------------------------------------------------------

  /** The PSA's record on its way to the target; `send` is the connector's push. */
  async push(entity: MasterEntity, payload: any, ctx: PushContext, send: (ctx: PushContext) => Promise<PushResult>): Promise<PushResult> {
    const key = keyOf(entity, payload);
    const side = this.master.sides[entity];
    const fpP = this.fp(entity, payload);
    let state = await this.store.byKey(this.target, entity, key);
    if (!state || (!ctx.link && !state.fingerprint)) {
      const matched = await this.match(entity, key, payload, fpP);
      if ("result" in matched) return matched.result;
      state = matched.state;
      if (!state) return this.create(entity, key, payload, ctx, send, fpP);
    }
    const remoteId = ctx.link?.remoteId ?? state.remoteId;
    if (state.fingerprint === fpP) {
      await this.store.resolve(this.target, entity, key, "changed_in_non_master");
      return { remoteId, note: `The same in ${this.title} already; nothing sent.` };
    }
    if (side === "target") {
      await this.changedInNonMaster(this.store, entity, key, payload.name, "psa");
      return {
        remoteId,
        note: `Not sent: ${this.title} is master of ${pluralWord(entity)}, so a change made in the PSA is not sent there (reported on the status page).`,
      };
    }
    await this.store.setPending(this.target, entity, key, fpP);
    const result = await send({ ...ctx, link: { remoteId } });
    await this.remember(entity, key, result, fpP, payload.name);
    await this.store.resolve(this.target, entity, key, "changed_in_non_master");
    // Changed in the target since kontobro last saw it there (a pull would have reported it): the PSA's version
    // replaced it, so say so rather than lose that change without a word. Our own push under way is no change.
    const before = result.before ? this.fp(entity, result.before.data) : null;
    if (before && state.fingerprint && ![state.fingerprint, state.pending, fpP].includes(before))
      await this.changedInNonMaster(this.store, entity, key, result.before!.data.name, "target", true);
    return result;
  }

  /**
   * A record the PSA sends that kontobro has not linked: matched at the target by number and name. Returns the
   * state of the match (null: none at the target), or the push's result when nothing more is to be done.
   */
  private async match(
    entity: MasterEntity,
    key: string,
    payload: any,
    fpP: string,
  ): Promise<{ state: MasterRow | null } | { result: PushResult }> {
    const found = await this.master.lookup(entity, key);
    if (!found) return { state: null };
    if (!sameName(found.data.name, payload.name)) {
      await this.mismatch(this.store, entity, key, payload.name, found.data.name);
      throw new TargetError("permanent", {
        code: "master.number_name_mismatch",
        field: "name",
        message: `${this.title} already has ${entityWord(entity)} ${key}, named "${found.data.name}"; the PSA's is named "${payload.name}". kontobro matches ${pluralWord(entity)} by number and name, so it does not take them for the same one and sent nothing.`,
        hint: `Give them the same name (in the master, ${this.master.sides[entity] === "target" ? this.title : "the PSA"}), or give one of them another number; then press retry. \`kontobro match ${this.target}\` lists every such pair.`,
      });
    }
    const other = await this.store.byRemote(this.target, entity, found.remoteId);
    if (other && other.key !== key) {
      throw new TargetError("permanent", {
        code: "master.renumbered",
        field: "number",
        message: `${this.title}'s ${entityWord(entity)} ${key} is the one kontobro knows as ${other.key}: it was renumbered in ${this.title} alone.`,
        hint: `Renumber it in the PSA too (${other.key} → ${key}), or change it back in ${this.title}; then press retry.`,
      });
    }
    const fpT = this.fp(entity, found.data);
    const side = this.master.sides[entity];
    // Target master, and its version differs: it goes to the PSA now (a person may have made it long ago, so no pull sees it).
    await this.store.save(this.target, entity, key, {
      remoteId: found.remoteId,
      name: found.data.name,
      fingerprint: side === "target" && fpT !== fpP ? null : fpT,
      modifiedAt: found.modifiedAt,
    });
    if (fpT === fpP)
      return {
        result: {
          remoteId: found.remoteId,
          note: `Matched ${this.title}'s ${entityWord(entity)} ${key} by number and name; the same in both systems, nothing sent.`,
        },
      };
    if (side === "target") {
      await this.inbox?.storeBatch(this.target, pluralWord(entity), [masterItem(found)], null, { pulled: (i, tx) => this.pulled(i, tx) });
      return {
        result: {
          remoteId: found.remoteId,
          note: `Matched ${this.title}'s ${entityWord(entity)} ${key} by number and name. ${this.title} is master of ${pluralWord(entity)}: its version was sent to the PSA, the PSA's was not sent.`,
        },
      };
    }
    return { state: await this.store.byKey(this.target, entity, key) };
  }

  private async create(
    entity: MasterEntity,
    key: string,
    payload: any,
    ctx: PushContext,
    send: (ctx: PushContext) => Promise<PushResult>,
    fpP: string,
  ): Promise<PushResult> {
    // Renumbered in the PSA alone? A linked record of another number has this name. Said once; a retry creates it.
    const twins: MasterRow[] = [];
    for (const r of await this.store.sameName(this.target, entity, payload.name, key))
      if (await this.store.psaRecord(entity, r.key)) twins.push(r);
    if (twins.length > 0 && !(await this.store.openReport(this.target, entity, key, "renumbered"))) {
      const t = twins[0]!;
      const message = `The PSA's ${entityWord(entity)} ${key} (${payload.name}) has the name of ${entityWord(entity)} ${t.key}, which ${this.title} has; if it was renumbered in the PSA alone, creating it would make a second ${entityWord(entity)} in ${this.title}.`;
      const hint = `If ${t.key} was renumbered to ${key}, renumber it in ${this.title} too (kontobro then links it by number and name) and press retry. If they are two different ${pluralWord(entity)}, press retry: kontobro creates ${key}.`;
      await this.store.report(this.target, entity, key, "renumbered", "psa", message, hint);
      throw new TargetError("permanent", { code: "master.renumbered", field: "number", message, hint });
    }
    const result = await send(ctx);
    await this.remember(entity, key, result, fpP, payload.name);
    await this.store.resolve(this.target, entity, key);
    return result;
  }

  /** What the target holds after a push: its own answer when the connector gives one. */
  private async remember(entity: MasterEntity, key: string, result: PushResult, fpP: string, name: unknown): Promise<void> {
    const s = result.state;
    await this.store.save(
      this.target,
      entity,
      key,
      s
        ? { remoteId: s.remoteId, name: s.data.name, fingerprint: this.fp(entity, s.data), modifiedAt: s.modifiedAt }
        : { remoteId: result.remoteId, name, fingerprint: fpP },
    );
    if (result.attention)
      await this.store.report(this.target, entity, key, "attention", "target", result.attention, `Open it in ${this.title} and check it.`);
  }

  private async changedInNonMaster(
    store: MasterStore,
    entity: MasterEntity,
    key: string,
    name: unknown,
    where: "psa" | "target",
    /** The master's version has since replaced the change there. */
    replaced = false,
  ): Promise<void> {
    const master = where === "psa" ? this.title : "the PSA";
    const fate = !replaced
      ? `the change was not sent to ${master}`
      : where === "target"
        ? `the change was not sent to the PSA, and the PSA's version has replaced it in ${this.title}`
        : `the change was not sent to ${this.title}, and ${this.title}'s version was sent to the PSA in its place`;
    await store.report(
      this.target,
      entity,
      key,
      "changed_in_non_master",
      where,
      `${this.who(entity, key, name)} was changed in ${where === "psa" ? "the PSA" : this.title}, which is not the master of ${pluralWord(entity)} (changed in the non-master system); ${fate}.`,
      `Make the change in ${master}, the master of ${pluralWord(entity)}; its version then goes to ${where === "psa" ? "the PSA" : this.title}. (kontobro.toml's masters setting decides who is master.)`,
    );
  }

  /** `via`: the PSA's record came from that other target (sent to the PSA by kontobro), not from the PSA's own events. */
  private async mismatch(
    store: MasterStore,
    entity: MasterEntity,
    key: string,
    psaName: unknown,
    targetName: unknown,
    via?: string,
  ): Promise<void> {
    const psa = via ? `the PSA (sent there from target ${via})` : "the PSA";
    await store.report(
      this.target,
      entity,
      key,
      "number_name_mismatch",
      "target",
      `${cap(entityWord(entity))} ${key} is "${psaName}" in ${psa} but "${targetName}" in ${this.title}: the number matches, the name does not, so kontobro does not take them for the same ${entityWord(entity)} and sends nothing either way.`,
      `Give them the same name, or one of them another number; \`kontobro match ${this.target}\` lists every such pair.`,
    );
  }
}
