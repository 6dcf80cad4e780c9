import type { z } from "zod";

/** The one shape for anything that went wrong, everywhere: intake, rules, connectors, config. */
export interface Problem {
  /** Stable machine code, e.g. "economic.project_number_not_numeric" or "E06000". */
  code: string;
  /** Plain language: what is wrong. */
  message: string;
  /** Plain language: how to fix it. */
  hint?: string;
  /** Dotted path of the field concerned, when there is one. */
  field?: string;
  /**
   * The record the user must change when it is not the one being pushed (an invoice refused because of
   * its customer's name): a new version of that record retries the refused delivery by itself.
   */
  record?: { entity: "customer" | "project" | "product" | "invoice"; key: string };
}

export function problem(code: string, message: string, hint?: string, field?: string): Problem {
  return { code, message, ...(hint ? { hint } : {}), ...(field ? { field } : {}) };
}

/** zod issues → Problems with a dotted field path relative to the event. */
export function issuesToProblems(issues: z.core.$ZodIssue[], prefix: string): Problem[] {
  return issues.map((i) => {
    const field = [prefix, ...i.path.map(String)].filter(Boolean).join(".");
    return { code: `invalid.${i.code}`, field, message: `${field}: ${i.message}`, hint: hintFor(i) };
  });
}

function hintFor(i: z.core.$ZodIssue): string {
  switch (i.code) {
    case "invalid_type": return (i as any).input === undefined ? "Add this field; it is required." : `Send a ${(i as any).expected} here.`;
    case "too_big": return `Shorten it to at most ${(i as any).maximum}${(i as any).origin === "string" ? " characters" : ""}.`;
    case "too_small": return (i as any).origin === "array" ? `Send at least ${(i as any).minimum} item(s).` : "Fill in a value.";
    case "invalid_value": return `Use one of: ${((i as any).values ?? []).join(", ")}.`;
    case "unrecognized_keys": return "Remove the unknown field(s).";
    default: return "Correct the value in the PSA and send the event again.";
  }
}
