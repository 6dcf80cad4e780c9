// The one worker loop behind the dispatcher and the PSA webhook deliverer.
import { expect, test } from "bun:test";
import { WorkerLoop } from "../agent/worker-loop.ts";

test("runs a step at once, sleeps as told, wakes on notify, keeps going after an error, stops", async () => {
  const seen: string[] = [];
  let round = 0;
  const loop = new WorkerLoop({
    step: async () => {
      round += 1;
      seen.push(`step ${round}`);
      if (round === 2) throw new Error("busy");
      return 60_000;
    },
    onError: (e) => {
      seen.push(`error ${(e as Error).message}`);
      return 0;
    },
    onCrash: () => seen.push("crash"),
  });
  loop.start();
  loop.start(); // a second start does nothing
  await Bun.sleep(10);
  expect(seen).toEqual(["step 1"]);
  loop.notify(); // cuts the minute's sleep short: step 2 throws, the loop waits 0 ms and runs step 3
  await Bun.sleep(20);
  expect(seen).toEqual(["step 1", "step 2", "error busy", "step 3"]);
  await loop.stop(); // ends the minute's sleep at once
  expect(loop.running).toBe(false);
  await Bun.sleep(10);
  expect(seen).toHaveLength(4);
});

test("a notify that comes while a step runs is not lost: the next step runs at once, not after the sleep", async () => {
  let steps = 0;
  let stepInProgress: (() => void) | null = null;
  const loop = new WorkerLoop({
    step: async () => {
      steps += 1;
      // The first step waits (a round writing its transaction) while new work is announced.
      if (steps === 1) await new Promise<void>((resolve) => (stepInProgress = resolve));
      return 60_000;
    },
    onError: () => 60_000,
    onCrash: () => {},
  });
  loop.start();
  await Bun.sleep(5);
  expect(steps).toBe(1);
  loop.notify(); // during the step
  stepInProgress!();
  await Bun.sleep(20);
  expect(steps).toBe(2);
  // A notify before the step began counts for that step only: the loop sleeps its minute after it.
  await Bun.sleep(20);
  expect(steps).toBe(2);
  await loop.stop();
});

test("a step failing the same way again is marked repeated, a new error is not, and the first success after failures is reported", async () => {
  const failures = [
    new Error("database is locked"),
    new Error("database is locked"),
    new Error("disk I/O error"),
    null,
    new Error("database is locked"),
  ];
  const seen: string[] = [];
  let round = 0;
  const loop = new WorkerLoop({
    step: async () => {
      const failure = failures[round++];
      if (failure) throw failure;
      return failure === null ? 0 : 60_000;
    },
    onError: (e, repeated) => {
      seen.push(`${(e as Error).message}${repeated ? " (repeated)" : ""}`);
      return 0;
    },
    onRecovered: (failedSteps) => seen.push(`recovered after ${failedSteps}`),
    onCrash: () => seen.push("crash"),
  });
  loop.start();
  await Bun.sleep(30);
  await loop.stop();
  expect(seen).toEqual([
    "database is locked",
    "database is locked (repeated)",
    "disk I/O error",
    "recovered after 3",
    // After a success the same error is news again.
    "database is locked",
    "recovered after 1",
  ]);
});
