// Pull jobs on node-cron: one job per (target, stream) with a cron expression in a stated time zone.
// A job never runs twice at once (in-process guard here; across processes and workers the runner's claimed
// run row, and on SQLite its file lock); each schedule slot runs once whichever workers fire it (the run row
// names its slot); a run missed while the agent was down is caught up at start; webhook hints are debounced.
// A hint is never dropped: a hint that arrives while the job runs is followed by one more run once it ends, whether
// the run is this process's (`again`) or another process's or worker's (the hinted run, answered "busy", is tried
// again every recheckMs until it can claim the job: the other run has ended).
import cron, { type ScheduledTask } from "node-cron";
import { missedSlot, nextSlots } from "./cron.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { Logger } from "../log.ts";
import { lastGoodRunAt, type JobRef, type RunResult } from "./runner.ts";
import { storedSetting } from "./settings.ts";
import type { Trigger } from "../states.ts";

export interface ScheduledJob extends JobRef {
  /** node-cron expression, or null for a job that only runs when asked (run now, webhook, CLI). */
  cron: string | null;
}

export interface SchedulerOptions {
  storage: SqlRunner;
  log: Logger;
  /** The job body (runPull with the agent's dependencies); `slot`: the schedule time of a scheduled or catch-up run. */
  run: (job: JobRef, trigger: Trigger, slot: number | null) => Promise<RunResult>;
  /** Webhook hints for one job within this many ms start one run. */
  debounceMs: number;
  /**
   * A hinted run found the job running in another process or worker: it is tried again after this many ms until
   * that run has ended and it runs. Default 1000.
   */
  recheckMs?: number;
  now?: () => number;
}

export type RunNowResult = RunResult | { status: "unknown_job" };

export const jobKey = (target: string, stream: string) => `${target}/${stream}`;

export class Scheduler {
  private readonly tasks: ScheduledTask[] = [];
  private readonly running = new Map<string, Promise<RunResult>>();
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** A hint arrived while the job was running: the data it hints at may be newer than that run's fetch. */
  private readonly again = new Set<string>();
  private stopped = false;
  private readonly now: () => number;

