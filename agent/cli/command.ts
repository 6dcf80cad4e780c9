// What a CLI command is, and the one way every command is parsed: node:util parseArgs in strict mode.
// Each command declares its options, arguments, summary and examples; its --help, the top-level usage and
// the usage errors (exit 2) are generated from that declaration, so they cannot drift from the parser.
import { parseArgs } from "node:util";

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** The value's placeholder in the usage, for a string option: "FILE", "N", … */
  value?: string;
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** Parsed option values: booleans for flags, strings for the rest; absent when not given. */
export type Values<O extends OptionSpecs> = { [K in keyof O]?: O[K]["type"] extends "boolean" ? boolean : string };

/** An example line of a usage: the command, or the command and what it does. */
export type Example = string | [command: string, comment: string];

export interface Invocation<O extends OptionSpecs> {
  values: Values<O>;
  positionals: string[];
  /** "kontobro export run": for messages. */
  path: string;
  /** The command's full usage, for a usage error the command finds itself (exit 2). */
  usage(): string;
}

interface CommandBase {
  /** The word that selects it: "status", "set-status". */
  name: string;
  /** Its arguments as the usage shows them: "FILE|-", "TARGET [STREAM]". */
  args?: string;
  /** One line, lower case, for the list of commands. */
  summary: string;
  /** More about it, shown under the usage line of its --help. */
  description?: string;
  examples?: Example[];
}

export interface LeafCommand<O extends OptionSpecs = OptionSpecs> extends CommandBase {
  options: O;
  /** How many positional arguments it takes; more or fewer exits 2 with its usage. Default: none. */
  positionals?: readonly [min: number, max: number];
  run(inv: Invocation<O>): number | Promise<number>;
}

/** A command whose first argument selects a sub-command (`kontobro export run …`). */
export interface GroupCommand extends CommandBase {
  subcommands: Command[];
}

export type Command = LeafCommand<any> | GroupCommand;

export function defineCommand<const O extends OptionSpecs>(c: LeafCommand<O>): LeafCommand<O> {
  return c;
}

export function defineGroup(c: GroupCommand): GroupCommand {
  return c;
}

const isGroup = (c: Command): c is GroupCommand => "subcommands" in c;

/** The --config option of every command that reads kontobro.toml. */
export const CONFIG_OPTION = {
  config: { type: "string", value: "FILE", help: "kontobro.toml to use (default: $KONTOBRO_CONFIG, else ./kontobro.toml)" },
} as const satisfies OptionSpecs;

const HELP_OPTION = { help: { type: "boolean", short: "h", help: "show this help" } } as const satisfies OptionSpecs;

const synopsis = (c: Pick<CommandBase, "name" | "args">) => (c.args ? `${c.name} ${c.args}` : c.name);

/** Two columns, the first padded to its widest entry. */
function columns(rows: [string, string][], indent = "  "): string {
  const width = Math.max(0, ...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => (right ? `${indent}${left.padEnd(width)}${right}` : `${indent}${left}`).trimEnd()).join("\n");
}

/**
 * The list of commands of a usage: commands, or their names, arguments and summaries (agent/cli/listing.ts); a group's
 * listing shows the sub-commands of its nested groups too.
 */
export function commandList(commands: readonly (Command | Pick<CommandBase, "name" | "args" | "summary">)[], expandGroups = false): string {
  const rows = commands.flatMap((c): [string, string][] =>
    expandGroups && "subcommands" in c ? c.subcommands.map((s) => [`${c.name} ${synopsis(s)}`, s.summary]) : [[synopsis(c), c.summary]],
  );
  return columns(rows);
}

function examplesSection(examples: Example[] | undefined): string {
  if (!examples?.length) return "";
  const rows = examples.map((e): [string, string] => (typeof e === "string" ? [e, ""] : [e[0], `# ${e[1]}`]));
  return `\n\nExamples:\n${columns(rows)}`;
}

function header(c: Command, path: string): string {
  return `${path}: ${c.summary}`;
}

export function usageOf(c: Command, path: string): string {
  const description = c.description ? `\n\n${c.description}` : "";
  if (isGroup(c)) {
    return (
      `${header(c, path)}\n\nUsage: ${path} <sub-command> ...${description}\n\nSub-commands:\n${commandList(c.subcommands, true)}\n\n` +
      `Run \`${path} <sub-command> --help\` for its options and examples.${examplesSection(c.examples)}`
    );
  }
  const options = { ...c.options, ...HELP_OPTION } as OptionSpecs;
  const rows = Object.entries(options).map(([name, o]): [string, string] => [
    `${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.value ?? "VALUE"}` : ""}`,
    o.help,
  ]);
  const hasOptions = Object.keys(c.options).length > 0;
  return (
    `${header(c, path)}\n\nUsage: ${path}${c.args ? ` ${c.args}` : ""}${hasOptions ? " [options]" : ""}${description}\n\n` +
    `Options:\n${columns(rows)}${examplesSection(c.examples)}`
  );
}

/** A usage error: its message, then where to look; exit code 2. */
function usageError(path: string, message: string): number {
  console.error(`${path}: ${message} (see ${path} --help)`);
  return 2;
}

/** parseArgs' errors in our words, naming the option. */
function describeParseError(e: { code?: string; message: string }): string {
  const option = /'(-[^' ]+)/.exec(e.message)?.[1];
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option}`;
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (/does not take an argument/.test(e.message)) return `option ${option} takes no value`;
    if (/ambiguous/.test(e.message)) return `option ${option} needs a value (to give one that starts with a dash, write ${option}=-VALUE)`;
    return `option ${option} needs a value`;
  }
  return e.message;
}

/** Parses `argv` (what follows the command's name) for `c` and runs it. Returns the exit code. */
export async function invoke(c: Command, argv: string[], path: string): Promise<number> {
  if (isGroup(c)) {
    const [first, ...rest] = argv;
    if (first === "--help" || first === "-h") {
      console.log(usageOf(c, path));
      return 0;
    }
    if (first === undefined) {
      console.log(usageOf(c, path));
      return 2;
    }
    if (first.startsWith("-")) return usageError(path, `unknown option ${first}`);
    const sub = c.subcommands.find((s) => s.name === first);
    if (!sub) return usageError(path, `unknown sub-command "${first}"`);
    return invoke(sub, rest, `${path} ${sub.name}`);
  }
  const options = { ...c.options, ...HELP_OPTION } as OptionSpecs;
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    return usageError(path, describeParseError(e as { code?: string; message: string }));
  }
  const usage = () => usageOf(c, path);
  if (parsed.values.help) {
    console.log(usage());
    return 0;
  }
  const [min, max] = c.positionals ?? [0, 0];
  const n = parsed.positionals.length;
  if (n < min || n > max) {
    console.error(
      `${path}: ${n < min ? `missing ${c.args ?? "argument"}` : `unexpected argument "${parsed.positionals[max]}"`}\n\n${usage()}`,
    );
    return 2;
  }
  return c.run({ values: parsed.values as Values<OptionSpecs>, positionals: parsed.positionals, path, usage });
}
