// The command line, run as a user would (bun agent/main.ts …) in a temporary folder.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, projectEvent, tempDir } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
let sandbox: Awaited<ReturnType<typeof startEconomicSandbox>>;
let cwd: string;

async function cli(args: string[], stdin?: string, env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { out, err, code };
}

beforeAll(async () => {
  sandbox = await startEconomicSandbox({ port: 0 });
  cwd = tempDir("kontobro-cli-");
  writeFileSync(
    join(cwd, "kontobro.toml"),
    `[[targets]]\nname = "eco"\nkind = "economic"\nrest_url = "${sandbox.url}"\nprojects_url = "${sandbox.projectsUrl}"\napp_secret_token = "\${APP}"\nagreement_grant_token = "demo-agreement-grant"\n`,
    { mode: 0o600 },
  );
});
afterAll(async () => {
  await sandbox.stop();
});

describe("kontobro CLI", () => {
  test("version and help", async () => {
    expect((await cli(["version"])).out).toMatch(/^kontobro \d+\.\d+\.\d+/);
    const help = await cli(["--help"]);
    for (const cmd of ["run", "demo", "check", "status", "enqueue", "retry", "version"]) expect(help.out).toContain(`  ${cmd}`);
    expect((await cli(["frobnicate"])).code).toBe(2);
  });

  test("a config problem exits 2 with one line naming the key", async () => {
    const r = await cli(["check"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("targets[0].app_secret_token: environment variable APP is not set");
  });

  test("check passes against the sandbox", async () => {
    const r = await cli(["check"], undefined, { APP: "demo-app-secret" });
    expect(r.out).toContain("All checks passed.");
    expect(r.code).toBe(0);
    const wrong = await cli(["check"], undefined, { APP: "wrong-secret" });
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain("FAIL tokens");
  });

  test("enqueue from a file and from standard input, then status and retry", async () => {
    writeFileSync(join(cwd, "events.json"), JSON.stringify([customerEvent(5, {}, "e1")]));
    const fromFile = await cli(["enqueue", "events.json"], undefined, { APP: "x" });
    expect(fromFile.out).toContain("stored 1 event(s), 0 already known");
    const again = await cli(["enqueue", "-"], JSON.stringify([customerEvent(5, {}, "e1"), projectEvent(6, 5, {}, "e2")]), { APP: "x" });
    expect(again.out).toContain("stored 1 event(s), 1 already known");
    const bad = await cli(["enqueue", "-"], JSON.stringify({ id: "x", type: "customer.upserted", data: { number: 1 } }), { APP: "x" });
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("data.name");
    const status = await cli(["status", "--json"], undefined, { APP: "x" });
    expect(JSON.parse(status.out).counts).toEqual([{ target: "eco", status: "pending", n: 2 }]);
    expect(JSON.parse(status.out).inbox).toEqual([]);
    expect((await cli(["retry", "1"], undefined, { APP: "x" })).out).toContain("delivery 1 will be retried");
    expect((await cli(["retry", "99"], undefined, { APP: "x" })).code).toBe(1);
    expect((await cli(["retry", "--all", "--target", "eco"], undefined, { APP: "x" })).out).toContain("0 deliveries will be retried");
    const typo = await cli(["retry", "--all", "--target", "ecoo"], undefined, { APP: "x" });
    expect(typo.code).toBe(1);
    expect(typo.err).toContain('No delivery has gone to a target named "ecoo"; nothing was retried.');
    expect(typo.err).toContain("configured: eco");
  });

  test("run without any kontobro.toml explains what to do", async () => {
    const empty = tempDir("kontobro-cli-empty-");
    const proc = Bun.spawn([process.execPath, MAIN, "run"], {
      cwd: empty,
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, KONTOBRO_CONFIG: "" },
    });
    expect(await proc.exited).toBe(2);
    expect(await new Response(proc.stderr).text()).toContain("kontobro.example.toml");
  });
});
