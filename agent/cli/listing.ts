// The top-level commands as `kontobro --help` lists them: each one's name, arguments and summary, in the usage's
// order. Listed here, not only in each command's file, so that the usage and the choice of a command load none of the
// commands' modules: agent/cli/index.ts loads a command's module when it runs (issue 16, idle memory). Each command
// takes its entry (`...listed("status")`), so its own --help says the same.
import { connectorKinds } from "../../connectors/registry.ts";

export interface Listing {
  name: string;
  args?: string;
  summary: string;
}

/** The registry's kinds that have a sandbox (and so a demo target), in its order. */
export const SANDBOX_KINDS: readonly string[] = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.startSandbox);

/** The registry's kinds whose targets sign in with OAuth, in its order. */
export const OAUTH_KINDS: readonly string[] = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.oauth);

const oauthTitles = OAUTH_KINDS.map((k) => connectorKinds[k]!.title).join(", ");

export const LISTINGS = [
  { name: "run", summary: "run the agent with kontobro.toml (or --config FILE, or $KONTOBRO_CONFIG)" },
  { name: "demo", summary: `run against a built-in sandbox with sample data (--target ${SANDBOX_KINDS.join("|")})` },
  { name: "check", summary: "verify each target's credentials and required set-up" },
  { name: "connect", args: "TARGET", summary: `sign in to a target that uses OAuth (${oauthTitles}) and store its tokens` },
  { name: "status", summary: "deliveries per target and what needs action (--json)" },
  { name: "enqueue", args: "FILE|-", summary: "store events from a JSON file (one event or an array) or standard input" },
  { name: "retry", args: "ID|--all", summary: "retry a delivery, or every delivery that needs action (--target NAME)" },
  { name: "prune", summary: "prune finished work older than agent.retention_days now (--days N, --json)" },
  { name: "pull", args: "TARGET [STREAM]", summary: "pull now from a target (expenses, payments), as the schedule would" },
  {
    name: "match",
    args: "TARGET",
    summary: "before the first sync: customers and products in both systems, in one, and mismatches (dry run)",
  },
  {
    name: "sandbox",
    args: "KIND",
    summary: `serve a sandbox on its own: ${SANDBOX_KINDS.join(", ").replace(/, (?=[^,]*$)/, " or ")} (--port N)`,
  },
  { name: "export", args: "...", summary: "file exports: SIE 4 and templates, files, export status, templates" },
  { name: "backup", args: "FILE", summary: "a consistent copy of the database, safe while the agent runs" },
  { name: "restore", args: "FILE", summary: "put a backup in place (agent stopped; the replaced database is kept beside it)" },
  {
    name: "tenant",
    args: "...",
    summary: "tenants of a PostgreSQL installation: add, list, set, connect, status, disable, enable, remove",
  },
  { name: "storage", args: "...", summary: "the storage kontobro.toml names: the SQLite file or PostgreSQL" },
  { name: "service", summary: "install, uninstall or inspect kontobro as a system service" },
  { name: "version", summary: "print the version" },
] as const satisfies readonly Listing[];

export type CommandName = (typeof LISTINGS)[number]["name"];

/** A command's name, arguments and summary, for its definition. */
export function listed(name: CommandName): Listing {
  return LISTINGS.find((l) => l.name === name)!;
}
