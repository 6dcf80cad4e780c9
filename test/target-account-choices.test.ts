// `--forget-links T` (kontobro run, kontobro tenant set) or ?forget_links=T for a target whose account did not change
// forgets nothing, and used to say nothing either: the person was left to think its ids had gone (a setting kontobro
// does not take for another account, or the wrong target named). Now the change says so, as a warning beside the
// others (logged at the agent's start, printed by kontobro tenant set, returned by the admin API); likewise
// --keep-links. Both engines (test/engines.ts); and `kontobro tenant set` as a person runs it, on a real PostgreSQL.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { reconcileAccounts } from "../agent/target-account.ts";
import { workerEngines } from "./engines.ts";
import { tempDir } from "./helpers.ts";
import { writeWorkerConfig } from "./hosted-process.ts";

const { engines, open } = workerEngines("target-account-choices");

const books = (token: string) => ({ name: "books", kind: "economic", settings: { agreement_grant_token: token } });

describe.each(engines)("%s", (engine) => {
  test("forget or keep asked for a target whose account did not change: nothing forgotten, and said so", async () => {
    const { storage } = await open(engine);
    await storage.transaction((tx) => reconcileAccounts(tx, [books("first")]));
    await storage.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('books', 'customer', '1', 'R1', 'h', 0)`,
    );

    const forgot = await storage.transaction((tx) => reconcileAccounts(tx, [books("first")], { forget: ["books"] }));
    expect(forgot).toEqual({
      refused: [],
      unknownChoices: [],
      warnings: [
        "target books: asked to forget its ids of records in its old account, but it points at the same account as before: nothing was forgotten, its 1 id(s) stay. To start afresh in an account, give the target a new name",
      ],
    });
    expect(await storage.all(`SELECT key FROM links`)).toEqual([{ key: "1" }]);

    const kept = await storage.transaction((tx) => reconcileAccounts(tx, [books("first")], { keep: ["books"] }));
    expect(kept.warnings).toEqual([
      "target books: asked to keep its ids as the same account's, but it points at the same account as before: nothing to keep (its 1 id(s) stay as they were)",
    ]);
    // Asked for nothing: nothing said.
    expect((await storage.transaction((tx) => reconcileAccounts(tx, [books("first")]))).warnings).toEqual([]);
    // Another account with its ids forgotten: the warning of what went, as before.
    const changed = await storage.transaction((tx) => reconcileAccounts(tx, [books("second")], { forget: ["books"] }));
    expect(changed.warnings).toEqual([expect.stringContaining("its 1 id(s) of records in the old one were forgotten")]);
    expect(await storage.all(`SELECT key FROM links`)).toEqual([]);
  });

  test("a target new to kontobro named to forget: said so too", async () => {
    const { storage } = await open(engine);
    const checked = await storage.transaction((tx) => reconcileAccounts(tx, [books("first")], { forget: ["books"] }));
    expect(checked.warnings).toEqual([expect.stringContaining("no earlier account of it is known (a new target): nothing was forgotten")]);
  });

  test("a target renamed, started afresh all the same: said what that means, not that nothing was forgotten", async () => {
    const { storage } = await open(engine);
    await storage.transaction((tx) => reconcileAccounts(tx, [books("first")]));
    await storage.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('books', 'customer', '1', 'R1', 'h', 0)`,
    );
    const renamed = { ...books("first"), name: "books-dk" };
    expect((await storage.transaction((tx) => reconcileAccounts(tx, [renamed]))).refused).toEqual([
      { target: "books-dk", changed: [], renamedFrom: "books", held: 1, sameBy: ["kind", "rest_url", "agreement_grant_token"] },
    ]);
    // Before, the refusal's own way on (--forget-links books-dk) was answered "nothing was forgotten … give the target a
    // new name", which it had just been given.
    const afresh = await storage.transaction((tx) => reconcileAccounts(tx, [renamed], { forget: ["books-dk"] }));
    expect(afresh).toEqual({
      refused: [],
      unknownChoices: [],
      warnings: [
        'target books-dk starts afresh, as asked: the 1 id(s) kontobro holds under "books" for the same account are not used, so records already booked there under that name are created again when they are sent',
      ],
    });
    expect(await storage.all(`SELECT target, key FROM links`)).toEqual([{ target: "books", key: "1" }]);
    // Recorded: the next start, asked nothing, starts without a word.
    expect(await storage.transaction((tx) => reconcileAccounts(tx, [renamed]))).toEqual({ refused: [], unknownChoices: [], warnings: [] });
  });
});

describe.each(engines)("%s", (engine) => {
  test("kontobro demo's policy (forgetIfMoved): ids forgotten when the account moved, nothing said when it did not", async () => {
    const { storage } = await open(engine);
    const demo = { forgetIfMoved: ["books"] };
    // A new target, then the same account again: no warning (the demo said one at every start).
    expect(await storage.transaction((tx) => reconcileAccounts(tx, [books("first")], demo))).toEqual({
      refused: [],
      unknownChoices: [],
      warnings: [],
    });
    await storage.run(
      `INSERT INTO links (target, entity, key, remote_id, payload_hash, updated_at) VALUES ('books', 'customer', '1', 'R1', 'h', 0)`,
    );
    expect((await storage.transaction((tx) => reconcileAccounts(tx, [books("first")], demo))).warnings).toEqual([]);
    expect(await storage.all(`SELECT key FROM links`)).toEqual([{ key: "1" }]);
    // Another account (the demo's next sandbox): forgotten, not refused, and said.
    const moved = await storage.transaction((tx) => reconcileAccounts(tx, [books("second")], demo));
    expect(moved.refused).toEqual([]);
    expect(moved.warnings).toEqual([expect.stringContaining("its 1 id(s) of records in the old one were forgotten")]);
    expect(await storage.all(`SELECT key FROM links`)).toEqual([]);
  });
});

describe.each(engines.filter((e) => e === "postgres"))("%s", (engine) => {
  test("kontobro tenant set --forget-links for a target whose account did not change prints that nothing was forgotten", async () => {
    const { server } = await open(engine);
    const dir = tempDir("kontobro-account-choices-");
    const config = writeWorkerConfig(dir, "cli", server!.url, 0);
    const file = join(dir, "initech.toml");
    writeFileSync(
      file,
      `[[targets]]\nname = "books"\nkind = "economic"\napp_secret_token = "demo-app-secret"\nagreement_grant_token = "initech-grant"\n`,
    );
    const kontobro = (...argv: string[]) => {
      const r = Bun.spawnSync([process.execPath, "agent/main.ts", "tenant", ...argv, "--config", config], {
        cwd: resolve(import.meta.dir, ".."),
      });
      return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
    };
    const add = kontobro("add", "initech", "--file", file);
    expect(add.code, add.err).toBe(0);
    const set = kontobro("set", "initech", "--file", file, "--forget-links", "books");
    expect(set.code, set.err).toBe(0);
    expect(set.out).toContain(
      "warning: target books: asked to forget its ids of records in its old account, but it points at the same account as before: nothing was forgotten, its 0 id(s) stay.",
    );
  }, 60_000);
});
