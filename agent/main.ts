#!/usr/bin/env bun
// kontobro's entry point: picks the command (one file each in agent/cli/, listed in agent/cli/index.ts),
// runs it, and turns what it throws into an exit code: 0 ok, 1 a check or command failed, 2 bad
// configuration or usage.
import { invoke } from "./cli/command.ts";
import { loadCommand, topLevelUsage } from "./cli/index.ts";
import { ConfigError } from "./config.ts";
import { StorageError } from "./db/index.ts";

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || (name === "help" && rest.length === 0)) {
    console.log(topLevelUsage());
    return 0;
  }
  if (name === "help") return main([...rest, "--help"]);
  // Only this command's module is loaded (agent/cli/index.ts).
  const command = await loadCommand(name);
  if (!command) {
    console.error(
      name.startsWith("-")
        ? `kontobro: unknown option ${name} (see kontobro --help)`
        : `kontobro: unknown command "${name}"\n\n${topLevelUsage()}`,
    );
    return 2;
  }
  try {
    return await invoke(command, rest, `kontobro ${command.name}`);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    if (e instanceof StorageError) {
      console.error(`kontobro: ${e.message}\n  fix: ${e.hint}`);
      return 1;
    }
    console.error(`kontobro: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
