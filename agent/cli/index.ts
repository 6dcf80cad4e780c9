// Every command of the kontobro binary, in the order the usage lists them (agent/cli/listing.ts), and the top-level
// usage made from their summaries. A new command is one file in this folder, its entry in listing.ts and its line here.
//
// Only `run` is loaded with the binary; every other command's module (and what only it imports) is loaded when that
// command runs (issue 16: the idle agent holds none of them).
import { VERSION } from "../version.ts";
import { type Command, commandList } from "./command.ts";
import { type CommandName, LISTINGS } from "./listing.ts";
import { run } from "./run.ts";

const LOADERS: Record<CommandName, () => Promise<Command>> = {
  run: async () => run,
  demo: async () => (await import("./demo.ts")).demo,
  check: async () => (await import("./check.ts")).check,
  connect: async () => (await import("./connect.ts")).connect,
  status: async () => (await import("./status.ts")).status,
  enqueue: async () => (await import("./enqueue.ts")).enqueue,
  retry: async () => (await import("./retry.ts")).retry,
  prune: async () => (await import("./prune.ts")).prune,
  pull: async () => (await import("./pull.ts")).pull,
  match: async () => (await import("./match.ts")).match,
  sandbox: async () => (await import("./sandbox.ts")).sandbox,
  export: async () => (await import("./export.ts")).exportCommand,
  backup: async () => (await import("./backup.ts")).backup,
  restore: async () => (await import("./restore.ts")).restore,
  tenant: async () => (await import("./tenant.ts")).tenant,
  storage: async () => (await import("./storage.ts")).storage,
  service: async () => (await import("./service.ts")).service,
  version: async () => (await import("./version.ts")).version,
};

/** The command of that name, its module loaded now; undefined for a name that is no command. */
export function loadCommand(name: string): Promise<Command> | undefined {
  return Object.hasOwn(LOADERS, name) ? LOADERS[name as CommandName]() : undefined;
}

/** Every command, each module loaded (for the tests: they walk every command's usage). */
export function loadCommands(): Promise<Command[]> {
  return Promise.all(LISTINGS.map((l) => LOADERS[l.name]()));
}

export function topLevelUsage(): string {
  return `kontobro ${VERSION}: sync agent between your PSA and your accounting system

Usage: kontobro <command> [options]

${commandList(LISTINGS)}

Run \`kontobro <command> --help\` (or \`kontobro help <command>\`) for its options and examples.
Exit codes: 0 ok, 1 a check or command failed, 2 bad configuration or usage.`;
}
