// Export templates in the database (the user's, per tenant on PostgreSQL) and in code (the built-in ones, read-only).
import { builtinTemplate, builtinTemplates } from "../../formats/templates/builtin.ts";
import { checkTemplate, parseTemplate, Template } from "../../formats/templates/definition.ts";
import { DATA_TYPE_TITLES, type DataType } from "../../formats/templates/fields.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { issuesToProblems, problem, type Problem } from "../problem.ts";
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
  /**
   * A saved template that does not pass this version's checks (saved by an earlier version, whose checks were less
   * strict): what is wrong and how to fix it. It cannot be exported or tested until it is saved again, fixed.
   */
  problems?: Problem[];
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

type Row = { name: string; dataType: string; definition: string; updatedAt: number };

/** A saved template as read back: stored rows are checked again on every read, as the checks may have grown since. */
interface Stored {
  row: Row;
  /** The stored definition (null: not JSON). */
  definition: unknown;
  /** It has a template's shape, even if this version's checks refuse it: enough to read its files back (found-files.ts). */
  shaped?: Template;
  /** What this version's checks find wrong with it, led by template.needs_fixing; empty when it can be used. */
  problems: Problem[];
}

function readStored(row: Row): Stored {
  let definition: unknown = null;
  try {
    definition = JSON.parse(row.definition);
  } catch {
    return { row, definition, problems: needsFixing(row.name, [problem("template.not_json", "The stored definition is not JSON.")]) };
  }
  const shape = Template.safeParse(definition);
  if (!shape.success) return { row, definition, problems: needsFixing(row.name, issuesToProblems(shape.error.issues)) };
  return { row, definition, shaped: shape.data, problems: needsFixing(row.name, checkTemplate(shape.data)) };
}

/** Today's problems of a saved template, led by one saying that it cannot run and how to fix it; none when there are none. */
function needsFixing(name: string, problems: Problem[]): Problem[] {
  if (problems.length === 0) return [];
  return [
    problem(
      "template.needs_fixing",
      `The saved template "${name}" does not pass this version's checks (it was saved by an earlier version, whose checks were less strict), so it cannot be exported or tested until it is fixed; what is wrong follows.`,
      `Download it (kontobro export template show ${name} --out FILE, or GET /api/v1/exports/templates/${name}/file), fix what each problem names, and save it again (kontobro export template import FILE --replace, or PUT /api/v1/exports/templates/${name}).`,
      "template",
    ),
    ...problems,
  ];
}

const ROWS = `SELECT name, data_type AS dataType, definition, updated_at AS updatedAt FROM export_templates`;

/** Every saved template, by name, with what this version's checks say about it. */
async function storedTemplates(db: SqlRunner): Promise<Stored[]> {
  return (await db.all<Row>(`${ROWS} ORDER BY name`)).map(readStored);
}

/** The built-in templates, then every saved one: one that needs fixing is listed with its problems, never left out. */
export async function listTemplates(db: SqlRunner): Promise<TemplateSummary[]> {
  const stored = (s: Stored): TemplateSummary => {
    if (s.problems.length === 0) return summary(s.shaped!, false, s.row.updatedAt);
    const title = (s.definition as { title?: unknown } | null)?.title;
    return {
      name: s.row.name,
      ...(typeof title === "string" && title ? { title } : {}),
      dataType: s.row.dataType,
      dataTypeTitle: DATA_TYPE_TITLES[s.row.dataType as DataType] ?? s.row.dataType,
      builtin: false,
      guessedColumns: s.shaped?.columns.filter((c) => c.guess).length ?? 0,
      updatedAt: s.row.updatedAt,
      problems: s.problems,
    };
  };
  return [...builtinTemplates().map((t) => summary(t, true)), ...(await storedTemplates(db)).map(stored)];
}

/** The saved templates that cannot run until fixed, with why (said at the agent's start). */
export async function templatesNeedingFixes(db: SqlRunner): Promise<{ name: string; problems: Problem[] }[]> {
  return (await storedTemplates(db)).filter((s) => s.problems.length > 0).map((s) => ({ name: s.row.name, problems: s.problems }));
}

/**
 * Every template whose files can be read back (found-files.ts): the built-in ones, then the saved ones, including one
 * this version's checks refuse, as the files it wrote before the upgrade may still be in the output folder.
 */
export async function allTemplates(db: SqlRunner): Promise<Template[]> {
  return [...builtinTemplates(), ...(await storedTemplates(db)).flatMap((s) => (s.shaped ? [s.shaped] : []))];
}

export type Found =
  | { ok: true; template: Template; builtin: boolean }
  /** `stored`: a saved template that needs fixing, as it is stored (to show or download it, so it can be fixed). */
  | { ok: false; httpStatus: 404 | 422; problems: Problem[]; stored?: object };

/** A template to run or test: refused with what is wrong when a saved one does not pass this version's checks. */
export async function findTemplate(db: SqlRunner, name: string): Promise<Found> {
  const builtin = builtinTemplate(name);
  if (builtin) return { ok: true, template: builtin, builtin: true };
  const row = await db.get<Row>(`${ROWS} WHERE name = ?1`, name);
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
  const s = readStored(row);
  if (s.problems.length === 0) return { ok: true, template: s.shaped!, builtin: false };
  const stored = s.definition !== null && typeof s.definition === "object" ? { stored: s.definition } : {};
  return { ok: false, httpStatus: 422, problems: s.problems, ...stored };
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
