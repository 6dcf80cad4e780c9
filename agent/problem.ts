import type { z } from "zod";

/** The one shape for anything that went wrong, everywhere: intake, rules, connectors, config. */
export interface Problem {
  /** Stable machine code, e.g. "<kind>.project_number_not_numeric" (a connector's own) or "E06000" (the target's). */
  code: string;
  /** Plain language: what is wrong. */
  message: string;
  /** Plain language: how to fix it. */
  hint?: string;
  /** Dotted path of the field concerned, when there is one. */
  field?: string;
  /**
   * The record the user must change when it is not the one being pushed (an invoice refused because of
   * its customer's name): a new version of that record retries the refused delivery by itself. `gone`: the target
   * has no such record (deleted there since kontobro sent it): what kontobro remembers of its push there is forgotten,
   * so the PSA's next version of it, even unchanged, is sent and creates it again.
   */
  record?: { entity: "customer" | "project" | "product" | "invoice"; key: string; gone?: boolean };
}

export function problem(code: string, message: string, hint?: string, field?: string): Problem {
  return { code, message, ...(hint ? { hint } : {}), ...(field ? { field } : {}) };
}

/** How issuesToProblems names fields and writes messages for one boundary (intake, config, API, connector). */
export interface IssueStyle {
  /** Where the validated value sits: "data" (an event's data), "targets[0]", "exports". */
  prefix?: string;
  /** Array positions as config keys write them (targets[0].name) instead of as JSON paths (lines.0.text). */
  brackets?: boolean;
  /** Names the value itself in the message when the issue has no path: "(top level)", the entity. */
  whole?: string;
  /** The code of every problem; by default invalid.<zod's code>. */
  code?: string;
  /** The hint of every problem; by default one per kind of issue, for a value the PSA sent. */
  hint?: string;
}

/**
 * The one way zod issues become Problems: the field is the issue's path under `prefix`, the message
 * "<field>: <what is wrong>" (unknown keys listed by name), the hint says how to fix it.
 */
export function issuesToProblems(issues: readonly z.core.$ZodIssue[], style: IssueStyle = {}): Problem[] {
  return issues.map((i) => {
    const field = fieldPath(style.prefix ?? "", i.path, style.brackets ?? false);
    const label = field || style.whole;
    const text = i.code === "unrecognized_keys" ? `unknown key(s) ${i.keys.join(", ")}` : i.message;
    return {
      code: style.code ?? `invalid.${i.code}`,
      message: label ? `${label}: ${text}` : text,
      hint: style.hint ?? hintFor(i),
      ...(field ? { field } : {}),
    };
  });
}

function fieldPath(prefix: string, path: readonly PropertyKey[], brackets: boolean): string {
  let out = prefix;
  for (const p of path) {
    if (brackets && typeof p === "number") out += `[${p}]`;
    else out += (out ? "." : "") + String(p);
  }
  return out;
}

function hintFor(i: z.core.$ZodIssue): string {
  switch (i.code) {
    case "invalid_type":
      // The value sent is in the issue only when the parse reported inputs (intake does); without it, it was missing.
      if ((i as any).input === undefined) return "Add this field; it is required.";
      // A number with decimals where a whole one belongs (an amount in minor units): most often computed in floating point.
      if ((i as any).expected === "int" && typeof (i as any).input === "number")
        return `Send a whole number here, not ${(i as any).input}; round a value the PSA computed (in floating point 19.99 × 100 is 1998.9999999999998).`;
      // null where a field has no value: JSON serialisers write it for an empty optional field, which is left out instead
      // (a null event in an array is no field: told only what belongs there).
      if ((i as any).input === null && typeof i.path[i.path.length - 1] === "string")
        return `Send ${expectedKind((i as any).expected)} here, not null; where the field has no value, leave it out (null is not taken for an empty field).`;
      return `Send ${expectedKind((i as any).expected)} here, not ${kindOf((i as any).input)}.`;
    case "too_big":
      return (i as any).origin === "string"
        ? `Shorten it to at most ${(i as any).maximum} characters.`
        : (i as any).origin === "array"
          ? `Send at most ${(i as any).maximum} item(s).`
          : `Send a value of at most ${(i as any).maximum}.`;
    case "too_small":
      return (i as any).origin === "array"
        ? `Send at least ${(i as any).minimum} item(s).`
        : (i as any).origin === "string"
          ? "Fill in a value."
          : `Send a value of at least ${(i as any).minimum}.`;
    case "invalid_value":
      return `Use one of: ${((i as any).values ?? []).join(", ")}.`;
    case "unrecognized_keys":
      return "Remove the unknown field(s).";
    // A date or time that is no such thing (2026-02-30, 2026-1-5, a time on a date, no zone on a time).
    case "invalid_format":
      if ((i as any).format === "date")
        return "Send the date as YYYY-MM-DD (2026-03-31): no time or zone, month and day with two digits, a day its month has (2026-02-30 is none).";
      if ((i as any).format === "datetime")
        return "Send the time as ISO 8601 with its zone: 2026-03-31T14:05:00Z (UTC) or 2026-03-31T16:05:00+02:00, on a day its month has.";
      return "Correct the value in the PSA and send the event again.";
    default:
      return "Correct the value in the PSA and send the event again.";
  }
}

/** What zod expected, as a hint names it: "a whole number" (int), "an object" (a record), "an array". */
function expectedKind(expected: string): string {
  if (expected === "int") return "a whole number";
  if (expected === "record") return "an object";
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

/** "a string", "an array", "null": what kind of value was sent, for a hint. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** A message's first letter in upper case ("customer 10042" → "Customer 10042"). */
export const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
