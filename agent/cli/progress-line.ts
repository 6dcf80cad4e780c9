// The CLI's progress line (exports, pulls, `kontobro status --watch`). On a terminal one line rewrites itself
// (carriage return, clear to the end of the line) and ends with a newline; when standard output is a file or a pipe
// (a log, cron), a plain line is printed every few seconds and once at the end, so a log shows how it went.
import { writeSync } from "node:fs";

export interface ProgressOutput {
  isTTY: boolean;
  /** Width of the terminal, when known: the line is cut to fit, or the rewrite would leave wrapped remains. */
  columns?: number;
  write(text: string): void;
}

/** How long a full pipe (a slow reader) may hold one progress line before that line is skipped. */
const FULL_PIPE_WAIT_MS = 2_000;

/**
 * Writes `text` to file descriptor `fd` synchronously. A pipe whose reader is slow answers EAGAIN when it is full:
 * wait for it (briefly), as a blocking write would. Returns false when the reader has gone (EPIPE and the like).
 */
export function writeAllSync(fd: number, text: string, write: typeof writeSync = writeSync, sleep = Bun.sleepSync): boolean {
  let rest = Buffer.from(text);
  let waited = 0;
  while (rest.length > 0) {
    try {
      rest = rest.subarray(write(fd, rest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return false;
      if (waited >= FULL_PIPE_WAIT_MS) return true; // this line is skipped; the next ones are tried again
      sleep(1);
      waited += 1;
    }
  }
  return true;
}

/**
 * Standard output, written synchronously: an export runs in one synchronous transaction, so anything queued for
 * later would only appear after it.
 */
export function stdoutProgress(): ProgressOutput {
  let open = true;
  return {
    isTTY: !!process.stdout.isTTY,
    columns: process.stdout.columns,
    write: (text) => {
      // e.g. `| head` has gone: the progress is not worth failing the work for
      if (open) open = writeAllSync(1, text);
    },
  };
}

/** Plain lines (not a terminal): every this many ms; KONTOBRO_PROGRESS_EVERY_MS changes it (0: every update). */
export const PLAIN_EVERY_MS = 5_000;
/** A terminal's line is redrawn at most this often. */
const TTY_EVERY_MS = 200;

export function plainEveryMs(env: Record<string, string | undefined> = process.env): number {
  const v = Number(env.KONTOBRO_PROGRESS_EVERY_MS);
  return env.KONTOBRO_PROGRESS_EVERY_MS !== undefined && env.KONTOBRO_PROGRESS_EVERY_MS !== "" && Number.isFinite(v) && v >= 0
    ? v
    : PLAIN_EVERY_MS;
}

export class ProgressLine {
  private shownAt = Number.NEGATIVE_INFINITY;
  /** The last text given, and the last one shown. */
  private last = "";
  private lastShown = "";
  /** A terminal line is drawn and not yet ended. */
  private drawn = false;

  constructor(
    private readonly out: ProgressOutput = stdoutProgress(),
    private readonly options: { plainEveryMs?: number; now?: () => number } = {},
  ) {}

  /** Shows `text` now, or skips it when the last one was shown too recently. */
  update(text: string): void {
    const now = (this.options.now ?? Date.now)();
    const every = this.out.isTTY ? TTY_EVERY_MS : (this.options.plainEveryMs ?? plainEveryMs());
    this.last = text;
    if (now - this.shownAt < every) return;
    this.shownAt = now;
    this.show(text);
  }

  /** Shows the final text (the last update's when none is given) and ends the line. */
  finish(text = this.last): void {
    if (this.out.isTTY || text !== this.lastShown) this.show(text);
    if (this.drawn) this.out.write("\n");
    this.drawn = false;
  }

  private show(text: string): void {
    this.lastShown = text;
    if (!this.out.isTTY) {
      this.out.write(`${text}\n`);
      return;
    }
    const width = this.out.columns && this.out.columns > 1 ? this.out.columns - 1 : Number.POSITIVE_INFINITY;
    const fitted = text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
    this.out.write(`\r${fitted}\x1b[K`);
    this.drawn = true;
  }
}
