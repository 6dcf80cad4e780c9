// `kontobro run` stopped with SIGTERM the moment its server answers, while the agent is still starting (pulls,
// alerts, retention start after the server listens): it finishes starting, then stops cleanly with exit 0. Before,
// the signal handler came last and such a SIGTERM killed the process mid-start (exit 143; seen in the chaos run,
// which stops the agent as soon as /healthz answers).
import { expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./notify-smtp.ts";

const ROOT = join(import.meta.dir, "..");

async function startAndStopAtFirstAnswer(): Promise<{ code: number; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), "kontobro-sigterm-"));
  const port = await freePort();
  const config = join(dir, "kontobro.toml");
  writeFileSync(config, `[agent]\ndata_dir = "${join(dir, "data")}"\n\n[http]\nhost = "127.0.0.1"\nport = ${port}\n`);
  const proc = Bun.spawn([process.execPath, "agent/main.ts", "run", "--config", config], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
  const stderr = new Response(proc.stderr).text();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error(`the agent did not answer /healthz: ${await stderr}`);
    await Bun.sleep(1);
  }
  proc.kill("SIGTERM");
  return { code: await proc.exited, stderr: await stderr };
}

test("a SIGTERM as soon as the server answers stops the agent cleanly (exit 0), five starts in a row", async () => {
  for (let i = 0; i < 5; i++) {
    const { code, stderr } = await startAndStopAtFirstAnswer();
    expect({ code, received: stderr.includes("SIGTERM received") }).toEqual({ code: 0, received: true });
  }
}, 120_000);
