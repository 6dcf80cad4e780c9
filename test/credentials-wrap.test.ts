// The credentials watch's connector wrapper (agent/notify/credentials.ts) hands out each method once, not a new bound
// function or closure on every read (a push reads supports, validate and push: issue 16, goal 3), and still keeps the
// state: a 401 after successes stores the refusal, the next success drops it. Real SQLite file.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Connector } from "../connectors/contract.ts";
import { TargetError } from "../connectors/http.ts";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { CredentialsWatch, listRefusedCredentials } from "../agent/notify/credentials.ts";
import { createLogger } from "../agent/log.ts";

const dir = mkdtempSync(join(tmpdir(), "kontobro-credentials-wrap-"));
const db = openDatabase(join(dir, "kontobro.db"));
afterAll(() => {
  db.$client.close();
  rmSync(dir, { recursive: true, force: true });
});

test("each method is handed out once; a 401 stores the refusal (logged with its hint), the next success drops it", async () => {
  let refuse = false;
  const connector = {
    kind: "stub",
    supports: () => true,
    validate: () => [],
    async push() {
      if (refuse) throw new TargetError("permanent", { code: "http_401", message: "no", hint: "new token", status: 401 });
      return { remoteId: "1" };
    },
  } as unknown as Connector;
  const storage = sqliteRunner(db.$client);
  const lines: { msg: string; message?: string; hint?: string }[] = [];
  const log = createLogger("warn", {}, (l) => lines.push(JSON.parse(l)));
  const watched = new CredentialsWatch(storage, log).wrap(new Map([["eco", connector]]), () => ({ token: "t" })).get("eco")!;
  expect(watched.push).toBe(watched.push);
  expect(watched.supports).toBe(watched.supports);
  expect(watched.supports("customer")).toBe(true);
  const ctx = { link: null, uncertain: false, idempotencyKey: "k", record: new Map() } as never;
  await watched.push("customer", {}, ctx);
  await watched.push("customer", {}, ctx);
  expect(await listRefusedCredentials(storage)).toEqual([]);
  refuse = true;
  await expect(watched.push("customer", {}, ctx)).rejects.toThrow("no");
  expect((await listRefusedCredentials(storage)).map((r) => [r.target, r.message])).toEqual([["eco", "no"]]);
  // The log line says what to do, as the alert does.
  expect(lines.find((l) => l.msg === "the target refused kontobro's credentials")).toMatchObject({ message: "no", hint: "new token" });
  refuse = false;
  await watched.push("customer", {}, ctx);
  expect(await listRefusedCredentials(storage)).toEqual([]);
});
