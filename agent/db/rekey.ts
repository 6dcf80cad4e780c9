// A one-off upgrade of record keys stored before the model spelled numbers one way (agent/model.ts
// canonicalNumber): customer "0101" becomes 101, with everything that points at it. Without it, a PSA
// that now sends 101 gets a second customer next to "0101", and an invoice for 101 waits for a record
// that is stored under the other spelling. Product codes are codes and keep their zeros.
import type { Database } from "bun:sqlite";
import { canonicalNumber, parseStored, type Entity } from "../model.ts";

const DONE = "record_keys_canonical_v1";
const PUSHED: ReadonlySet<string> = new Set(["customer", "project", "invoice"]);

/** Returns the number of records re-keyed; a key whose canonical spelling is already taken is left alone. */
export function canonicaliseRecordKeys(c: Database): number {
  if (c.query("SELECT 1 FROM settings WHERE name = ?1").get(DONE)) return 0;
  let moved = 0;
  c.transaction(() => {
    const rows = c
      .query(`SELECT entity, key, payload FROM records WHERE entity <> 'product' AND key GLOB '0[0-9]*' AND key NOT GLOB '*[^0-9]*'`)
      .all() as { entity: string; key: string; payload: string }[];
    for (const r of rows) {
      const key = canonicalNumber(r.key);
      if (key === r.key || c.query("SELECT 1 FROM records WHERE entity = ?1 AND key = ?2").get(r.entity, key)) continue;
      const parsed = PUSHED.has(r.entity) ? parseStored(r.entity as Entity, JSON.parse(r.payload)) : null;
      const payload = parsed?.success ? JSON.stringify(parsed.data) : r.payload;
      const [from, to] = [`${r.entity}:${r.key}`, `${r.entity}:${key}`];
      // records.credits follows the payload (the migration that added it ran before this, on the old spelling).
      c.run(
        `UPDATE records SET key = ?3, payload = ?4,
           credits = CASE WHEN json_extract(?4, '$.kind') = 'credit_note' THEN CAST(json_extract(?4, '$.creditedInvoiceNumber') AS TEXT) END
         WHERE entity = ?1 AND key = ?2`,
        [r.entity, r.key, key, payload],
      );
      for (const table of ["events", "deliveries", "links"])
        c.run(`UPDATE ${table} SET key = ?3 WHERE entity = ?1 AND key = ?2`, [r.entity, r.key, key]);
      c.run("UPDATE deliveries SET waiting_on = ?2 WHERE waiting_on = ?1", [from, to]);
      c.run("UPDATE deliveries SET caused_by = ?2 WHERE caused_by = ?1", [from, to]);
      if (r.entity === "invoice") c.run("UPDATE invoice_export_status SET invoice_key = ?2 WHERE invoice_key = ?1", [r.key, key]);
      moved += 1;
    }
    c.run("INSERT INTO settings (name, value) VALUES (?1, ?2)", [DONE, new Date().toISOString()]);
  }).immediate();
  return moved;
}
