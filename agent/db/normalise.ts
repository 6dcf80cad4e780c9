// A one-off upgrade of payloads stored before the model defined signs and number spelling once
// (agent/model.ts): credit notes written with minus signs, negative unit prices, "0101" for 101.
// Pushing or exporting such a stored credit note as it is would charge the customer instead of
// crediting them, so every stored invoice and credit note is parsed again through the model, once.
import type { Database } from "bun:sqlite";
import { CreditNote, decodedBase64Length, Invoice } from "../model.ts";

const DONE = "payloads_normalised_v1";
const BATCH = 500;

/** Returns how many stored payloads were rewritten (0 when already done). */
export function normaliseStoredPayloads(c: Database): number {
  if (c.query("SELECT 1 FROM settings WHERE name = ?1").get(DONE)) return 0;
  let changed = 0;
  const update = {
    events: c.prepare("UPDATE events SET payload = ?2 WHERE seq = ?1"),
    // records.credits follows the payload: the migration that added it ran before this, on payloads saying "0010" for 10.
    records: c.prepare(
      `UPDATE records SET payload = ?2, credits = CASE WHEN json_extract(?2, '$.kind') = 'credit_note' THEN CAST(json_extract(?2, '$.creditedInvoiceNumber') AS TEXT) END
        WHERE entity = 'invoice' AND key = ?1`,
    ),
  };
  c.transaction(() => {
    let after = 0;
    for (;;) {
      const rows = c
        .query(
          `SELECT seq, type, key, payload FROM events WHERE seq > ?1 AND type IN ('invoice.finalized', 'invoice.credited') AND payload <> '' ORDER BY seq LIMIT ?2`,
        )
        .all(after, BATCH) as { seq: number; type: string; key: string; payload: string }[];
      if (rows.length === 0) break;
      for (const r of rows) {
        after = r.seq;
        const next = normalised(r.type, r.payload, r.key, false);
        if (next && next !== r.payload) {
          update.events.run(r.seq, next);
          changed += 1;
        }
      }
    }
    for (const r of c.query(`SELECT key, payload FROM records WHERE entity = 'invoice'`).all() as { key: string; payload: string }[]) {
      const type = JSON.parse(r.payload)?.kind === "credit_note" ? "invoice.credited" : "invoice.finalized";
      const next = normalised(type, r.payload, r.key, true);
      if (next && next !== r.payload) {
        update.records.run(r.key, next);
        changed += 1;
      }
    }
    c.run("INSERT INTO settings (name, value) VALUES (?1, ?2)", [DONE, new Date().toISOString()]);
  }).immediate();
  return changed;
}

/**
 * The payload as the model would store it today, or null when it no longer parses (left as it is).
 * A record keeps only the PDF's name and size (the content stays in its event).
 */
function normalised(type: string, payload: string, key: string, forRecord: boolean): string | null {
  const data = JSON.parse(payload);
  const pdf = data?.pdf;
  const parsed = (type === "invoice.credited" ? CreditNote : Invoice).safeParse(
    pdf && !pdf.contentBase64 ? { ...data, pdf: undefined } : data,
  );
  if (!parsed.success || parsed.data.number !== key) return null;
  if (!pdf) return JSON.stringify(parsed.data);
  const { contentBase64, ...meta } = pdf as { contentBase64?: string; filename: string };
  const kept = forRecord || !contentBase64 ? { ...meta, ...(contentBase64 ? { size: decodedBase64Length(contentBase64) } : {}) } : pdf;
  return JSON.stringify({ ...parsed.data, pdf: kept });
}
