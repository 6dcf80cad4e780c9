// Kill -9 during intake (issue 16: the writer runs on its own thread with group commit): every event the
// agent acknowledged (202) is in the database after the kill, with its record and its delivery, and every
// request is there whole or not at all. The real agent process, its SQLite file, HTTP over loopback.
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { customerEvent, tempDir, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const TOKEN = "kill-test-token-0123456789";

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

function startAgent(dir: string, port: number) {
  writeFileSync(
    join(dir, "kontobro.toml"),
    `[agent]\ndata_dir = "${dir}/data"\nlog_level = "error"\n[http]\nport = ${port}\napi_token = "${TOKEN}"\n` +
      `[[targets]]\nname = "eco"\nkind = "economic"\nrest_url = "http://127.0.0.1:9"\napp_secret_token = "x"\nagreement_grant_token = "y"\npaused = true\n`,
    { mode: 0o600 },
  );
  return Bun.spawn([process.execPath, MAIN, "run", "--config", join(dir, "kontobro.toml")], {
    cwd: dir,
    stdout: "ignore",
    stderr: "ignore",
  });
}

test("events acknowledged before a kill -9 are all stored; no request is stored in part", async () => {
  const dir = tempDir("kontobro-intake-kill-");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const agent = startAgent(dir, port);
  await waitFor(
    "the agent to answer",
    () =>
      fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
    20_000,
  );

  const acknowledged: string[] = [];
  const requests: string[][] = [];
  let n = 0;
  let killed = false;
  const post = async (events: ReturnType<typeof customerEvent>[]) => {
    requests.push(events.map((e) => e.id));
    const res = await fetch(`${url}/api/v1/events`, {
      method: "POST",
      body: JSON.stringify(events),
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    }).catch(() => null);
    if (res?.status === 202) acknowledged.push(...events.map((e) => e.id));
    else if (res && !killed) throw new Error(`intake answered ${res.status}: ${await res.text()}`);
  };
  // Single events from 48 callers and batches of 200 from 4, so groups mix both; versions of the same
  // customers repeat, so records are updated and deliveries superseded while the kill comes.
  const single = async () => {
    while (!killed) await post([customerEvent(1 + (n++ % 500), {}, `s-${n}`)]);
  };
  const batch = async () => {
    while (!killed) await post(Array.from({ length: 200 }, () => customerEvent(1 + (n++ % 500), {}, `b-${n}`)));
  };
  const load = Promise.all([...Array.from({ length: 48 }, single), ...Array.from({ length: 4 }, batch)]);
  await waitFor("enough acknowledged events", () => acknowledged.length >= 3000, 60_000);
  agent.kill("SIGKILL");
  killed = true;
  await agent.exited;
  await load;

  const db = new Database(join(dir, "data", "kontobro.db"));
  try {
    const stored = new Set((db.query("SELECT event_id AS id FROM events").all() as { id: string }[]).map((r) => r.id));
    const missing = acknowledged.filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
    for (const ids of requests) {
      const present = ids.filter((id) => stored.has(id)).length;
      expect([0, ids.length]).toContain(present);
    }
    // Every stored event has its delivery, and every record its latest event.
    expect(
      db.query("SELECT count(*) AS n FROM events e WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)").get(),
    ).toEqual({
      n: 0,
    });
    expect(
      db
        .query(
          "SELECT count(*) AS n FROM records r WHERE last_event_seq <> (SELECT max(seq) FROM events e WHERE e.entity = r.entity AND e.key = r.key)",
        )
        .get(),
    ).toEqual({ n: 0 });
    expect(db.query("SELECT count(*) AS n FROM deliveries WHERE status = 'pending' GROUP BY entity, key HAVING n > 1").all()).toEqual([]);
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
  } finally {
    db.close();
  }
}, 120_000);
