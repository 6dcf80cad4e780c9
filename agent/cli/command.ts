// A tiny argument parser: positional words and --flag / --flag=value / --flag value.
export interface Args {
  command: string;
  positional: string[];
  flags: Record<string, string | true>;
}

const BOOLEAN_FLAGS = new Set(["json", "all", "help", "skip-invalid", "replace"]);

export function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-") positional.push(a);
    else if (a.startsWith("--")) {
      const [name, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (value !== undefined) flags[name] = value;
      else if (!BOOLEAN_FLAGS.has(name) && i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) flags[name] = argv[++i]!;
      else flags[name] = true;
    } else if (a === "-h") flags.help = true;
    else positional.push(a);
  }
  return { command: positional.shift() ?? "help", positional, flags };
}
