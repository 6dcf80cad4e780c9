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
