// The intake writer's own connection (agent/intake-worker.ts): durable as the agent's (WAL, synchronous=FULL), and its
// statement journals kept in memory, not spilled to a temporary file at most commits (issue 16). A real SQLite file
// and the real worker thread.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { IntakeThread } from "../agent/intake-thread.ts";
import { tempDir } from "./helpers.ts";

test("the intake writer's connection: WAL, synchronous FULL, foreign keys, temporary storage in memory", async () => {
  const path = join(tempDir("kontobro-intake-connection-"), "k.db");
  openDatabase(path);
  const intake = await IntakeThread.start({ path, busyTimeoutMs: 5000, targets: { customer: ["t1"] } });
  try {
    expect(await intake.pragma("journal_mode")).toEqual([{ journal_mode: "wal" }]);
    // 2 = FULL: an event is answered only after its commit is on the disk.
    expect(await intake.pragma("synchronous")).toEqual([{ synchronous: 2 }]);
    expect(await intake.pragma("foreign_keys")).toEqual([{ foreign_keys: 1 }]);
    // 2 = MEMORY.
    expect(await intake.pragma("temp_store")).toEqual([{ temp_store: 2 }]);
  } finally {
    await intake.close();
  }
});
