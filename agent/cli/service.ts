// `kontobro service install | uninstall | status`: kontobro as a system service. Linux: a hardened systemd
// unit run by a dedicated user, restarted on failure, writing only its data directory. Windows: a WinSW
// service wrapper (a Bun-compiled .exe cannot answer the service manager itself). The files are made by
// service-units.ts; this file finds the paths, checks, installs and reports.
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, posix, resolve, win32 } from "node:path";
import { loadConfigFile, validateConfig } from "../config.ts";
import { CONFIG_OPTION, defineCommand, defineGroup } from "./command.ts";
import { listed } from "./listing.ts";
import { systemdUnit, winswXml, type ServiceSpec } from "./service-units.ts";

const SYSTEM_UNIT_DIR = "/etc/systemd/system";

const COMMON = {
  ...CONFIG_OPTION,
  name: { type: "string", value: "NAME", help: "the service's name (default kontobro)" },
  platform: { type: "string", value: "OS", help: "linux (systemd) or windows (WinSW); default: this machine's" },
  "unit-dir": {
    type: "string",
    value: "DIR",
    help: `where the unit (Linux) or the WinSW XML (Windows) goes (default ${SYSTEM_UNIT_DIR}, or beside kontobro.exe); another folder only writes the file`,
  },
} as const;

type Platform = "linux" | "windows";

function platformOf(given: string | undefined): Platform {
  const p = given ?? (process.platform === "win32" ? "windows" : "linux");
  if (p !== "linux" && p !== "windows") throw new UsageError(`--platform must be linux or windows, not "${p}"`);
  return p;
}

class UsageError extends Error {}

/** A UsageError (a bad option, no kontobro.toml) exits 2 with its message, as every command's usage errors do. */
function guarded<T extends unknown[]>(path: string, fn: (...a: T) => number | Promise<number>): (...a: T) => Promise<number> {
  return async (...a: T) => {
    try {
      return await fn(...a);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      console.error(`${path}: ${e.message} (see ${path} --help)`);
      return 2;
    }
  };
}

/** This program as a service runs it: the compiled binary itself, or bun with agent/main.ts in a checkout. */
export function agentCommand(): string[] {
  const compiled = import.meta.path.includes("$bunfs") || import.meta.path.includes("~BUN");
  return compiled ? [process.execPath] : [process.execPath, resolve(import.meta.dir, "../main.ts")];
}

/**
 * Everything the unit needs, from kontobro.toml and the options; relative paths resolve against the working
 * directory. For the other platform (the WinSW XML written on Linux) the paths are taken as given, and
 * kontobro.toml is not read (its defaults apply).
 */
export function serviceSpec(o: {
  config?: string;
  name?: string;
  user?: string;
  workingDirectory?: string;
  binary?: string;
  platform: Platform;
  command?: string[];
}): ServiceSpec {
  const cross = (o.platform === "windows") !== (process.platform === "win32");
  const P = o.platform === "windows" ? win32 : posix;
  const given = o.config || process.env.KONTOBRO_CONFIG || "kontobro.toml";
  let config: string;
  let c = validateConfig({}, {}).config;
  if (cross) {
    if (!P.isAbsolute(given))
      throw new UsageError(
        `for ${o.platform}, --config must be the absolute path kontobro.toml will have there (e.g. ${o.platform === "windows" ? "C:\\kontobro\\kontobro.toml" : "/etc/kontobro/kontobro.toml"})`,
      );
    config = given;
  } else {
    config = resolve(given);
    if (!existsSync(config))
      throw new UsageError(
        `${config} does not exist; write kontobro.toml first (copy config/kontobro.example.toml) and pass --config FILE`,
      );
    c = loadConfigFile(config).config;
  }
  const name = o.name ?? "kontobro";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) throw new UsageError(`--name may hold letters, digits, _ . - only, not "${name}"`);
  const command =
    o.command ??
    (o.binary
      ? [cross ? o.binary : resolve(o.binary)]
      : cross
        ? [o.platform === "windows" ? P.join(P.dirname(config), "kontobro.exe") : "/usr/local/bin/kontobro"]
        : agentCommand());
  const workingDirectory = o.workingDirectory
    ? cross
      ? o.workingDirectory
      : resolve(o.workingDirectory)
    : o.platform === "linux"
      ? `/var/lib/${name}`
      : P.dirname(command[0]!);
  const inWd = (p: string) => (P.isAbsolute(p) ? p : P.join(workingDirectory, p));
  const writable = [inWd(c.agent.data_dir), ...(c.exports.output_dir ? [inWd(c.exports.output_dir)] : [])];
  return {
    name,
    command,
    config,
    workingDirectory,
    writablePaths: writable,
    user: o.user ?? "kontobro",
    stopTimeoutSeconds: Math.ceil((c.dispatch.shutdown_grace_ms + c.pulls.shutdown_grace_ms) / 1000) + 15,
    environmentFile: o.platform === "linux" ? P.join(P.dirname(config), `${name}.env`) : undefined,
  };
}

