// A small, pure JSON Schema validator for e-conomic's own schemas: draft-03 (`"required": true` inside a
// property) plus the OpenAPI 3.0 bits of the Projects schema (`required: [...]`, `nullable`). Only the
// keywords those schemas use are implemented; unknown keywords are ignored, as JSON Schema says.

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  /** draft-03: boolean on the property itself; OpenAPI: list of names on the object. */
  required?: boolean | string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema | JsonSchema[];
  nullable?: boolean;
  enum?: unknown[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean | number;
  exclusiveMaximum?: boolean | number;
  /** e-conomic's own keyword: the most decimals a number may have (error E04740). */
  maxDecimal?: number;
  readOnly?: boolean;
  /** Some e-conomic schemas spell it in lower case. */
  readonly?: boolean;
  [keyword: string]: unknown;
}

export type PathSegment = string | number;

export interface SchemaError {
  /** Readable path, e.g. `lines[0].unitNetPrice`; empty for the document itself. */
  path: string;
  segments: PathSegment[];
  /** The keyword that failed: type, required, maxLength, maxDecimal, … */
  keyword: string;
  message: string;
  /** The offending value (absent for a missing property). */
  value?: unknown;
}

export interface ValidateOptions {
  /** Compare string enum values case-insensitively (e-conomic documents `ean` for an enum that says `EAN`). */
  caseInsensitiveEnums?: boolean;
}

export function validateSchema(schema: JsonSchema, value: unknown, options: ValidateOptions = {}): SchemaError[] {
  const errors: SchemaError[] = [];
  check(schema, value, [], errors, options);
  return errors;
}

export function formatPath(segments: PathSegment[]): string {
  return segments.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

export function isReadOnly(schema: JsonSchema): boolean {
  return schema.readOnly === true || schema.readonly === true;
}

/**
 * What the server keeps of a document: declared properties only, read-only ones dropped (e-conomic ignores
 * both on input). Objects without declared properties are kept as they are.
 */
export function stripToSchema(schema: JsonSchema, value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = schema.items;
    if (!items || Array.isArray(items)) return value;
    return value.map((v) => stripToSchema(items, v));
  }
  if (!isPlainObject(value) || !schema.properties) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const prop = schema.properties[key];
    if (!prop || isReadOnly(prop)) continue;
    out[key] = stripToSchema(prop, v);
  }
  return out;
}

function check(schema: JsonSchema, value: unknown, at: PathSegment[], errors: SchemaError[], opts: ValidateOptions): void {
  const fail = (keyword: string, message: string) =>
    errors.push({ path: formatPath(at), segments: at, keyword, message: `${name(at)} ${message}`, value });
  if (value === null) {
    if (schema.nullable === true || typeList(schema).includes("null") || schema.enum?.includes(null)) return;
    if (schema.type !== undefined || schema.enum !== undefined) fail("type", "cannot be null.");
    return;
  }
  const types = typeList(schema);
  if (types.length > 0 && !types.some((t) => hasType(value, t))) {
    fail("type", `must be of type ${types.join(" or ")}.`);
    return;
  }
  if (schema.enum && !enumHas(schema.enum, value, opts)) {
    fail("enum", `must be one of: ${schema.enum.filter((e) => e !== null).join(", ")}.`);
  }
  if (typeof value === "string") checkString(schema, value, fail);
  if (typeof value === "number") checkNumber(schema, value, fail);
  if (Array.isArray(value)) checkItems(schema, value, at, errors, opts);
  else if (isPlainObject(value)) checkObject(schema, value, at, errors, opts);
}

type Fail = (keyword: string, message: string) => void;

function checkString(schema: JsonSchema, value: string, fail: Fail): void {
  if (schema.minLength !== undefined && value.length < schema.minLength)
    fail("minLength", `must be at least ${schema.minLength} characters long.`);
  if (schema.maxLength !== undefined && value.length > schema.maxLength)
    fail("maxLength", `cannot be longer than ${schema.maxLength} characters.`);
  // JSON Schema patterns are not anchored: "[a-zA-Z]{3}" only asks for three letters somewhere.
  const re = schema.pattern === undefined ? null : safeRegExp(schema.pattern);
  if (re && !re.test(value)) fail("pattern", `does not match the pattern ${schema.pattern}.`);
  if (schema.format !== undefined && !formatOk(schema.format, value)) fail("format", `is not a valid ${schema.format}.`);
}

