// `kontobro match TARGET`: the matching report before the first sync (a dry run that writes nothing; only a
// refreshed OAuth token is stored, as it must be). The PSA's side is what the PSA has sent to this data directory,
// or the events in --psa FILE (customer.upserted / product.upserted, as for `kontobro enqueue`).
import { Database } from "bun:sqlite";
import { existsSync, readFileSync } from "node:fs";
import type { MasterEntity } from "../../connectors/contract.ts";
import { connectorKinds } from "../../connectors/registry.ts";
import { createConnectors, databasePath } from "../agent.ts";
import type { AgentConfig, TargetConfig } from "../config.ts";
import { parseEvents } from "../intake.ts";
import { createLogger } from "../log.ts";
import { describeMatch, matchReport, type MatchReport } from "../master/match.ts";
import { parseStored } from "../model.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

/** The PSA's customers and products: from --psa FILE, else read-only from the data directory's records. */
export function psaRecords(config: AgentConfig, file?: string): { records: (entity: MasterEntity) => any[]; source: string } {
  if (file) {
    const parsed = parseEvents(JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8")));
    if (!parsed.ok)
      throw new Error(`${file}: ${parsed.message} ${parsed.events.map((e) => e.problems.map((p) => p.message).join("; ")).join(" | ")}`);
    const byEntity = new Map<string, Map<string, unknown>>();
    for (const e of parsed.events) {
      if (!byEntity.has(e.entity)) byEntity.set(e.entity, new Map());
      byEntity.get(e.entity)!.set(e.key, e.data);
    }
    return { records: (entity) => [...(byEntity.get(entity)?.values() ?? [])], source: file };
  }
  const path = databasePath(config.agent.data_dir);
  if (!existsSync(path)) return { records: () => [], source: `${path} (not there yet: the PSA has sent nothing)` };
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.query(`SELECT entity, payload FROM records WHERE entity IN ('customer', 'product')`).all() as {
      entity: MasterEntity;
      payload: string;
    }[];
    const parsed = rows
      .map((r) => ({ entity: r.entity, data: parseStored(r.entity, JSON.parse(r.payload)) }))
      .filter((r) => r.data.success);
    return { records: (entity) => parsed.filter((r) => r.entity === entity).map((r) => r.data.data), source: path };
  } finally {
    db.close();
  }
}

export async function runMatch(o: {
  config: AgentConfig;
  target: TargetConfig;
  psaFile?: string;
  json?: boolean;
  out?: (s: string) => void;
}): Promise<{ code: number; reports: MatchReport[] }> {
  const out = o.out ?? ((s: string) => console.log(s));
  const { records, source } = psaRecords(o.config, o.psaFile);
  const connector = createConnectors([o.target], createLogger("error"), undefined, { dataDir: o.config.agent.data_dir }).get(o.target.name);
  if (!connector?.master) {
    out(`${o.target.name} (${o.target.kind}) has no master data to match: the PSA is master of everything it sends there.`);
    return { code: 2, reports: [] };
  }
  const reports = await matchReport(connector.master, records);
  const bad = reports.reduce((n, r) => n + r.nameMismatch.length, 0);
  if (o.json) out(JSON.stringify({ target: o.target.name, psa: source, reports }, null, 2));
  else
    out(
      `Matching report for ${o.target.name} (dry run; nothing was written). The PSA's records: ${source}.\n\n${describeMatch(reports, connectorKinds[o.target.kind]!.title, o.target.name)}`,
    );
  return { code: bad > 0 ? 1 : 0, reports };
}

/** A target to show in the examples: named like the registry's first kind that can be master of records. */
const example = Object.keys(connectorKinds).find((k) => connectorKinds[k]!.masterEntities?.length) ?? "books";

export const match = defineCommand({
  ...listed("match"),
  description:
    "Lists the PSA's customers and products beside the target's, matched as kontobro matches them (number and\n" +
    "name): in both systems, only in one, and those whose number matches but whose name does not, which kontobro\n" +
    "would not take for the same record (fix those first). Writes nothing. The PSA's side is what it has sent to\n" +
    "this data directory, or the events in --psa FILE. Exits 1 when there is something to fix.",
  options: {
    psa: { type: "string", value: "FILE", help: "the PSA's customers and products as events (JSON array; - for standard input)" },
    json: { type: "boolean", help: "machine-readable" },
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: [
    `kontobro match ${example}`,
    [`kontobro match ${example} --psa customers.json --json`, "the PSA's export, before it sends anything"],
  ],
  async run({ values, positionals: [name], path }) {
    const { config, targets } = loadConfig(values.config);
    const target = targets.find((t) => t.name === name && t.enabled);
    if (!target) {
      console.error(`${path}: no target "${name}"; targets: ${targets.map((t) => t.name).join(", ") || "none"}`);
      return 2;
    }
    try {
      return (await runMatch({ config, target, psaFile: values.psa, json: values.json })).code;
    } catch (e) {
      const err = e as { message?: string; hint?: string };
      console.error(`${path}: ${err.message ?? String(e)}${err.hint ? `\n  fix: ${err.hint}` : ""}`);
      return 1;
    }
  },
});
