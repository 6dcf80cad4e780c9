// Builds the single-file binaries: dist/kontobro-linux-x64, dist/kontobro-linux-arm64 and
// dist/kontobro-windows-x64.exe. Cross-compiling needs the Bun runtime of each platform; Bun would
// download it from GitHub, which this network cannot reach, so we take the same runtime from the npm
// registry (@oven/bun-<platform>, the packages `npm install bun` itself uses) and hand it to
// `bun build --compile-executable-path`.
//
//   bun scripts/build.ts               all three
//   bun scripts/build.ts linux-x64     just one (names as in the table below)
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectorKinds } from "../connectors/registry.ts";
import { freePort, waitHealthy, writeAgentConfig } from "./bench-support.ts";

interface Platform {
  name: string;
  target: string;
  npmPackage: string;
  executable: string;
  outfile: string;
}

export const PLATFORMS: Platform[] = [
  { name: "linux-x64", target: "bun-linux-x64", npmPackage: "@oven/bun-linux-x64", executable: "bin/bun", outfile: "kontobro-linux-x64" },
  {
    name: "linux-arm64",
    target: "bun-linux-arm64",
    npmPackage: "@oven/bun-linux-aarch64",
    executable: "bin/bun",
    outfile: "kontobro-linux-arm64",
  },
  {
    name: "windows-x64",
    target: "bun-windows-x64",
    npmPackage: "@oven/bun-windows-x64",
    executable: "bin/bun.exe",
    outfile: "kontobro-windows-x64.exe",
  },
];

const root = join(import.meta.dir, "..");
const cacheDir = join(root, ".cache", "bun-runtimes");

async function run(cmd: string[], cwd = root): Promise<string> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}):\n${err || out}`);
  return out;
}

/** The Bun runtime for a platform, at exactly this Bun's version: installed locally, cached, or from npm. */
async function runtimeFor(p: Platform): Promise<string> {
  const installed = join(root, "node_modules", p.npmPackage, p.executable);
  if (existsSync(installed)) return installed;
  const dir = join(cacheDir, `${p.npmPackage.replace("/", "__")}@${Bun.version}`);
  const exe = join(dir, "package", p.executable);
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  console.log(`fetching ${p.npmPackage}@${Bun.version} from the npm registry…`);
  await run(["npm", "pack", `${p.npmPackage}@${Bun.version}`, "--pack-destination", dir, "--silent"]);
  const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack produced no archive in ${dir}`);
  await run(["tar", "-xzf", tgz], dir);
  if (!existsSync(exe)) throw new Error(`${p.npmPackage} has no ${p.executable}`);
  return exe;
}

/** `bun build --compile` of the agent for one platform; `order`: a profile of the functions a start uses (recordStartOrder). */
async function compile(p: Platform, outfile: string, order: string | null): Promise<void> {
  await run([
    process.execPath,
    "build",
    "--compile",
    "--minify",
    `--target=${p.target}`,
    `--compile-executable-path=${await runtimeFor(p)}`,
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    // Code that runs once at start (migrations, config and schema set-up) stays in the interpreter instead of
    // being compiled by the optimising tiers, whose code and memory then stay resident (issue 16: 8 → 100 took
    // 4 MB more off the idle RSS of kontobro run); the agent and the hosted worker restore the normal policy once
    // they serve (agent/agent.ts), so does the sandbox command. The other commands keep it: their work still
    // reaches the JIT, a hundred times later.
    "--compile-jit-policy=100",
    // Start time and idle memory (issue 16): a module imported with import() is its own chunk, parsed and run only
    // when first imported (nodemailer, PostgreSQL, the sandboxes), and so are the Node built-ins only it imports
    // (node:http, node:tls, node:zlib, … for nodemailer: 4 MB idle RSS); the code is stored as JavaScriptCore
    // bytecode, so no start parses it (about 100 ms of CPU; the binary is 7 MB larger, and a runtime that cannot use
    // the bytecode parses the source that is kept beside it).
    "--splitting",
    "--bytecode",
    "--format=esm",
    ...(order ? [`--bytecode-order=${order}`] : []),
    "--outfile",
    outfile,
    join(root, "agent/main.ts"),
    // The intake writer's thread (new Worker in agent/intake-thread.ts) is a second entry point of the binary.
    join(root, "agent/intake-worker.ts"),
  ]);
}

/**
 * Profile-guided bytecode layout (issue 16): a first linux-x64 build (in `dir`) runs `kontobro run` with one target
 * (the first connector with a bench adapter, pointed at a closed port) from its start until it has idled for two
 * seconds, and records which functions that used (BUN_BYTECODE_ORDER_OUT, written when it exits); every binary is
 * then built with that order, so the bytecode a start needs lies together and a start reads fewer pages of the binary
 * (idle RSS 63.2 → 60.7 MB). Functions the profile does not name still load, from further on in the file. Recorded
 * only where that binary runs (Linux x64); elsewhere the binaries are built without a profile.
 */
async function recordStartOrder(dir: string): Promise<string | null> {
  if (process.platform !== "linux" || process.arch !== "x64") return null;
  const binary = join(dir, "kontobro");
  await compile(PLATFORMS.find((p) => p.name === "linux-x64")!, binary, null);
  const kind = Object.keys(connectorKinds).find((k) => connectorKinds[k]!.bench)!;
  const target = (await connectorKinds[kind]!.bench!()).target("http://127.0.0.1:9");
  const port = await freePort();
  const order = join(dir, "kontobro.order");
  const agent = Bun.spawn([binary, "run", "--config", writeAgentConfig(dir, { port, target })], {
    cwd: dir,
    env: { ...process.env, BUN_BYTECODE_ORDER_OUT: order },
    stdout: "ignore",
    stderr: "ignore",
  });
  try {
    await waitHealthy(`http://127.0.0.1:${port}/healthz`);
    await Bun.sleep(2000);
  } finally {
    agent.kill("SIGTERM");
    await agent.exited;
  }
  if (!existsSync(order)) throw new Error(`kontobro run wrote no bytecode order profile (${order})`);
  return order;
}

export async function build(names: string[] = PLATFORMS.map((p) => p.name)): Promise<string[]> {
  const chosen = PLATFORMS.filter((p) => names.includes(p.name));
  const unknown = names.filter((n) => !PLATFORMS.some((p) => p.name === n));
  if (unknown.length > 0) throw new Error(`unknown platform(s) ${unknown.join(", ")}; use ${PLATFORMS.map((p) => p.name).join(", ")}`);
  mkdirSync(join(root, "dist"), { recursive: true });
  const profiling = mkdtempSync(join(tmpdir(), "kontobro-order-"));
  try {
    const order = await recordStartOrder(profiling);
    const outputs: string[] = [];
    for (const p of chosen) {
      const outfile = join(root, "dist", p.outfile);
      await compile(p, outfile, order);
      outputs.push(outfile);
      console.log(`built ${outfile} (${(Bun.file(outfile).size / 1024 / 1024).toFixed(1)} MB)`);
    }
    return outputs;
  } finally {
    rmSync(profiling, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  build(process.argv.slice(2).length > 0 ? process.argv.slice(2) : undefined).catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
}
