// Work done at once (on the next turn of the event loop) and then again `intervalMs` after each run ends: retention's
// prune (agent/retention.ts) and a hosted tenant's statistics prune (agent/hosted/stats-prune.ts). `work` catches its
// own errors; its timer does not keep the process alive.

export interface Periodic {
  /** No run starts after this; waits for the one under way. */
  stop(): Promise<void>;
}

export function startPeriodic(work: (stopped: () => boolean) => Promise<void>, intervalMs: number): Periodic {
  let stopped = false;
  let running: Promise<void> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = () => {
    running = (async () => {
      await work(() => stopped);
      running = null;
      if (!stopped) (timer = setTimeout(run, intervalMs)).unref?.();
    })();
  };
  (timer = setTimeout(run, 0)).unref?.();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