function checkNumber(schema: JsonSchema, value: number, fail: Fail): void {
  const { minimum, maximum, exclusiveMinimum: exMin, exclusiveMaximum: exMax } = schema;
  if (minimum !== undefined && (exMin === true ? value <= minimum : value < minimum)) {
    fail("minimum", `must be ${exMin === true ? "greater than" : "at least"} ${minimum}.`);
  }
  if (typeof exMin === "number" && value <= exMin) fail("exclusiveMinimum", `must be greater than ${exMin}.`);
  if (maximum !== undefined && (exMax === true ? value >= maximum : value > maximum)) {
    fail("maximum", `must be ${exMax === true ? "less than" : "at most"} ${maximum}.`);
  }
  if (typeof exMax === "number" && value >= exMax) fail("exclusiveMaximum", `must be less than ${exMax}.`);
  if (schema.maxDecimal !== undefined && decimals(value) > schema.maxDecimal) {
    fail("maxDecimal", `scale cannot be greater than ${schema.maxDecimal} decimal places.`);
  }
}

function checkItems(schema: JsonSchema, value: unknown[], at: PathSegment[], errors: SchemaError[], opts: ValidateOptions): void {
  const items = schema.items;
  if (!items) return;
  value.forEach((item, i) => {
    const itemSchema = Array.isArray(items) ? items[i] : items;
    if (itemSchema) check(itemSchema, item, [...at, i], errors, opts);
  });
}

function checkObject(
  schema: JsonSchema,
  value: Record<string, unknown>,
  at: PathSegment[],
  errors: SchemaError[],
  opts: ValidateOptions,
): void {
  const props = schema.properties ?? {};
  const requiredList = Array.isArray(schema.required) ? schema.required : [];
  for (const key of requiredList) {
    if (value[key] === undefined) errors.push(missing([...at, key]));
  }
  for (const [key, prop] of Object.entries(props)) {
    if (!isPlainObject(prop)) continue;
    const v = value[key];
    if (v === undefined) {
      if (prop.required === true && !isReadOnly(prop)) errors.push(missing([...at, key]));
      continue;
    }
    if (isReadOnly(prop)) continue; // the server ignores read-only input
    check(prop, v, [...at, key], errors, opts);
  }
  const extra = Object.keys(value).filter((k) => !(k in props));
  if (schema.additionalProperties === false) {
    for (const key of extra) {
      errors.push({
        path: formatPath([...at, key]),
        segments: [...at, key],
        keyword: "additionalProperties",
        message: `${key} is not a known property.`,
        value: value[key],
      });
    }
  } else if (isPlainObject(schema.additionalProperties)) {
    for (const key of extra) check(schema.additionalProperties as JsonSchema, value[key], [...at, key], errors, opts);
  }
}

function missing(at: PathSegment[]): SchemaError {
  return { path: formatPath(at), segments: at, keyword: "required", message: `${name(at)} is required.` };
}

function typeList(schema: JsonSchema): string[] {
  if (typeof schema.type === "string") return [schema.type];
  if (Array.isArray(schema.type)) return schema.type.filter((t): t is string => typeof t === "string");
  return [];
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "object":
      return isPlainObject(value);
    case "array":
      return Array.isArray(value);
    case "null":
      return value === null;
    case "any":
      return true;
    default:
      return true; // an unknown type name constrains nothing
  }
}

function enumHas(values: unknown[], value: unknown, opts: ValidateOptions): boolean {
  return values.some(
    (e) =>
      e === value ||
      (opts.caseInsensitiveEnums && typeof e === "string" && typeof value === "string" && e.toLowerCase() === value.toLowerCase()),
  );
}

/** Decimals as written in JSON: 10.12345 has 5; 1e-7 has 7. */
export function decimals(n: number): number {
  if (!Number.isFinite(n) || Number.isInteger(n)) return 0;
  const [mantissa, exp] = String(n).toLowerCase().split("e");
  const fraction = (mantissa!.split(".")[1] ?? "").length;
  return Math.max(0, fraction - Number(exp ?? 0));
}

function formatOk(format: string, value: string): boolean {
  switch (format) {
    case "date":
    case "full-date":
      return isIsoDate(value);
    case "date-time":
      return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(value) && isIsoDate(value.slice(0, 10));
    case "uri":
      return /^[a-z][a-z0-9+.-]*:\S+$/i.test(value);
    default:
      return true; // int32, double, email, … are not checked
  }
}

function isIsoDate(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

const regexCache = new Map<string, RegExp | null>();
function safeRegExp(pattern: string): RegExp | null {
  if (!regexCache.has(pattern)) {
    try {
      regexCache.set(pattern, new RegExp(pattern));
    } catch {
      regexCache.set(pattern, null);
    }
  }
  return regexCache.get(pattern) ?? null;
}

function name(at: PathSegment[]): string {
  const last = [...at].reverse().find((s) => typeof s === "string");
  return typeof last === "string" ? last : "value";
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
