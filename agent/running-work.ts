// Long work under way (an export, a pull), visible to every process that uses the data directory: the status page
// served by the agent shows an export that `kontobro export run` is making, and `kontobro status --watch` shows a
// pull the agent runs. Each piece of work is one small JSON file in <data dir>/progress/, replaced whole (written
// beside it, then renamed) at most once a second. Not in the database: an export is one long SQLite write
// transaction (nothing it writes there is visible before its commit, and nothing else can write meanwhile).
// Where the work is reported is a WorkBoard: these files on SQLite, the running_work table on PostgreSQL (hosted
// workers share no data directory; agent/running-work-sql.ts). The tracker and its readers are the same for both.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Db } from "./db/index.ts";
import {
  addSample,
  describeAmount,
  describePace,
  estimate,
  formatDuration,
  SHOW_FINISHED_MS,
  type Estimate,
  type Sample,
} from "./progress.ts";

export type WorkKind = "export" | "pull";

export interface WorkEntry {
  id: string;
  kind: WorkKind;
  /** What it is, for a person: "SIE 4 export", "books: expenses". */
  title: string;
  /** What is counted: "invoices", "items". */
  unit: string;
  done: number;
  total: number | null;
  /** What it is doing now, e.g. "checking the file", "page 12". */
  stage?: string;
  samples: Sample[];
  startedAt: number;
  updatedAt: number;
  finishedAt?: number;
  outcome?: "ok" | "failed";
  /** How it ended, in a few words. */
  message?: string;
  pid: number;
}

export interface WorkTracker {
  /** Reports progress; the file is rewritten at most once a second. */
  update(done: number, total?: number | null, stage?: string): void;
  /** Marks it finished (the file is kept a while, so the status page can say how it ended). */
  finish(outcome: "ok" | "failed", message?: string): void;
  readonly entry: Readonly<WorkEntry>;
}

/** How often a running piece of work rewrites its file. */
export const WRITE_EVERY_MS = 1_000;
/** Writes that fail one after the other before a piece of work stops trying. */
const MAX_WRITE_FAILURES = 5;
/** A file not rewritten for this long belongs to work that stopped without saying so (and whose pid was reused). */
const ABANDONED_AFTER_MS = 60 * 60_000;

/** Where work is reported and read back: a data directory's files (fileBoard), or the running_work table. */
export interface WorkBoard {
  /** Stores the entry as it is now; may throw (the tracker counts failures and gives up after a few in a row). */
  save(entry: Readonly<WorkEntry>): void | Promise<void>;
  /** Work under way, and work finished in the last SHOW_FINISHED_MS, oldest first. */
  list(now?: number): Promise<WorkEntry[]>;
}