const run = (cmd: string[], quiet = false) => {
  const r = Bun.spawnSync(cmd, { stdout: quiet ? "pipe" : "inherit", stderr: quiet ? "pipe" : "inherit" });
  return { ok: r.exitCode === 0, out: quiet ? `${r.stdout?.toString() ?? ""}${r.stderr?.toString() ?? ""}`.trim() : "" };
};

/** `systemd-analyze verify` of the unit, when the tool is there: the problems it prints, or null if it cannot run. */
export function verifyUnit(unitText: string, name: string): string[] | null {
  const tool = Bun.which("systemd-analyze");
  if (!tool) return null;
  const dir = join(tmpdir(), `kontobro-unit-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(join(dir, `${name}.service`), unitText);
    const r = Bun.spawnSync([tool, "verify", "--man=no", join(dir, `${name}.service`)], { stdout: "pipe", stderr: "pipe" });
    const out = `${r.stdout.toString()}${r.stderr.toString()}`
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
    return r.exitCode === 0 && out.length === 0 ? [] : out.length > 0 ? out : [`systemd-analyze verify exited ${r.exitCode}`];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const isRoot = () => process.getuid?.() === 0;

/** The dedicated user, the working directory and the data directory, and kontobro.toml readable by the user. */
function prepareLinux(s: ServiceSpec): void {
  if (!run(["id", "-u", s.user], true).ok) {
    if (
      !run([
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        s.workingDirectory,
        "--shell",
        "/usr/sbin/nologin",
        s.user,
      ]).ok
    ) {
      throw new Error(`could not create the system user ${s.user}; create it yourself (useradd --system ${s.user}) and run this again`);
    }
    console.log(`created the system user ${s.user}`);
  }
  for (const dir of [s.workingDirectory, ...s.writablePaths]) {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    run(["chown", "-R", `${s.user}:${s.user}`, dir]);
  }
  // kontobro.toml holds secrets (chmod 600, root's): the service's group may read it, nobody else.
  run(["chgrp", s.user, s.config]);
  chmodSync(s.config, 0o640);
  console.log(`${s.config}: owner root, group ${s.user}, mode 640 (the service reads it, other users do not)`);
}

const install = defineCommand({
  name: "install",
  summary: "register kontobro as a service (systemd on Linux, WinSW on Windows) and start it",
  description:
    "Linux: writes a hardened systemd unit (dedicated user, restart on failure, only the data directory\n" +
    "writable), checks it with systemd-analyze verify, creates the user, enables and starts it; needs root.\n" +
    "Windows: writes the WinSW service XML beside kontobro.exe and, if kontobro-service.exe (WinSW) is there,\n" +
    "registers and starts the service. --print shows the file and changes nothing.",
  options: {
    ...COMMON,
    user: { type: "string", value: "USER", help: "Linux: the system user that runs it (default kontobro; created if missing)" },
    "working-directory": {
      type: "string",
      value: "DIR",
      help: "the service's working directory (default /var/lib/NAME on Linux, the .exe's folder on Windows)",
    },
    binary: { type: "string", value: "PATH", help: "the kontobro executable the service runs (default: this one)" },
    print: { type: "boolean", help: "print the unit or XML and change nothing" },
    "no-start": { type: "boolean", help: "install and enable, but do not start it now" },
  },
  examples: [
    ["sudo kontobro service install --config /etc/kontobro/kontobro.toml", "install, enable and start"],
    ["kontobro service install --print", "show the unit it would write"],
    ["kontobro service install --platform windows --config C:\\kontobro\\kontobro.toml --print", "the WinSW XML, written on Linux"],
  ],
  run: guarded("kontobro service install", ({ values }) => {
    const platform = platformOf(values.platform);
    const s = serviceSpec({
      config: values.config,
      name: values.name,
      user: values.user,
      workingDirectory: values["working-directory"],
      binary: values.binary,
      platform,
    });
    const text = platform === "linux" ? systemdUnit(s) : winswXml(s);
    if (values.print) {
      process.stdout.write(text);
      return 0;
    }
    return platform === "linux"
      ? installLinux(s, text, values["unit-dir"], !values["no-start"])
      : installWindows(s, text, values["unit-dir"], !values["no-start"]);
  }),
});

function installLinux(s: ServiceSpec, text: string, unitDir = SYSTEM_UNIT_DIR, start: boolean): number {
  const system = resolve(unitDir) === SYSTEM_UNIT_DIR;
  if (system && !isRoot()) {
    console.error("kontobro service install: writing to /etc/systemd/system needs root: run it with sudo (or --print, or --unit-dir DIR)");
    return 1;
  }
  const problems = verifyUnit(text, s.name);
  if (problems === null) console.log("systemd-analyze is not installed: the unit was not verified (Debian: apt-get install systemd)");
  else if (problems.length > 0) {
    console.error(
      `kontobro service install: systemd-analyze verify found problems in the unit:\n${problems.map((p) => `  ${p}`).join("\n")}`,
    );
    return 1;
  } else console.log("systemd-analyze verify: the unit is valid");
  const file = join(unitDir, `${s.name}.service`);
  if (system) prepareLinux(s);
  mkdirSync(unitDir, { recursive: true });
  writeFileSync(file, text, { mode: 0o644 });
  console.log(`wrote ${file}`);
  if (!system) {
    console.log(`to use it: sudo cp ${file} ${SYSTEM_UNIT_DIR}/ && sudo systemctl daemon-reload && sudo systemctl enable --now ${s.name}`);
    return 0;
  }
  if (!run(["systemctl", "daemon-reload"]).ok) return 1;
  if (!run(["systemctl", "enable", ...(start ? ["--now"] : []), `${s.name}.service`]).ok) return 1;
  console.log(
    `${s.name} is ${start ? "enabled and started" : "enabled (start it with: systemctl start " + s.name + ")"}. Logs: journalctl -u ${s.name} -f. State: kontobro service status`,
  );
  return 0;
}

/** The WinSW executable beside the XML: NAME-service.exe. */
const wrapperOf = (dir: string, name: string) => join(dir, `${name}-service.exe`);

function installWindows(s: ServiceSpec, text: string, dir = dirname(s.command[0]!), start: boolean): number {
  const file = join(dir, `${s.name}-service.xml`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, text);
  console.log(`wrote ${file}`);
  const wrapper = wrapperOf(dir, s.name);
  if (process.platform !== "win32" || !existsSync(wrapper)) {
    console.log(
      [
        `next: put WinSW (WinSW-x64.exe from its releases, v2.12 or later) beside it as ${basename(wrapper)}, then in an administrator prompt:`,
        `  ${wrapper} install`,
        `  ${wrapper} start`,
        "(kontobro service install does both itself when the wrapper is there.)",
      ].join("\n"),
    );
    return 0;
  }
  if (!run([wrapper, "install"]).ok) return 1;
  if (start && !run([wrapper, "start"]).ok) return 1;
  console.log(`the Windows service ${s.name} is installed${start ? " and started" : ""}; logs: ${dir}\\${s.name}-service.out.log`);
  return 0;
}

const uninstall = defineCommand({
  name: "uninstall",
  summary: "stop the service and remove it (the data directory and kontobro.toml stay)",
  options: { name: COMMON.name, platform: COMMON.platform, "unit-dir": COMMON["unit-dir"] },
  examples: ["sudo kontobro service uninstall"],
  run: guarded("kontobro service uninstall", ({ values }) => {
    const platform = platformOf(values.platform);
    const name = values.name ?? "kontobro";
    if (platform === "windows") {
      const dir = values["unit-dir"] ?? dirname(agentCommand()[0]!);
      const wrapper = wrapperOf(dir, name);
      if (process.platform === "win32" && existsSync(wrapper)) {
        run([wrapper, "stop"]);
        if (!run([wrapper, "uninstall"]).ok) return 1;
      }
      rmSync(join(dir, `${name}-service.xml`), { force: true });
      console.log(`removed the service ${name}; the data directory and kontobro.toml are kept`);
      return 0;
    }
    const unitDir = values["unit-dir"] ?? SYSTEM_UNIT_DIR;
    const system = resolve(unitDir) === SYSTEM_UNIT_DIR;
    if (system && !isRoot()) {
      console.error("kontobro service uninstall: needs root: run it with sudo");
      return 1;
    }
    const file = join(unitDir, `${name}.service`);
    if (!existsSync(file)) {
      console.log(`${file} does not exist: nothing to remove`);
      return 0;
    }
    if (system) run(["systemctl", "disable", "--now", `${name}.service`]);
    rmSync(file);
    if (system) run(["systemctl", "daemon-reload"]);
    console.log(`removed ${file}; the data directory, the user and kontobro.toml are kept`);
    return 0;
  }),
});

const status = defineCommand({
  name: "status",
  summary: "is the service installed, running, and ready (/readyz)",
  options: { ...CONFIG_OPTION, name: COMMON.name, platform: COMMON.platform, "unit-dir": COMMON["unit-dir"] },
  examples: ["kontobro service status"],
  run: guarded("kontobro service status", async ({ values }) => {
    const platform = platformOf(values.platform);
    const name = values.name ?? "kontobro";
    let running = false;
    if (platform === "windows") {
      const dir = values["unit-dir"] ?? dirname(agentCommand()[0]!);
      const wrapper = wrapperOf(dir, name);
      const xmlFile = join(dir, `${name}-service.xml`);
      console.log(`service definition: ${existsSync(xmlFile) ? xmlFile : "not installed"}`);
      if (process.platform === "win32" && existsSync(wrapper)) {
        const r = run([wrapper, "status"], true);
        console.log(`state: ${r.out}`);
        running = /started|running/i.test(r.out);
      }
    } else {
      const file = join(values["unit-dir"] ?? SYSTEM_UNIT_DIR, `${name}.service`);
      console.log(
        `unit: ${existsSync(file) ? `${file} (${statSync(file).size} bytes)` : `${file} not installed (sudo kontobro service install)`}`,
      );
      if (Bun.which("systemctl")) {
        const show = run(
          [
            "systemctl",
            "show",
            `${name}.service`,
            "--property=LoadState,ActiveState,SubState,UnitFileState,MainPID,NRestarts,ActiveEnterTimestamp",
          ],
          true,
        );
        const props = Object.fromEntries(show.out.split("\n").map((l) => l.split("=", 2) as [string, string]));
        console.log(
          show.ok
            ? `systemd: ${props.ActiveState ?? "?"} (${props.SubState ?? "?"}), ${props.UnitFileState || "not enabled"}, pid ${props.MainPID ?? "-"}, restarts ${props.NRestarts ?? 0}${props.ActiveEnterTimestamp ? `, since ${props.ActiveEnterTimestamp}` : ""}`
            : `systemd: not reachable here (${show.out.split("\n")[0]})`,
        );
        running = props.ActiveState === "active";
      }
    }
    // The agent itself: its readiness over HTTP, as a load balancer would ask.
    try {
      const { config } = loadConfigFile(resolve(values.config || process.env.KONTOBRO_CONFIG || "kontobro.toml"));
      const host = config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host;
      const res = await fetch(`http://${host}:${config.http.port}/readyz`, {
        signal: AbortSignal.timeout(3000),
        proxy: false,
      } as RequestInit);
      const body = (await res.json()) as { status: string; checks: { name: string; ok: boolean; message: string }[] };
      console.log(`agent: ${body.status} (http://${host}:${config.http.port}/readyz)`);
      for (const c of body.checks.filter((c) => !c.ok)) console.log(`  not ok: ${c.name}: ${c.message}`);
      running = true;
    } catch (e) {
      console.log(`agent: not answering (${(e as Error).message.split("\n")[0]})`);
    }
    return running ? 0 : 3;
  }),
});

export const service = defineGroup({
  ...listed("service"),
  description:
    "Linux: a systemd unit (restarted on failure, run by a dedicated user, hardened; only the data directory\n" +
    'is writable). Windows: a WinSW service wrapper. See README.md, "Running it as a service".',
  subcommands: [install, uninstall, status],
  examples: ["sudo kontobro service install --config /etc/kontobro/kontobro.toml", "kontobro service status"],
});
