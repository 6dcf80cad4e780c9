// What `kontobro service install` writes: a systemd unit on Linux, and on Windows the XML of a WinSW service
// wrapper (a Bun-compiled .exe cannot talk to the Windows service manager itself; see README, "Running it
// as a service"). Pure: every path comes in resolved.

export interface ServiceSpec {
  /** Service name: kontobro → kontobro.service / the Windows service id. */
  name: string;
  /** The command that runs the agent: the binary, or bun and agent/main.ts in a checkout. */
  command: string[];
  /** kontobro.toml, absolute. */
  config: string;
  /** The service's own working directory (relative data_dir and output_dir resolve against it). */
  workingDirectory: string;
  /** Folders the agent writes: the data directory, the exports' output_dir. */
  writablePaths: string[];
  /** Linux: the dedicated system user (and group) that runs it. */
  user: string;
  /** Seconds systemd / WinSW wait after the stop signal before killing (the agent's shutdown grace plus margin). */
  stopTimeoutSeconds: number;
  /** Linux: an optional file with KEY=value lines for the secrets (chmod 600). */
  environmentFile?: string;
}

/** systemd quotes a word with spaces or specials in double quotes, escaping " and \. */
const systemdWord = (w: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`);
/** ReadWritePaths= and the like: each folder once (none inside another listed one), quoted when needed. */
const systemdPaths = (paths: string[]) =>
  [...new Set(paths)]
    .filter((p, _, all) => !all.some((q) => q !== p && p.startsWith(`${q}/`)))
    .map(systemdWord)
    .join(" ");

export function systemdUnit(s: ServiceSpec): string {
  const underHome = [s.config, s.command[0]!, ...s.command.slice(1), s.workingDirectory, ...s.writablePaths].some((p) =>
    /^\/(home|root)\//.test(p),
  );
  const stateDirectory = /^\/var\/lib\/[^/]+$/.test(s.workingDirectory) ? s.workingDirectory.slice("/var/lib/".length) : null;
  return `# ${s.name}.service, written by \`kontobro service install\`. Re-run that command after moving the binary or the
# configuration; \`kontobro service uninstall\` removes it (the data directory and kontobro.toml stay).
[Unit]
Description=kontobro sync agent (PSA to accounting systems)
After=network-online.target
Wants=network-online.target
# Restarts are limited to 20 in 10 minutes; then systemd gives up until \`systemctl reset-failed\`.
StartLimitIntervalSec=10min
StartLimitBurst=20

[Service]
Type=simple
User=${s.user}
Group=${s.user}
ExecStart=${s.command.map(systemdWord).join(" ")} run --config ${systemdWord(s.config)}
Environment=KONTOBRO_CONFIG=${systemdWord(s.config)}
${s.environmentFile ? `# Secrets: the \${VARIABLES} kontobro.toml names (KONTOBRO_API_TOKEN=…), one KEY=value a line; chmod 600.\nEnvironmentFile=-${systemdWord(s.environmentFile)}\n` : ""}WorkingDirectory=${systemdWord(s.workingDirectory)}
${stateDirectory ? `# Created (owned by ${s.user}, mode 0750) before the start.\nStateDirectory=${stateDirectory}\nStateDirectoryMode=0750\n` : ""}# A crash, a kill or a failed start is restarted; a clean stop (systemctl stop) is not.
Restart=on-failure
RestartSec=5s
# SIGTERM lets pushes in flight finish ([dispatch] shutdown_grace_ms) before the database is closed.
KillSignal=SIGTERM
TimeoutStopSec=${s.stopTimeoutSeconds}s
LimitNOFILE=65536

# Hardening: the whole file system is read-only for the agent except the folders it writes.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${systemdPaths([s.workingDirectory, ...s.writablePaths])}
${underHome ? "# A path above is under /home or /root: home directories stay readable (not writable).\nProtectHome=read-only" : "ProtectHome=yes"}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
SystemCallArchitectures=native
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077
# Not set on purpose: MemoryDenyWriteExecute (the JavaScript engine's JIT needs writable code pages) and
# SystemCallFilter (Bun's runtime uses system calls outside @system-service on some kernels).

[Install]
WantedBy=multi-user.target
`;
}

/** XML text; in an attribute also the double quote. */
const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const attr = (s: string) => xml(s).replace(/"/g, "&quot;");
/** A Windows command-line argument, quoted when it holds spaces. */
const winArg = (a: string) => (/[\s"]/.test(a) ? `"${a.replace(/"/g, '\\"')}"` : a);

/**
 * The WinSW (v2.12+/v3) service definition: WinSW is the Windows service (it answers the service manager)
 * and runs kontobro as its child; a stop sends Ctrl+C, which kontobro handles like SIGTERM.
 */
export function winswXml(s: ServiceSpec): string {
  const [executable, ...pre] = s.command;
  return `<!-- ${s.name}-service.xml, written by \`kontobro service install\`. Beside it: ${s.name}-service.exe (WinSW, renamed).
     "${s.name}-service.exe install" registers the service, "start" starts it; \`kontobro service uninstall\` removes it. -->
<service>
  <id>${xml(s.name)}</id>
  <name>kontobro sync agent (${xml(s.name)})</name>
  <description>kontobro: sends PSA events to the accounting systems and pulls expenses and payments back.</description>
  <executable>${xml(executable!)}</executable>
  <arguments>${xml([...pre, "run", "--config", s.config].map(winArg).join(" "))}</arguments>
  <workingdirectory>${xml(s.workingDirectory)}</workingdirectory>
  <env name="KONTOBRO_CONFIG" value="${attr(s.config)}"/>
  <startmode>Automatic</startmode>
  <delayedAutoStart>true</delayedAutoStart>
  <!-- A crash is restarted after 10 s, then 30 s, then every minute; the count resets after a day. -->
  <onfailure action="restart" delay="10 sec"/>
  <onfailure action="restart" delay="30 sec"/>
  <onfailure action="restart" delay="60 sec"/>
  <resetfailure>1 day</resetfailure>
  <!-- Stop: Ctrl+C first (pushes in flight finish), then kill after the timeout. -->
  <stoptimeout>${s.stopTimeoutSeconds} sec</stoptimeout>
  <log mode="roll-by-size">
    <sizeThreshold>10240</sizeThreshold>
    <keepFiles>8</keepFiles>
  </log>
</service>
`;
}
