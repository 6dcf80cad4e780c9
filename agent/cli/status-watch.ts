// `kontobro status --watch`: follows what is in progress (a queue catching up, exports, pulls) on one progress line
// until all of it is over, then says how each ended. Reads what the agent and other commands keep (agent/in-progress.ts),
// or what a hosted tenant's workers keep (`kontobro tenant status <slug> --watch`).
import { progressItems, type ProgressItem, type ProgressSource } from "../in-progress.ts";
import { ProgressLine } from "./progress-line.ts";

const WATCH_EVERY_MS = 1_000;
const line = (items: ProgressItem[]) => items.map((i) => `${i.title}: ${i.text}`).join(" | ");

export async function watchProgress(source: ProgressSource, progress = new ProgressLine()): Promise<number> {
  const watched = new Set<string>();
  const interrupted = () => {
    progress.finish();
    process.exit(130);
  };
  process.once("SIGINT", interrupted);
  try {
    for (;;) {
      const items = await progressItems(source);
      const running = items.filter((i) => i.state === "running");
      for (const i of running) watched.add(i.key);
      if (running.length === 0) {
        const ended = items.filter((i) => watched.has(i.key));
        if (ended.length > 0) progress.finish(line(ended));
        else {
          const stale = items.filter((i) => i.state === "stale");
          console.log(stale.length > 0 ? line(stale) : "Nothing in progress: no queue is catching up, no export or pull is under way.");
        }
        return 0;
      }
      progress.update(line(running));
      await Bun.sleep(WATCH_EVERY_MS);
    }
  } finally {
    process.off("SIGINT", interrupted);
  }
}
