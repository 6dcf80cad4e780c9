// A sleep that can be cut short: background loops (dispatcher, PSA webhook sender) sleep until their
// next due time, and new work wakes them at once.
export class WakeableSleep {
  private wake: (() => void) | null = null;

  /** Resolves after `ms`, or earlier when wake() is called. */
  sleep(ms: number): Promise<void> {
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

  wakeUp(): void {
    this.wake?.();
  }
}
