// Free space on the file systems the SQLite agent writes to: the one holding the database (agent.data_dir) and, when it
// is another, the one holding the export output folder. A full disk stops intake (503) and the dispatchers (their rounds
// fail) at once; this says so before: a gauge on /metrics, a line on the status page, a warning in the log and an alert
// (to every target's recipients) while the free space is below agent.disk_free_warn_bytes, resolved once it is back.
// Read by statfs every CHECK_EVERY_MS (cheap, but nothing needs it per request): the gauge, the page and the alert show
// the last reading. Once low, a file system counts as back only above the threshold plus BACK_MARGIN of it: free space
// hovering around the threshold (a WAL growing and checkpointed, a log rotated) would otherwise open and resolve an
// alert, and log a warning and an info line, at every other reading. Hosted mode has no local database file
// (PostgreSQL's disk is watched on its own server); this is the SQLite agent's.
import { statfsSync, statSync } from "node:fs";
import type { Logger } from "./log.ts";
import type { Gauge } from "./metrics.ts";
import type { Problem } from "./notify/alerts.ts";
import { formatBytes } from "./retention.ts";

export const CHECK_EVERY_MS = 30_000;

/** Once low, the free space must exceed the threshold by this part of it to count as back (hysteresis). */
export const BACK_MARGIN = 0.1;

/** What the file system holds: the database (its data directory), or the export output folder. */
export type DiskHolds = "database" | "exports";

export interface DiskReading {
  holds: DiskHolds;
  path: string;
  /** Bytes this (unprivileged) user may still write: statfs's available blocks. */
  freeBytes: number;
  sizeBytes: number;
}

export interface DiskLow extends DiskReading {
  thresholdBytes: number;
  /** Above this much free space it counts as back: the threshold plus BACK_MARGIN of it. */
  backAboveBytes: number;
}

/** The free space above which a low file system counts as back. */
export const backAbove = (thresholdBytes: number) => Math.ceil(thresholdBytes * (1 + BACK_MARGIN));

/** statfs of `path`: the bytes available to an unprivileged user (root's reserve left out) and the file system's size. */
export function readDisk(holds: DiskHolds, path: string): DiskReading {
  const s = statfsSync(path);
  return { holds, path, freeBytes: s.bavail * s.bsize, sizeBytes: s.blocks * s.bsize };
}

