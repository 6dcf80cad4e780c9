// A real PostgreSQL server for tests: Debian's `postgresql` package (.ci/run installs it), a fresh cluster in
// a temporary directory (initdb), started with pg_ctl on a free loopback port, stopped and deleted by stop().
// PostgreSQL refuses to run as root: as root, the server runs as the package's unprivileged `postgres` user.
// Tests call pgUnavailable() first and skip, saying why, only when the server truly cannot be run here.
import { SQL } from "bun";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PgServer {
  /**
   * postgres:// URL of a database created for the caller, as role `kontobro`: it owns the database but is no
   * superuser, so row-level security holds for it as it does in production.
   */
  url: string;
  /** The same database as the superuser `postgres` (creating roles, reading across tenants). */
  adminUrl: string;
  port: number;
  /** The server's main process (the postmaster; every backend is its child): for CPU figures. */
  pid(): number;
  /** Creates another empty database (owned by `kontobro`) on the same server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Restarts the server (fast shutdown, same settings and data): clients lose their connections. */
  restart(): void;
  /** Stops the server (fast shutdown) and deletes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PgServerOptions {
  /** Name of the database `url` points at. */
  database?: string;
  /**
   * Keep fsync on. Off by default: a test kills workers, never the server, so its commits need not survive a
   * power cut, and fsync on a shared CI disk only makes tests slower. Benchmarks pass true.
   */
  durable?: boolean;
}

const SERVER_USER = "postgres";
const SUPERUSER = "postgres";
const ROLE = "kontobro";
const INSTALL_HINT = "install Debian's postgresql package (apt-get install postgresql; .ci/run does this)";

/** The directory holding initdb and pg_ctl: the newest /usr/lib/postgresql/<version>/bin, else the PATH. */
export function findPgBin(): string | null {
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, "bin/initdb")) && existsSync(join(root, v, "bin/pg_ctl")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], "bin");
  }
  const initdb = Bun.which("initdb");
  return initdb && Bun.which("pg_ctl") ? initdb.slice(0, -"/initdb".length) : null;
}

const isRoot = () => process.getuid?.() === 0;

/** uid and gid of a local user, from /etc/passwd; null if there is none. */
function userIds(name: string): { uid: number; gid: number } | null {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  if (!line) return null;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** Why a PostgreSQL server cannot be started here, or null when it can. */
export function pgUnavailable(): string | null {
  if (!findPgBin()) return `PostgreSQL is not installed: ${INSTALL_HINT}`;
  if (isRoot()) {
    if (!existsSync("/etc/passwd") || !userIds(SERVER_USER))
      return `running as root and there is no "${SERVER_USER}" user to run PostgreSQL as (PostgreSQL refuses root): ${INSTALL_HINT}, which creates it`;
    if (!Bun.which("runuser") && !Bun.which("su"))
      return "running as root and neither runuser nor su is there to start PostgreSQL as an unprivileged user";
  }
  return null;
}

/** argv run as the server's user: ourselves, or `postgres` when we are root. */
function asServerUser(argv: string[]): string[] {
  if (!isRoot()) return argv;
  if (Bun.which("runuser")) return ["runuser", "-u", SERVER_USER, "--", ...argv];
  // The paths are our own temporary ones (no quotes in them); quote anyway for the shell su starts.
  return ["su", SERVER_USER, "-s", "/bin/sh", "-c", argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ")];
}

function run(argv: string[], what: string): void {
  const res = Bun.spawnSync(asServerUser(argv), { stdout: "pipe", stderr: "pipe" });
  if (res.exitCode !== 0) {
    throw new Error(`${what} failed (exit ${res.exitCode}): ${res.stderr.toString().trim() || res.stdout.toString().trim()}`);
  }
}

/** A loopback port nobody listens on right now (the server binds it a moment later; start retries on a clash). */
function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Starts a fresh PostgreSQL server for a test. Throws (with the server's log) if it does not come up. */
export async function startPgServer(options: PgServerOptions = {}): Promise<PgServer> {
  const reason = pgUnavailable();
  if (reason) throw new Error(`cannot start PostgreSQL: ${reason}`);
  const bin = findPgBin()!;
  // Short path: the Unix socket's path must stay under ~100 characters.
  const dir = mkdtempSync(join(tmpdir(), "kb-pg-"));
  const data = join(dir, "data");
  const logFile = join(dir, "server.log");
  if (isRoot()) {
    const ids = userIds(SERVER_USER)!;
    chownSync(dir, ids.uid, ids.gid);
  }
  let started = false;
  const stopNow = () => {
    if (started)
      Bun.spawnSync(asServerUser([join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]), {
        stdout: "ignore",
        stderr: "ignore",
      });
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that ends without calling stop() (a failed beforeAll, Ctrl-C) leaves no server behind.
  process.once("exit", stopNow);
  try {
    run(
      [join(bin, "initdb"), "-D", data, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
      "initdb",
    );
    let port = 0;
    for (let attempt = 1; !started; attempt++) {
      port = freePort();
      const settings = [
        `-p ${port}`,
        `-k ${dir}`,
        "-c listen_addresses=127.0.0.1",
        "-c max_connections=200",
        ...(options.durable ? [] : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
      ];
      try {
        run([join(bin, "pg_ctl"), "-D", data, "-l", logFile, "-w", "-t", "60", "-o", settings.join(" "), "start"], "pg_ctl start");
        started = true;
      } catch (e) {
        const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
        if (attempt < 3 && /could not bind|address already in use/i.test(log)) continue;
        throw new Error(`${e instanceof Error ? e.message : e}\nserver log (${logFile}):\n${log.slice(-4000)}`);
      }
    }
    const urlOf = (db: string, role = ROLE) => `postgres://${role}@127.0.0.1:${port}/${db}`;
    const admin = new SQL({ url: urlOf("postgres", SUPERUSER), max: 1 });
    try {
      await admin.unsafe(`CREATE ROLE ${ROLE} LOGIN NOSUPERUSER NOBYPASSRLS`);
    } finally {
      await admin.close();
    }
    const createDatabase = async (name: string) => {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name "${name}": use lower-case letters, digits and _`);
      const admin = new SQL({ url: urlOf("postgres", SUPERUSER), max: 1 });
      try {
        await admin.unsafe(`CREATE DATABASE ${name} OWNER ${ROLE}`);
      } finally {
        await admin.close();
      }
      return urlOf(name);
    };
    const database = options.database ?? "kontobro_test";
    const url = await createDatabase(database);
    return {
      url,
      adminUrl: urlOf(database, SUPERUSER),
      port,
      // postmaster.pid's first line; read each time, as a restart starts another.
      pid: () => Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]),
      createDatabase,
      restart: () => run([join(bin, "pg_ctl"), "-D", data, "-l", logFile, "-m", "fast", "-w", "-t", "60", "restart"], "pg_ctl restart"),
      stop: async () => {
        if (started) run([join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"], "pg_ctl stop");
        started = false;
        process.removeListener("exit", stopNow);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    stopNow();
    process.removeListener("exit", stopNow);
    throw e;
  }
}
