// The records a push reads besides its own (an invoice's customer and project: PushContext.record, and the
// `related` of a connector's pre-flight rules). Connectors read them synchronously, so the dispatcher loads the
// ones a round's deliveries need (their dependencies, agent/model.ts) in one statement, through the SqlRunner,
// before it validates and pushes them: written once for SQLite and PostgreSQL.
import type { SqlRunner } from "./db/pg/runner.ts";
import type { Entity } from "./model.ts";

export interface RecordRef {
  entity: string;
  key: string;
}

/** The latest payload of each record loaded, or null for one the PSA never sent. */
export type RecordLookup = (entity: string, key: string) => any | null;

export interface RecordSource {
  /**
   * Reads the records named by `refs` (their latest payloads) in one statement. `via`: the runner of a transaction
   * to read in (by default the source's own). The lookup it returns answers for those records only: asked for
   * another, it throws, as a push reading a record its delivery does not depend on is a bug to fix there.
   */
  load(refs: RecordRef[], via?: SqlRunner): Promise<RecordLookup>;
}

/** The entities of a push's dependencies (dependenciesOf), in the order of READ's parameters. */
const READ_ENTITIES: readonly Entity[] = ["customer", "project", "product", "invoice"];
/**
 * Per entity of READ_ENTITIES (?1 customers, ?2 projects, ?3 products, ?4 invoices) a JSON array of keys. One text,
 * index lookups by (entity, key) on both engines; an entity with no keys costs nothing.
 */
const READ = `SELECT entity, key, payload FROM records WHERE entity = 'customer' AND key IN (SELECT value FROM json_each(?1))
  UNION ALL SELECT entity, key, payload FROM records WHERE entity = 'project' AND key IN (SELECT value FROM json_each(?2))
  UNION ALL SELECT entity, key, payload FROM records WHERE entity = 'product' AND key IN (SELECT value FROM json_each(?3))
  UNION ALL SELECT entity, key, payload FROM records WHERE entity = 'invoice' AND key IN (SELECT value FROM json_each(?4))`;

export function recordSource(runner: SqlRunner): RecordSource {
  return {
    async load(refs, via = runner) {
      const wanted = new Map<string, Set<string>>();
      for (const { entity, key } of refs) {
        if (!(READ_ENTITIES as readonly string[]).includes(entity))
          throw new Error(`record ${entity} ${key}: a push reads only records of ${READ_ENTITIES.join(", ")}`);
        let keys = wanted.get(entity);
        if (!keys) wanted.set(entity, (keys = new Set()));
        keys.add(String(key));
      }
      const found = new Map<string, unknown>();
      if (wanted.size > 0) {
        const rows = await via.all<{ entity: string; key: string; payload: string }>(
          READ,
          ...READ_ENTITIES.map((e) => JSON.stringify([...(wanted.get(e) ?? [])])),
        );
        for (const r of rows) found.set(refKey(r.entity, r.key), JSON.parse(r.payload));
      }
      return (entity, key) => {
        const k = refKey(entity, String(key));
        const payload = found.get(k);
        if (payload !== undefined) return payload;
        if (wanted.get(entity)?.has(String(key))) return null;
        throw new Error(
          `record ${entity} ${key} was not loaded for this push: the records a push reads are its delivery's dependencies (dependenciesOf in agent/model.ts); add it there`,
        );
      };
    },
  };
}

const refKey = (entity: string, key: string) => `${entity}\u0000${key}`;