export class DiskSpaceWatch {
  private readings: DiskReading[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Per file system: whether it was low at the last reading (a change is logged once), or could not be read. */
  private readonly state = new Map<DiskHolds, "ok" | "low" | "unreadable">();

  /**
   * `exportsDir` is watched only when it is on another file system than `dataDir` (the database's reading covers it
   * otherwise). `thresholdBytes` 0: no warning, the gauge only.
   */
  constructor(
    private readonly dataDir: string,
    private readonly exportsDir: string | undefined,
    readonly thresholdBytes: number,
    private readonly log: Logger,
  ) {}

  /** Reads now, then every CHECK_EVERY_MS until stop(). */
  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The folders to read: the export folder only when it exists and is on another device than the data directory. */
  private paths(): { holds: DiskHolds; path: string }[] {
    const paths: { holds: DiskHolds; path: string }[] = [{ holds: "database", path: this.dataDir }];
    if (this.exportsDir) {
      try {
        if (statSync(this.exportsDir).dev !== statSync(this.dataDir).dev) paths.push({ holds: "exports", path: this.exportsDir });
      } catch {} // not made yet (the first export makes it), or unreadable: the export's own error says so
    }
    return paths;
  }

  check(): void {
    const readings: DiskReading[] = [];
    for (const { holds, path } of this.paths()) {
      try {
        readings.push(readDisk(holds, path));
      } catch (e) {
        if (this.state.get(holds) !== "unreadable") this.log.warn("could not read the free disk space", { folder: path, error: e });
        this.state.set(holds, "unreadable");
        continue;
      }
      const r = readings.at(-1)!;
      const was = this.state.get(holds);
      const low = this.isLow(r, was === "low");
      if (low && was !== "low") this.log.warn(lowMessage(this.asLow(r)), { hint: lowHint(r.holds) });
      if (!low && was === "low")
        this.log.info(`free disk space is back above ${formatBytes(backAbove(this.thresholdBytes))}`, {
          folder: r.path,
          freeBytes: r.freeBytes,
        });
      this.state.set(holds, low ? "low" : "ok");
    }
    this.readings = readings;
  }

  /** Below the threshold; or, when it was low at the last reading, not yet above the threshold plus its margin. */
  private isLow(r: DiskReading, wasLow: boolean): boolean {
    if (this.thresholdBytes <= 0) return false;
    return r.freeBytes < this.thresholdBytes || (wasLow && r.freeBytes <= backAbove(this.thresholdBytes));
  }

  private asLow(r: DiskReading): DiskLow {
    return { ...r, thresholdBytes: this.thresholdBytes, backAboveBytes: backAbove(this.thresholdBytes) };
  }

  /** The last readings. */
  current(): DiskReading[] {
    return this.readings;
  }

  /** The file systems low at the last reading: below the threshold, or not yet back above it and its margin. */
  low(): DiskLow[] {
    return this.readings.filter((r) => this.state.get(r.holds) === "low").map((r) => this.asLow(r));
  }

  gauges(): Gauge[] {
    return [
      {
        name: "kontobro_disk_free_bytes",
        help: "Bytes kontobro may still write on the file system holding the database (holds=database) or, when it is another, the export output folder (holds=exports); read every 30 s. When it reaches 0, intake refuses events and nothing is sent.",
        rows: this.readings.map((r) => ({ labels: { holds: r.holds }, value: r.freeBytes })),
      },
      {
        name: "kontobro_disk_size_bytes",
        help: "Size of that file system.",
        rows: this.readings.map((r) => ({ labels: { holds: r.holds }, value: r.sizeBytes })),
      },
      {
        name: "kontobro_disk_free_warn_bytes",
        help: "agent.disk_free_warn_bytes: below it the status page, the log and the alerts warn; 0 when off.",
        rows: [{ labels: {}, value: this.thresholdBytes }],
      },
    ];
  }

  /** A low file system as an alert of each target (the notifier's problems): a full one stops them all. */
  problems(targets: string[]): Problem[] {
    return this.low().flatMap((l) =>
      targets.map(
        (target): Problem => ({
          target,
          kind: "disk",
          subject: l.holds,
          code: "disk_space_low",
          message: lowMessage(l),
          hint: lowHint(l.holds),
          detail: {
            folder: l.path,
            freeBytes: l.freeBytes,
            sizeBytes: l.sizeBytes,
            thresholdBytes: l.thresholdBytes,
            backAboveBytes: l.backAboveBytes,
          },
        }),
      ),
    );
  }
}

export function lowMessage(l: DiskLow): string {
  const what = l.holds === "database" ? "the database" : "the export output folder";
  const where = `of ${formatBytes(l.sizeBytes)} is free on the disk holding ${what} (${l.path})`;
  if (l.freeBytes < l.thresholdBytes)
    return `Only ${formatBytes(l.freeBytes)} ${where}, below agent.disk_free_warn_bytes (${formatBytes(l.thresholdBytes)}).`;
  return `Only ${formatBytes(l.freeBytes)} ${where}: it fell below agent.disk_free_warn_bytes (${formatBytes(l.thresholdBytes)}) and counts as back above ${formatBytes(l.backAboveBytes)}.`;
}

export function lowHint(holds: DiskHolds): string {
  return holds === "database"
    ? "Free disk space on the kontobro server (or move the data directory to a larger disk) before it is full: then the PSA's events are refused (503) and nothing is sent to the targets until there is room again."
    : "Free disk space where the export output folder is (or point exports.output_dir at a larger disk) before it is full: then export files cannot be written there (they stay in the database and are written once there is room).";
}
