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
}

export function problem(code: string, message: string, hint?: string, field?: string): Problem {
  return { code, message, ...(hint ? { hint } : {}), ...(field ? { field } : {}) };
}
