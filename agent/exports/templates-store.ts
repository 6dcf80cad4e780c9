// Export templates in the database (the user's, per tenant on PostgreSQL) and in code (the built-in ones, read-only).
import { builtinTemplate, builtinTemplates } from "../../formats/templates/builtin.ts";
import { parseTemplate, type Template } from "../../formats/templates/definition.ts";
import { DATA_TYPE_TITLES } from "../../formats/templates/fields.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { problem, type Problem } from "../problem.ts";
import { takeExportTurn } from "./store.ts";

export interface TemplateSummary {
  name: string;
  title?: string;
  dataType: string;
  dataTypeTitle: string;
  builtin: boolean;
  /** Columns whose meaning in the target format is a guess. */
  guessedColumns: number;
  updatedAt?: number;
}

const summary = (t: Template, builtin: boolean, updatedAt?: number): TemplateSummary => ({
  name: t.name,
  ...(t.title ? { title: t.title } : {}),
  dataType: t.dataType,
  dataTypeTitle: DATA_TYPE_TITLES[t.dataType],
  builtin,
  guessedColumns: t.columns.filter((c) => c.guess).length,
  ...(updatedAt ? { updatedAt } : {}),
});

/** Stored rows are re-validated on read: a template saved by an older version must not break an export silently. */
function fromRow(row: { definition: string }): { ok: true; template: Template } | { ok: false; problems: Problem[] } {
  return parseTemplate(JSON.parse(row.definition));
}

/** The stored templates that are valid, by name. */
async function storedTemplates(db: SqlRunner): Promise<{ template: Template; updatedAt: number }[]> {
  const rows = await db.all<{ name: string; definition: string; updatedAt: number }>(
    `SELECT name, definition, updated_at AS updatedAt FROM export_templates ORDER BY name`,
  );
  return rows.flatMap((r) => {
    const p = fromRow(r);
    return p.ok ? [{ template: p.template, updatedAt: r.updatedAt }] : [];
  });
}

export async function listTemplates(db: SqlRunner): Promise<TemplateSummary[]> {
  return [
    ...builtinTemplates().map((t) => summary(t, true)),
    ...(await storedTemplates(db)).map((s) => summary(s.template, false, s.updatedAt)),
  ];
}

/** Every template: the built-in ones, then the stored ones. */
export async function allTemplates(db: SqlRunner): Promise<Template[]> {
  return [...builtinTemplates(), ...(await storedTemplates(db)).map((s) => s.template)];
}

export type Found = { ok: true; template: Template; builtin: boolean } | { ok: false; httpStatus: 404 | 422; problems: Problem[] };

export async function findTemplate(db: SqlRunner, name: string): Promise<Found> {
  const builtin = builtinTemplate(name);
  if (builtin) return { ok: true, template: builtin, builtin: true };
  const row = await db.get<{ definition: string }>(`SELECT definition FROM export_templates WHERE name = ?1`, name);
  if (!row) {
    return {
      ok: false,
      httpStatus: 404,
      problems: [
        problem(
          "template.not_found",
          `There is no export template "${name.slice(0, 60)}".`,
          "List the templates with `kontobro export templates` or GET /api/v1/exports/templates.",
          "template",
        ),
      ],
    };
  }
  const p = fromRow(row);
  return p.ok ? { ok: true, template: p.template, builtin: false } : { ok: false, httpStatus: 422, problems: p.problems };
}

export type Saved = { ok: true; created: boolean; template: Template } | { ok: false; httpStatus: 409 | 422; problems: Problem[] };

/** Validates and stores a template. A built-in name is reserved; an existing one is replaced only when asked. */
export async function saveTemplate(db: SqlRunner, input: unknown, options: { replace?: boolean; now?: number } = {}): Promise<Saved> {
  const parsed = parseTemplate(input);
  if (!parsed.ok) return { ok: false, httpStatus: 422, problems: parsed.problems };
  const t = parsed.template;
  if (builtinTemplate(t.name)) {
    return {
      ok: false,
      httpStatus: 409,
      problems: [
        problem(
          "template.builtin_name",
          `"${t.name}" is the name of a built-in template.`,
          "Save your copy under another name, e.g. my-" + t.name + ".",
          "name",
        ),
      ],
    };
  }
  const now = options.now ?? Date.now();
  return db.transaction(async (tx): Promise<Saved> => {
    // Two saves of one name on two workers: the second sees the first's (409 unless replace), as on SQLite.
    await takeExportTurn(tx);
    const exists = await tx.get(`SELECT 1 AS found FROM export_templates WHERE name = ?1`, t.name);
    if (exists && !options.replace) {
      return {
        ok: false,
        httpStatus: 409,
        problems: [
          problem(
            "template.exists",
            `A template named "${t.name}" exists already.`,
            "Replace it (PUT /api/v1/exports/templates/NAME, or --replace on import), or choose another name.",
            "name",
          ),
        ],
      };
    }
    await tx.run(
      `INSERT INTO export_templates (name, data_type, definition, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
      ON CONFLICT (name) DO UPDATE SET data_type = excluded.data_type, definition = excluded.definition, updated_at = excluded.updated_at`,
      t.name,
      t.dataType,
      JSON.stringify(t),
      now,
    );
    return { ok: true, created: !exists, template: t };
  });
}

export async function deleteTemplate(
  db: SqlRunner,
  name: string,
): Promise<{ ok: true } | { ok: false; httpStatus: 404 | 409; problems: Problem[] }> {
  if (builtinTemplate(name)) {
    return {
      ok: false,
      httpStatus: 409,
      problems: [
        problem(
          "template.builtin",
          `"${name}" is built in and cannot be deleted.`,
          "Built-in templates are part of kontobro; simply do not use it.",
          "name",
        ),
      ],
    };
  }
  const r = await db.run(`DELETE FROM export_templates WHERE name = ?1`, name);
  return r.changes > 0
    ? { ok: true }
    : {
        ok: false,
        httpStatus: 404,
        problems: [problem("template.not_found", `There is no export template "${name.slice(0, 60)}".`, undefined, "name")],
      };
}
