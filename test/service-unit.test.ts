// `kontobro service`: the systemd unit it writes passes `systemd-analyze verify` (Debian's systemd package;
// the test says so and skips that part when the tool is missing), restarts on failure, runs in its own
// working directory as its own user, and is hardened while its data and export folders stay writable;
// install/status/uninstall into a folder of the test's; the Windows (WinSW) XML.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const kontobro = (args: string[], cwd: string) => {
  const r = Bun.spawnSync([process.execPath, MAIN, ...args], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, KONTOBRO_CONFIG: "" },
  });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};

function setUp() {
  const dir = tempDir("kontobro-service-");
  const config = join(dir, "kontobro.toml");
  writeFileSync(
    config,
    `[agent]\ndata_dir = "./data"\n\n[dispatch]\nshutdown_grace_ms = 20000\n\n[exports]\noutput_dir = "/srv/kontobro exports"\n`,
    { mode: 0o600 },
  );
  return { dir, config };
}

describe("kontobro service (Linux: systemd)", () => {
  test("the unit: restart on failure, its own user and working directory, hardened, data and exports writable; systemd-analyze verify passes", () => {
    const { dir, config } = setUp();
    const r = kontobro(["service", "install", "--config", config, "--print"], dir);
    expect(r.code).toBe(0);
    const unit = r.out;
    console.log(`--- the generated unit ---\n${unit}`);
    const lines = unit.split("\n");
    for (const line of [
      "Restart=on-failure",
      "User=kontobro",
      "Group=kontobro",
      "WorkingDirectory=/var/lib/kontobro",
      "StateDirectory=kontobro",
      `ExecStart=${process.execPath} ${MAIN} run --config ${config}`,
      `Environment=KONTOBRO_CONFIG=${config}`,
      "KillSignal=SIGTERM",
      "TimeoutStopSec=45s",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "PrivateTmp=yes",
      "CapabilityBoundingSet=",
      // The data directory is inside the working directory; the export folder (with a space) is quoted.
      'ReadWritePaths=/var/lib/kontobro "/srv/kontobro exports"',
      "WantedBy=multi-user.target",
    ])
      expect(lines).toContain(line);
    expect(lines.some((l) => /^ProtectHome=(yes|read-only)$/.test(l))).toBe(true);
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m);

    const analyze = Bun.which("systemd-analyze");
    if (!analyze) {
      console.warn("SKIPPED systemd-analyze verify: systemd-analyze is not installed (Debian package systemd; .ci/run installs it)");
      return;
    }
    const file = join(dir, "kontobro.service");
    writeFileSync(file, unit);
    const verify = Bun.spawnSync([analyze, "verify", "--man=no", file], { stdout: "pipe", stderr: "pipe" });
    const said = `${verify.stdout.toString()}${verify.stderr.toString()}`.trim();
    console.log(`systemd-analyze verify: exit ${verify.exitCode}${said ? `\n${said}` : " (no problems)"}`);
    // verify exits 0 on some problems ("Unknown key …, ignoring"): nothing at all may be printed.
    expect(said).toBe("");
    expect(verify.exitCode).toBe(0);
    const security = Bun.spawnSync([analyze, "security", "--offline=yes", file], { stdout: "pipe", stderr: "pipe" });
    const level = /Overall exposure level for kontobro\.service: ([\d.]+)/.exec(security.stdout.toString());
    if (level) {
      console.log(`systemd-analyze security: overall exposure ${level[1]}`);
      expect(Number(level[1])).toBeLessThanOrEqual(4);
    }
  });

  test("install into a folder, status, uninstall", () => {
    const { dir, config } = setUp();
    const units = join(dir, "units");
    const installed = kontobro(
      ["service", "install", "--config", config, "--unit-dir", units, "--no-start", "--binary", process.execPath],
      dir,
    );
    expect(installed.code).toBe(0);
    expect(installed.out).toContain(`wrote ${units}/kontobro.service`);
    expect(installed.out).toContain(`sudo cp ${units}/kontobro.service /etc/systemd/system/`);
    if (Bun.which("systemd-analyze")) expect(installed.out).toContain("systemd-analyze verify: the unit is valid");
    expect(readFileSync(join(units, "kontobro.service"), "utf8")).toContain(`ExecStart=${process.execPath} run --config ${config}`);
    const status = kontobro(["service", "status", "--config", config, "--unit-dir", units], dir);
    expect(status.out).toContain(`unit: ${units}/kontobro.service`);
    expect(status.out).toContain("agent: not answering");
    expect(status.code).toBe(3);
    const removed = kontobro(["service", "uninstall", "--unit-dir", units], dir);
    expect(removed.code).toBe(0);
    expect(existsSync(join(units, "kontobro.service"))).toBe(false);
  });

  test("usage errors exit 2 and say why", () => {
    const { dir, config } = setUp();
    expect(kontobro(["service", "install", "--config", join(dir, "missing.toml"), "--print"], dir)).toMatchObject({
      code: 2,
      err: expect.stringContaining("does not exist"),
    });
    expect(kontobro(["service", "install", "--config", config, "--platform", "bsd"], dir)).toMatchObject({
      code: 2,
      err: expect.stringContaining("--platform must be linux or windows"),
    });
    expect(kontobro(["service", "--help"], dir).out).toMatch(/install[^\n]*\n[^\n]*uninstall[^\n]*\n[^\n]*status/);
  });
});

describe("kontobro service (Windows: WinSW)", () => {
  test("the WinSW XML: the exe, its arguments, restart on failure, a stop timeout; paths with spaces quoted", () => {
    const { dir } = setUp();
    const r = kontobro(
      ["service", "install", "--platform", "windows", "--config", "C:\\Program Files\\kontobro\\kontobro.toml", "--print"],
      dir,
    );
    expect(r.code).toBe(0);
    const xml = r.out;
    console.log(`--- the generated WinSW XML ---\n${xml}`);
    expect(xml).toContain("<id>kontobro</id>");
    expect(xml).toContain("<executable>C:\\Program Files\\kontobro\\kontobro.exe</executable>");
    expect(xml).toContain('<arguments>run --config "C:\\Program Files\\kontobro\\kontobro.toml"</arguments>');
    expect(xml).toContain("<workingdirectory>C:\\Program Files\\kontobro</workingdirectory>");
    expect(xml).toContain('<onfailure action="restart" delay="10 sec"/>');
    expect(xml).toContain("<stoptimeout>35 sec</stoptimeout>");
    expect(xml).toContain("<startmode>Automatic</startmode>");
    // Well formed enough for WinSW: every element closed, in order.
    const stack: string[] = [];
    for (const [, close, name, selfClosing] of xml.replace(/<!--[\s\S]*?-->/g, "").matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
      if (selfClosing) continue;
      if (close) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
  });
});
