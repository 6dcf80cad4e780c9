// Master per entity, the pure parts: kontobro.toml's `masters` per target, how records are compared (a
// fingerprint of what both systems hold) and matched (number and name), and the words of the reports.
import { createHash } from "node:crypto";
import type { ConnectorFactory, MasterEntity, MasterSide } from "../../connectors/contract.ts";

/** The config's plural names (customers, products) → entities. */
export const MASTER_KEYS: Record<string, MasterEntity> = { customers: "customer", products: "product" };
export type Masters = Partial<Record<MasterEntity, MasterSide>>;

/**
 * `masters = { customers = "target", products = "psa" }` of a [[targets]] table. Only a connector that can be
 * master (factory.masterEntities) may name the target; problems are added as "key: message" lines.
 */
export function parseMasters(factory: ConnectorFactory, raw: unknown, at: string, problems: string[]): Masters {
  if (raw === undefined) return {};
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    problems.push(`${at}.masters: must be a table such as masters = { customers = "psa", products = "target" }`);
    return {};
  }
  const out: Masters = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const entity = MASTER_KEYS[k];
    if (!entity) {
      problems.push(`${at}.masters.${k}: unknown entity; use customers or products`);
      continue;
    }
    if (v !== "psa" && v !== "target") {
      problems.push(`${at}.masters.${k}: must be "psa" or "target"`);
      continue;
    }
    if (v === "target" && !(factory.masterEntities ?? []).includes(entity)) {
      problems.push(`${at}.masters.${k}: ${factory.title} cannot be the master of ${k}; the PSA is (remove the key or write "psa")`);
      continue;
    }
    out[entity] = v;
  }
  return out;
}

/** A canonical record's key: the customer number, the product code. */
export const keyOf = (entity: MasterEntity, data: any): string => String(entity === "customer" ? data?.number : data?.code);

// Names are compared as the event model says (agent/model.ts: connectors compare them the same way).
export { normaliseName, sameName } from "../model.ts";

function stable(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stable);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined && x !== null && x !== "")
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, stable(x)]),
    );
  }
  return typeof v === "string" ? v.trim() : v;
}

/** A fingerprint of a record as the target holds it (`projected`: MasterData.project's output or a pulled record). */
export function fingerprint(projected: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify(stable(projected)))
    .digest("hex")
    .slice(0, 24);
}

export const entityWord = (entity: MasterEntity) => (entity === "customer" ? "customer" : "product");
export const pluralWord = (entity: MasterEntity) => (entity === "customer" ? "customers" : "products");
export const sideWord = (side: MasterSide, targetTitle: string) => (side === "psa" ? "the PSA" : targetTitle);

/** Kinds of report, each kept once per record until resolved. */
export type ReportKind = "changed_in_non_master" | "number_name_mismatch" | "renumbered" | "attention";
