// Progress of long work (a queue catching up, an export, a pull): how far it is, how fast it goes and about how
// long is left, from samples of (time, done). Pure: the status page, `kontobro status` and the CLI's progress line
// all describe progress with these functions.

/** How much was done at a moment. */
export interface Sample {
  at: number;
  done: number;
}

export interface Estimate {
  done: number;
  /** null when nobody knows how much there is (a pull pages until the target says "no more"). */
  total: number | null;
  /** 0…1, or null without a total. */
  fraction: number | null;
  /** Items per second over the recent samples; null until two samples some time apart. */
  perSecond: number | null;
  /** Milliseconds left at that rate; null without a total or a rate, or while nothing moves. */
  etaMs: number | null;
  finished: boolean;
}

/** The rate is measured over this much recent time, so it follows a change of pace within half a minute. */
export const RATE_WINDOW_MS = 30_000;
/** Finished work (and a queue that caught up) stays on the status page this long, saying how it ended. */
export const SHOW_FINISHED_MS = 10 * 60_000;
/** Samples kept: enough to span the window at one a second without growing without bound. */
const MAX_SAMPLES = 40;

/**
 * `samples` with `s` added: the samples inside the window, plus the newest one before it (so the window is
 * spanned whole), at most MAX_SAMPLES. A sample at the same moment as the last replaces it.
 */
export function addSample(samples: readonly Sample[], s: Sample, windowMs = RATE_WINDOW_MS): Sample[] {
  const kept = samples.filter((x) => x.at < s.at);
  kept.push(s);
  const firstInside = kept.findIndex((x) => x.at >= s.at - windowMs);
  const from = Math.max(0, firstInside - 1, kept.length - MAX_SAMPLES);
  return kept.slice(from);
}

/** Items per second between the oldest and the newest sample (the caller keeps them within the window); never negative. */
export function ratePerSecond(samples: readonly Sample[]): number | null {
  if (samples.length < 2) return null;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const ms = last.at - first.at;
  if (ms <= 0) return null;
  return Math.max(0, ((last.done - first.done) * 1000) / ms);
}

export function estimate(done: number, total: number | null, samples: readonly Sample[]): Estimate {
  const finished = total !== null && done >= total;
  const fraction = total === null ? null : total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const perSecond = ratePerSecond(samples);
  let etaMs: number | null = null;
  if (finished) etaMs = 0;
  else if (total !== null && perSecond !== null && perSecond > 0) etaMs = Math.round(((total - done) / perSecond) * 1000);
  return { done, total, fraction, perSecond, etaMs, finished };
}

export const formatCount = (n: number) => Math.round(n).toLocaleString("en");

/** "320/s", "4.5/s", "12/min", "3/h"; a rate too slow to show per hour is "under 1/h". */
export function formatRate(perSecond: number): string {
  if (perSecond >= 10) return `${formatCount(perSecond)}/s`;
  if (perSecond >= 1) return `${trim(perSecond)}/s`;
  if (perSecond * 60 >= 1) return `${trim(perSecond * 60)}/min`;
  if (perSecond * 3600 >= 1) return `${trim(perSecond * 3600)}/h`;
  return "under 1/h";
}

const trim = (n: number) => (n >= 10 ? String(Math.round(n)) : n.toFixed(1).replace(/\.0$/, ""));

/** A duration as a person says it: "under a second", "45 s", "2 min 10 s", "1 h 5 min", "3 days". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return "under a second";
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return `${Math.round(h / 24)} days`;
}

/**
 * The rate and time-left part of a progress line: "300/s · about 13 s left", "no progress in the last 30 s",
 * or "" while there is not yet enough to say.
 */
export function describePace(e: Estimate, samples: readonly Sample[]): string {
  if (e.finished || e.perSecond === null) return "";
  if (e.perSecond === 0) {
    const span = samples.length > 1 ? samples[samples.length - 1]!.at - samples[0]!.at : 0;
    return `no progress in the last ${formatDuration(span)}`;
  }
  const left = e.etaMs === null ? "" : ` · about ${formatDuration(e.etaMs)} left`;
  return `${formatRate(e.perSecond)}${left}`;
}

/** "1,200 of 5,000 (24%)", or "1,200" without a total. */
export function describeAmount(e: Estimate, unit: string): string {
  if (e.total === null) return `${formatCount(e.done)} ${unit}`;
  return `${formatCount(e.done)} of ${formatCount(e.total)} ${unit} (${Math.floor((e.fraction ?? 0) * 100)}%)`;
}
