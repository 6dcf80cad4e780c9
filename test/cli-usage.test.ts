// Every command's usage, generated from its declaration (agent/cli/): --help and -h answer with it (exit 0),
// an unknown option exits 2 naming it, a missing or extra argument exits 2 with the usage, and the
// top-level usage lists every command. In-process through main(): none of this reads a config or a database.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Command, LeafCommand } from "../agent/cli/command.ts";
import { loadCommands } from "../agent/cli/index.ts";
import { LISTINGS } from "../agent/cli/listing.ts";
import { main } from "../agent/main.ts";

/** Runs main(argv), capturing what it prints. */
async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** Every command and sub-command, with the words that select it. */
function walk(list: Command[], words: string[] = []): { words: string[]; command: Command }[] {
  return list.flatMap((c) => {
    const here = [...words, c.name];
    return [{ words: here, command: c }, ...("subcommands" in c ? walk(c.subcommands, here) : [])];
  });
}

const commands = await loadCommands();
const all = walk(commands);
const leaves = all.filter((e): e is { words: string[]; command: LeafCommand } => !("subcommands" in e.command));
const name = (words: string[]) => `kontobro ${words.join(" ")}`;

describe("top-level usage", () => {
  test("kontobro, kontobro help, --help and -h print it, generated from every command's summary", async () => {
    const usage = await cli();
    expect(usage.code).toBe(0);
    for (const argv of [["help"], ["--help"], ["-h"]]) expect(await cli(...argv)).toEqual(usage);
    for (const c of commands) {
      expect(usage.out).toMatch(
        new RegExp(
          `^  ${(c.args ? `${c.name} ${c.args}` : c.name).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`,
          "m",
        ),
      );
    }
    const listed = [...usage.out.matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]);
    expect(listed).toEqual(commands.map((c) => c.name));
    expect(listed).toEqual([
      "run",
      "demo",
      "check",
      "connect",
      "status",
      "enqueue",
      "retry",
      "prune",
      "pull",
      "match",
      "sandbox",
      "export",
      "backup",
      "restore",
      "tenant",
      "storage",
      "service",
      "version",
    ]);
  });

  test("each command says of itself what the top-level usage lists (agent/cli/listing.ts)", () => {
    expect(commands.map((c) => ({ name: c.name, args: c.args, summary: c.summary }))).toEqual(
      LISTINGS.map((l) => ({ name: l.name, args: "args" in l ? l.args : undefined, summary: l.summary })),
    );
  });

  test("only run's module loads with the entry point; another command's when it runs (issue 16, idle memory)", async () => {
    const script = `
      const cli = () => Object.keys(require.cache).filter((k) => k.includes("/agent/cli/")).map((k) => k.replace(/.*\\/agent\\/cli\\//, "")).sort();
      const { main } = await import("./agent/main.ts");
      const atStart = cli();
      console.log = () => {};
      await main(["--help"]);
      const afterUsage = cli();
      await main(["version"]);
      process.stdout.write(JSON.stringify({ atStart, afterUsage, afterVersion: cli() }));`;
    const proc = Bun.spawn([process.execPath, "-e", script], { cwd: join(import.meta.dir, ".."), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const loaded = JSON.parse(out);
    expect(loaded.atStart).toEqual(["command.ts", "index.ts", "listing.ts", "run.ts", "runtime.ts"]);
    expect(loaded.afterUsage).toEqual(loaded.atStart);
    expect(loaded.afterVersion).toEqual([...loaded.atStart, "version.ts"].sort());
  });

  test("an unknown command or option exits 2", async () => {
    const unknown = await cli("frobnicate");
    expect([unknown.code, unknown.err.split("\n")[0]]).toEqual([2, 'kontobro: unknown command "frobnicate"']);
    const option = await cli("--jsn");
    expect([option.code, option.err]).toEqual([2, "kontobro: unknown option --jsn (see kontobro --help)"]);
  });
});

describe("each command's --help", () => {
  test.each(all.map((e) => [name(e.words), e] as const))("%s --help and -h", async (_, { words, command }) => {
    const help = await cli(...words, "--help");
    expect(help.code).toBe(0);
    expect(help.err).toBe("");
    expect(help.out.split("\n")[0]).toBe(`${name(words)}: ${command.summary}`);
    expect(help.out).toContain(`Usage: ${name(words)}`);
    expect(await cli(...words, "-h")).toEqual(help);
    expect(await cli("help", ...words)).toEqual(help);
    if ("subcommands" in command) {
      for (const s of command.subcommands) expect(help.out).toContain(`  ${s.name}`);
    } else {
      if (command.args) expect(help.out).toContain(`Usage: ${name(words)} ${command.args}`);
      for (const option of [...Object.keys(command.options), "help"])
        expect(help.out).toMatch(new RegExp(`^  (-\\w, )?--${option}\\b`, "m"));
      expect(help.out).toContain("\nExamples:\n");
      for (const e of command.examples ?? []) expect(typeof e === "string" ? e : e[0]).toContain(name(words)); // examples use the command they explain
    }
  });
});

describe("usage errors exit 2", () => {
  test.each(all.map((e) => [name(e.words), e.words] as const))("%s --jsn names the option", async (_, words) => {
    const r = await cli(...words, "--jsn");
    expect(r).toEqual({ code: 2, out: "", err: `${name(words)}: unknown option --jsn (see ${name(words)} --help)` });
  });

  test.each(leaves.filter((e) => (e.command.positionals?.[0] ?? 0) > 0).map((e) => [name(e.words), e] as const))(
    "%s without its arguments shows its usage",
    async (_, { words, command }) => {
      const r = await cli(...words);
      expect(r.code).toBe(2);
      expect(r.err.split("\n")[0]).toBe(`${name(words)}: missing ${command.args}`);
      expect(r.err).toContain(`Usage: ${name(words)} ${command.args}`);
    },
  );

  test.each(leaves.map((e) => [name(e.words), e] as const))(
    "%s with one argument too many shows its usage",
    async (_, { words, command }) => {
      const max = command.positionals?.[1] ?? 0;
      const r = await cli(...words, ...Array.from({ length: max + 1 }, (_, i) => `arg${i}`));
      expect(r.code).toBe(2);
      expect(r.err.split("\n")[0]).toBe(`${name(words)}: unexpected argument "arg${max}"`);
      expect(r.err).toContain(`Usage: ${name(words)}`);
    },
  );

  test("an option without its value, a value for a flag, an unknown sub-command", async () => {
    expect(await cli("prune", "--days")).toEqual({
      code: 2,
      out: "",
      err: "kontobro prune: option --days needs a value (see kontobro prune --help)",
    });
    expect(await cli("status", "--json=yes")).toEqual({
      code: 2,
      out: "",
      err: "kontobro status: option --json takes no value (see kontobro status --help)",
    });
    expect(await cli("export", "frobnicate")).toEqual({
      code: 2,
      out: "",
      err: 'kontobro export: unknown sub-command "frobnicate" (see kontobro export --help)',
    });
    expect((await cli("export", "template", "frobnicate")).err).toBe(
      'kontobro export template: unknown sub-command "frobnicate" (see kontobro export template --help)',
    );
  });

  test("retry takes an ID or --all, and --target only with --all", async () => {
    for (const argv of [["retry"], ["retry", "1", "--all"], ["retry", "1", "--target", "eco"]]) {
      const r = await cli(...argv);
      expect([r.code, r.err]).toEqual([2, expect.stringContaining("Usage: kontobro retry ID|--all")]);
    }
    expect((await cli("retry", "one")).err).toStartWith('delivery ids are whole numbers, not "one"');
  });

  test("demo and sandbox check their values before starting anything", async () => {
    expect((await cli("demo", "--target", "frobnicate")).err).toStartWith("kontobro demo: --target must be one of ");
    expect(await cli("demo", "--port", "http")).toEqual({
      code: 2,
      out: "",
      err: 'kontobro demo: --port must be a port number, not "http" (see kontobro demo --help)',
    });
    expect((await cli("demo", "--interval", "0")).code).toBe(2);
    const kind = /sandbox on its own: (\w+)/.exec((await cli("--help")).out)![1]!;
    expect((await cli("sandbox", kind, "--port", "-1")).code).toBe(2);
  });

  test("sandbox and demo offer kinds of the connector registry, and refuse others", async () => {
    const { connectorKinds } = await import("../connectors/registry.ts");
    const r = await cli("sandbox", "frobnicate");
    expect(r.code).toBe(2);
    const offered = /KIND is one of (.+)$/m.exec(r.err)![1]!.split(", ");
    expect(offered.length).toBeGreaterThan(0);
    for (const kind of offered) expect(Object.keys(connectorKinds)).toContain(kind);
    const demo = (await cli("demo", "--help")).out;
    for (const kind of /--target KIND +the sandbox to deliver to: (.+) \(default/.exec(demo)![1]!.split(", "))
      expect(Object.keys(connectorKinds)).toContain(kind);
  });
});

test("the binary's entry point exits 2 on an unknown option, naming it on standard error", async () => {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../agent/main.ts"), "status", "--jsn"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect({ code, out, err }).toEqual({ code: 2, out: "", err: "kontobro status: unknown option --jsn (see kontobro status --help)\n" });
});
