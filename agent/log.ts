// JSON-lines logging with secret redaction.
export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_KEY = /token|secret|password|authorization|api[-_]?key|assertion|grant/i;
const secretValues = new Set<string>();
/** Secrets that rotate (OAuth tokens), by slot: each slot holds its latest value only. */
const rotatingSecrets = new Map<string, string>();

/**
 * Register a secret value so it is masked wherever it appears in a log line. A `slot` names a secret that rotates (a
 * token refreshed every hour): its new value replaces the one before, so the set does not grow with every rotation
 * (kept all, a year of hourly tokens made every log line thousands of string searches, and held them all in memory).
 */
export function registerSecret(value: string | undefined, slot?: string): void {
  if (!value || value.length < 4) return;
  if (slot === undefined) secretValues.add(value);
  else rotatingSecrets.set(slot, value);
}

function maskSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join("[redacted]");
  return out;
}

export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") {
    const out = maskSecrets(maskSecrets(value, secretValues), rotatingSecrets.values());
    return out.replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, "$1[redacted]");
  }
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: redact(value.message, depth + 1) };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v ? "[redacted]" : redact(v, depth + 1);
  return out;
}

export interface Logger {
  /**
   * Whether a line at `level` would be written: a caller whose fields cost something to build (a line per delivery)
   * asks first and builds nothing when it would not (issue 16: at log_level warn or error, the benchmark's, the
   * dispatcher built a "delivered" line's fields for every delivery and wrote none of them).
   */
  enabled(level: Level): boolean;
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  level: Level = "info",
  base: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stderr.write(l + "\n"),
): Logger {
  const enabled = (lvl: Level) => ORDER[lvl] >= ORDER[level];
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (!enabled(lvl)) return;
    const entry = redact({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields }) as Record<string, unknown>;
    write(JSON.stringify(entry));
  };
  return {
    enabled,
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (f) => createLogger(level, { ...base, ...f }, write),
  };
}

export const silentLogger: Logger = {
  enabled: () => false,
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