/** The data directory's board: one file per piece of work in <data dir>/progress (null for an in-memory database). */
export function fileBoard(db: Db): WorkBoard | null {
  const dir = progressDirOf(db);
  if (dir === null) return null;
  return {
    save(entry) {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${entry.id}.json`);
      writeFileSync(`${file}.tmp`, JSON.stringify(entry));
      renameSync(`${file}.tmp`, file);
    },
    list: async (now) => listWork(db, now),
  };
}

const isBoard = (x: Db | WorkBoard): x is WorkBoard => typeof (x as WorkBoard).save === "function";

/** <data dir>/progress, found from the database file (null for an in-memory database). */
export function progressDirOf(db: Db): string | null {
  const file = db.$client.filename;
  return file && file !== ":memory:" ? join(dirname(file), "progress") : null;
}

/**
 * Starts tracking a piece of work. `listener` hears every update (the CLI draws its progress line from it).
 * Neither writing the file nor the listener ever throws into the work: progress is only shown, and a full disk or
 * a closed pipe must not roll an export back. A write that fails is tried again at the next update (on Windows a
 * reader may hold the file for a moment), up to a few times in a row. `board`: a SQLite database (its data
 * directory's files) or a WorkBoard; null: nowhere, only the listener hears it.
 */
export function startWork(
  board: Db | WorkBoard | null,
  spec: { kind: WorkKind; title: string; unit: string; total?: number | null },
  options: { listener?: (e: Readonly<WorkEntry>) => void; now?: () => number } = {},
): WorkTracker {
  const now = options.now ?? Date.now;
  const where = board === null ? null : isBoard(board) ? board : fileBoard(board);
  const startedAt = now();
  const entry: WorkEntry = {
    id: `${spec.kind}-${process.pid}-${startedAt}-${Math.random().toString(36).slice(2, 8)}`,
    kind: spec.kind,
    title: spec.title,
    unit: spec.unit,
    done: 0,
    total: spec.total ?? null,
    samples: [{ at: startedAt, done: 0 }],
    startedAt,
    updatedAt: startedAt,
    pid: process.pid,
  };
  let failures = where === null ? MAX_WRITE_FAILURES : 0;
  let sampledAt = startedAt;
  const write = () => {
    if (failures >= MAX_WRITE_FAILURES) return;
    try {
      const saved = where!.save(entry);
      if (saved instanceof Promise)
        saved.then(
          () => (failures = 0),
          () => (failures += 1),
        );
      else failures = 0;
    } catch {
      failures += 1;
    }
  };
  const tell = () => {
    try {
      options.listener?.(entry);
    } catch {
      // The display failed (e.g. standard output closed): the work goes on.
    }
  };
  /** A sample of the progress now, written. */
  const record = (at: number) => {
    if (trailing) clearTimeout(trailing);
    trailing = null;
    sampledAt = at;
    entry.samples = addSample(entry.samples, { at, done: entry.done });
    write();
  };
  // An update within the second is written when the second is up, unless another comes first: work that then waits
  // long (an export waiting for the database) shows what it waits for, not what it did before.
  let trailing: ReturnType<typeof setTimeout> | null = null;
  const writeLater = () => {
    if (trailing || where === null) return;
    trailing = setTimeout(() => record(now()), Math.min(WRITE_EVERY_MS, Math.max(0, WRITE_EVERY_MS - (now() - sampledAt))));
    trailing.unref?.();
  };
  write();
  return {
    entry,
    update(done, total, stage) {
      const at = now();
      entry.done = done;
      if (total !== undefined) entry.total = total;
      if (stage !== undefined) entry.stage = stage;
      entry.updatedAt = at;
      if (at - sampledAt >= WRITE_EVERY_MS) record(at);
      else writeLater();
      tell();
    },
    finish(outcome, message) {
      if (trailing) clearTimeout(trailing);
      trailing = null;
      const at = now();
      entry.updatedAt = at;
      entry.finishedAt = at;
      entry.outcome = outcome;
      if (message !== undefined) entry.message = message;
      entry.samples = addSample(entry.samples, { at, done: entry.done });
      write();
      tell();
    },
  };
}

/** Is a process still there? (EPERM: it is, under another user.) */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Work under way, and work finished in the last SHOW_FINISHED_MS, oldest first. Work whose process is gone
 * without finishing is shown as cut off; its file is removed once it is no longer shown.
 */
export function listWork(db: Db, now = Date.now()): WorkEntry[] {
  const dir = progressDirOf(db);
  if (!dir) return [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".json"));
  } catch {
    return [];
  }
  const list: WorkEntry[] = [];
  for (const name of names) {
    let e: WorkEntry;
    try {
      e = JSON.parse(readFileSync(join(dir, name), "utf8")) as WorkEntry;
    } catch {
      continue; // being replaced right now, or not ours
    }
    if (e.finishedAt === undefined && (!alive(e.pid) || now - e.updatedAt > ABANDONED_AFTER_MS)) {
      e.finishedAt = e.updatedAt;
      e.outcome = "failed";
      e.message = "cut off: the process stopped before it finished";
    }
    if (e.finishedAt !== undefined && now - e.finishedAt > SHOW_FINISHED_MS) {
      rmSync(join(dir, name), { force: true });
      continue;
    }
    list.push(e);
  }
  return list.sort((a, b) => a.startedAt - b.startedAt);
}

export const isRunning = (e: WorkEntry) => e.finishedAt === undefined;

export function workEstimate(e: WorkEntry): Estimate {
  return estimate(e.done, e.total, e.samples);
}

/**
 * How it is going, for a person: "1,200 of 5,000 invoices (24%), checking the file · 300/s · about 13 s left",
 * or how it ended: "finished in 12 s, 5,000 invoices (1 file(s))".
 */
export function describeWorkState(e: WorkEntry): string {
  const est = workEstimate(e);
  if (e.finishedAt !== undefined) {
    const took = formatDuration(e.finishedAt - e.startedAt);
    if (e.outcome === "ok")
      return `finished in ${took}, ${describeAmount({ ...est, total: null }, e.unit)}${e.message ? ` (${e.message})` : ""}`;
    return `stopped after ${took} at ${describeAmount(est, e.unit)}${e.message ? `: ${e.message}` : ""}`;
  }
  const pace = describePace(est, e.samples);
  return `${describeAmount(est, e.unit)}${e.stage ? `, ${e.stage}` : ""}${pace ? ` · ${pace}` : ""}`;
}

/** The line the CLI shows: "SIE 4 export: 1,200 of 5,000 invoices (24%), …". */
export const describeWork = (e: WorkEntry) => `${e.title}: ${describeWorkState(e)}`;
