// The matching report (`kontobro match TARGET`): before the first sync, the PSA's customers and products beside the
// target's, matched as the integration matches them (number and name). A dry run: it reads both sides and writes
// nothing. Records whose number matches but whose name does not are the ones to fix first: kontobro would not take
// them for the same record. Records with the same name and another number may have been renumbered in one system.
import type { MasterData, MasterEntity, MasterSide } from "../../connectors/contract.ts";
import { fingerprint, keyOf, normaliseName, pluralWord, sameName } from "./policy.ts";

export interface MatchPair {
  key: string;
  psaName: string;
  targetName: string;
  differs: boolean;
}
export interface MatchReport {
  entity: MasterEntity;
  master: MasterSide;
  /** Number and name match: the same record; `differs` when their other fields differ (the master's version wins). */
  both: MatchPair[];
  /** Number matches, name does not: not recognised as the same record. */
  nameMismatch: MatchPair[];
  onlyPsa: { key: string; name: string }[];
  onlyTarget: { key: string; name: string }[];
  /** The same name under another number on each side: renumbered in one system? */
  sameNameOtherNumber: { psaKey: string; targetKey: string; name: string }[];
}

/** Compares the PSA's records (`psa(entity)`, canonical payloads) with the target's, per master entity. */
export async function matchReport(master: MasterData, psa: (entity: MasterEntity) => any[]): Promise<MatchReport[]> {
  const out: MatchReport[] = [];
  for (const entity of master.entities) {
    const mine = new Map(psa(entity).map((p) => [keyOf(entity, p), p]));
    const theirs = new Map((await master.list(entity)).map((r) => [r.key, r]));
    const r: MatchReport = {
      entity,
      master: master.sides[entity],
      both: [],
      nameMismatch: [],
      onlyPsa: [],
      onlyTarget: [],
      sameNameOtherNumber: [],
    };
    for (const [key, p] of mine) {
      const t = theirs.get(key);
      if (!t) {
        r.onlyPsa.push({ key, name: String(p.name) });
        continue;
      }
      const pair = {
        key,
        psaName: String(p.name),
        targetName: String(t.data.name),
        differs: fingerprint(master.project(entity, p)) !== fingerprint(master.project(entity, t.data)),
      };
      (sameName(p.name, t.data.name) ? r.both : r.nameMismatch).push(pair);
    }
    for (const [key, t] of theirs) if (!mine.has(key)) r.onlyTarget.push({ key, name: String(t.data.name) });
    const byName = new Map(r.onlyTarget.map((t) => [normaliseName(t.name), t]));
    for (const p of r.onlyPsa) {
      const t = byName.get(normaliseName(p.name));
      if (t) r.sameNameOtherNumber.push({ psaKey: p.key, targetKey: t.key, name: p.name });
    }
    out.push(r);
  }
  return out;
}

/** The report as text for the terminal. */
export function describeMatch(reports: MatchReport[], title: string, target: string): string {
  const lines: string[] = [];
  const list = (items: string[], max = 50) => [
    ...items.slice(0, max).map((s) => `    ${s}`),
    ...(items.length > max ? [`    … and ${items.length - max} more`] : []),
  ];
  for (const r of reports) {
    const what = pluralWord(r.entity);
    const masterName = r.master === "psa" ? "the PSA" : title;
    lines.push(`${what} (master: ${masterName}):`);
    lines.push(`  in both systems (number and name): ${r.both.length}`);
    const differing = r.both.filter((p) => p.differs);
    if (differing.length) {
      lines.push(`  … of which ${differing.length} differ in other fields; on the first sync ${masterName}'s version wins:`);
      lines.push(...list(differing.map((p) => `${p.key} ${p.psaName}`)));
    }
    lines.push(
      `  number matches, name does not (fix these first: kontobro would not take them for the same ${r.entity}): ${r.nameMismatch.length}`,
    );
    lines.push(...list(r.nameMismatch.map((p) => `${p.key}: "${p.psaName}" in the PSA, "${p.targetName}" in ${title}`)));
    lines.push(`  only in the PSA (created in ${title} on the first sync): ${r.onlyPsa.length}`);
    lines.push(...list(r.onlyPsa.map((p) => `${p.key} ${p.name}`)));
    lines.push(`  only in ${title} (sent to the PSA on the first pull): ${r.onlyTarget.length}`);
    lines.push(...list(r.onlyTarget.map((p) => `${p.key} ${p.name}`)));
    if (r.sameNameOtherNumber.length) {
      lines.push(
        `  the same name under another number (renumbered in one system? then renumber it in the other first): ${r.sameNameOtherNumber.length}`,
      );
      lines.push(...list(r.sameNameOtherNumber.map((p) => `${p.name}: ${p.psaKey} in the PSA, ${p.targetKey} in ${title}`)));
    }
  }
  const bad = reports.reduce((n, r) => n + r.nameMismatch.length, 0);
  lines.push(
    bad === 0
      ? `\nNothing to fix before the first sync of ${target}.`
      : `\n${bad} record(s) to fix before the first sync of ${target}: give each pair the same name, or one of them another number; then run kontobro match again.`,
  );
  return lines.join("\n");
}