  constructor(
    readonly jobs: ScheduledJob[],
    private readonly opts: SchedulerOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Arms the cron tasks, then starts a catch-up run for every job whose slot passed while we were down. */
  async start(): Promise<void> {
    const logger = {
      info: (m: string) => this.opts.log.debug(m),
      warn: (m: string) => this.opts.log.warn(m),
      error: (m: string | Error) => this.opts.log.error(typeof m === "string" ? m : m.message),
      debug: (m: string | Error) => this.opts.log.debug(typeof m === "string" ? m : m.message),
    };
    for (const job of this.jobs) {
      if (!job.cron) continue;
      // The slot node-cron fires is the schedule time itself, the same in every worker.
      const task = cron.createTask(job.cron, (ctx) => this.fire(job, "schedule", ctx.date.getTime()), {
        timezone: job.timezone,
        name: jobKey(job.target, job.stream),
        noOverlap: true,
        logger,
      });
      void task.start();
      this.tasks.push(task);
    }
    for (const { job, slot } of await this.dueForCatchUp()) void this.fire(job, "catch-up", slot);
  }

  /** Jobs whose schedule had a slot after their last good run (or after they were first configured), with that slot. */
  async dueForCatchUp(): Promise<{ job: ScheduledJob; slot: number }[]> {
    const now = this.now();
    const due: { job: ScheduledJob; slot: number }[] = [];
    for (const job of this.jobs) {
      if (!job.cron) continue;
      // When the job was first configured: the catch-up counts from it.
      const firstSeen = Number(await storedSetting(this.opts.storage, `pull_first_seen:${job.target}:${job.stream}`, () => String(now)));
      const since = (await lastGoodRunAt(this.opts.storage, job.target, job.stream)) ?? firstSeen;
      const slot = missedSlot(job.cron, job.timezone, since, now);
      if (!slot) continue;
      this.opts.log.info("a scheduled pull was missed while the agent was down; running it now", {
        target: job.target,
        stream: job.stream,
        due: slot.toISOString(),
      });
      due.push({ job, slot: slot.getTime() });
    }
    return due;
  }

  find(target: string, stream: string): ScheduledJob | undefined {
    return this.jobs.find((j) => j.target === target && j.stream === stream);
  }

  isRunning(target: string, stream: string): boolean {
    return this.running.has(jobKey(target, stream));
  }

  /** Starts a run now unless one of this job is under way (then: busy). */
  runNow(target: string, stream: string, trigger: Trigger): Promise<RunNowResult> {
    const job = this.find(target, stream);
    if (!job) return Promise.resolve({ status: "unknown_job" });
    return this.fire(job, trigger);
  }

  /** A target's webhook said something changed: run the job soon, once for a burst of hints. */
  hint(target: string, stream: string): boolean {
    const key = jobKey(target, stream);
    const job = this.find(target, stream);
    if (!job || this.stopped) return false;
    if (this.running.has(key)) {
      this.again.add(key);
      return true;
    }
    // A hinted run already waits to start: it reads what this hint points at too. Restarting its timer on every hint
    // would put it off for as long as hints keep coming (a target booking a long batch sends one per record).
    if (!this.timers.has(key)) this.runHintedIn(job, this.opts.debounceMs);
    return true;
  }

  /**
   * The hinted run of `job` starts after `ms` (later hints join it; a re-check sets a new timer). The data a hint points at
   * may be newer than the fetch of a run under way, so "busy" is never the end of a hint: busy here, the run follows
   * this run (`again`); busy elsewhere (another worker's or process's run of the job), it is tried again until it runs.
   */
  private runHintedIn(job: ScheduledJob, ms: number): void {
    const key = jobKey(job.target, job.stream);
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(async () => {
        this.timers.delete(key);
        if (this.stopped) return;
        if (this.running.has(key)) {
          this.again.add(key);
          return;
        }
        const result = await this.fire(job, "webhook");
        if (result.status !== "busy" || this.stopped || this.timers.has(key)) return;
        if (this.running.has(key)) this.again.add(key);
        else {
          this.opts.log.debug("hinted pull waits for a run of the job elsewhere to end", { target: job.target, stream: job.stream });
          this.runHintedIn(job, this.opts.recheckMs ?? 1000);
        }
      }, ms),
    );
  }

  private fire(job: ScheduledJob, trigger: Trigger, slot: number | null = null): Promise<RunResult> {
    const key = jobKey(job.target, job.stream);
    if (this.stopped) return Promise.resolve({ status: "busy" });
    if (this.running.has(key)) {
      this.opts.log.info("pull already running; not starting another", { target: job.target, stream: job.stream, trigger });
      return Promise.resolve({ status: "busy" });
    }
    const run = this.opts
      .run(job, trigger, slot)
      .catch((e): RunResult => {
        this.opts.log.error("pull could not run", { target: job.target, stream: job.stream, error: e });
        const message = e instanceof Error ? e.message : String(e);
        return {
          status: "failed",
          runId: 0,
          pages: 0,
          fetched: 0,
          imported: 0,
          duplicates: 0,
          ignored: 0,
          problem: {
            code: "pull_crashed",
            message: `The pull could not run: ${message}`,
            hint: "See the agent's log; the next run starts from the stored cursor, so nothing is lost.",
          },
        };
      })
      .finally(() => {
        this.running.delete(key);
        if (this.again.delete(key)) this.hint(job.target, job.stream);
      });
    this.running.set(key, run);
    return run;
  }

  /** For the status page: each job with its next scheduled time. */
  describe(): (ScheduledJob & { next: Date | null; running: boolean })[] {
    return this.jobs.map((j) => ({
      ...j,
      next: j.cron ? (nextSlots(j.cron, j.timezone, 1)[0] ?? null) : null,
      running: this.isRunning(j.target, j.stream),
    }));
  }

  /** Stops the schedules and waits (up to graceMs) for runs under way. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    for (const t of this.tasks) await t.destroy();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.running.values()]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
