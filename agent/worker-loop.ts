// One background worker loop, shared by the dispatcher (one per target) and the PSA webhook deliverer:
// start, run a step, sleep as long as the step says, wake at once on notify(), stop. The work itself is in
// the step; the loop only keeps it going (pg-boss keeps one such loop for all its workers).
export interface WorkerLoopOptions {
  /** One round of work; returns how long to sleep before the next round (0: after one timer turn). */
  step: () => number | Promise<number>;
  /**
   * A step threw: report it and say how long to wait before trying again. The loop keeps running. `repeated`: the step
   * before failed with the same message and none succeeded since, so it was reported already (a database that stays
   * unavailable fails every poll: said once, not once a second).
   */
  onError: (error: unknown, repeated: boolean) => number;
  /** A step succeeded after `failedSteps` that threw: say that it works again. */
  onRecovered?: (failedSteps: number) => void;
  /** The loop itself broke (a bug): it has stopped. */
  onCrash: (error: unknown) => void;
}

/** Steps that threw in a row: the last one's message, how many, and when the first of them ended (epoch ms). */
export interface StepFailure {
  message: string;
  steps: number;
  since: number;
  /** The loop itself stopped (onCrash): no step runs again before a restart. */
  stopped?: boolean;
}

export class WorkerLoop {
  private active = false;
  private wake: (() => void) | null = null;
  /** notify() came while a step ran: its work may have come too late for that step, so the next runs at once. */
  private notified = false;
  private done: Promise<void> = Promise.resolve();
  /** The message of the last step that threw, while no step has succeeded since; how many threw, since when. */
  private failing: StepFailure | null = null;

  constructor(private readonly options: WorkerLoopOptions) {}

  get running(): boolean {
    return this.active;
  }

  /** The steps failing now (each threw, none succeeded since), or null. */
  get failure(): StepFailure | null {
    return this.failing;
  }

  /** Starts the loop (the first step runs at once); does nothing when it runs already. */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.done = this.run().catch((e) => this.options.onCrash(e));
  }

  /** New work may be ready: cuts the current sleep short, or the next one if none is under way. */
  notify(): void {
    if (this.wake) this.wake();
    else this.notified = true;
  }

  /** Resolves after `ms`, or earlier on notify() (at once if one came since the last step began). */
  sleep(ms: number): Promise<void> {
    if (this.notified) {
      this.notified = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Stops after the step in progress (a sleep ends at once); resolves when the loop has ended. */
  async stop(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.notify();
    await this.done;
  }

  private async run(): Promise<void> {
    while (this.active) {
      let wait: number;
      this.notified = false;
      try {
        wait = await this.options.step();
        if (this.failing) {
          const { steps } = this.failing;
          this.failing = null;
          this.options.onRecovered?.(steps);
        }
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        const repeated = this.failing?.message === message;
        this.failing = { message, steps: (this.failing?.steps ?? 0) + 1, since: this.failing?.since ?? Date.now() };
        wait = this.options.onError(e, repeated);
      }
      if (this.active) await this.sleep(wait);
    }
  }
}
