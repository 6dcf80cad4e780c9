// When to try a delivery again. Pure: the random source is passed in.
export interface BackoffPolicy {
  /** First retry delay before jitter. */
  baseMs: number;
  /** Upper bound of any computed delay (Retry-After may ask for longer, and is honoured). */
  maxMs: number;
}

/**
 * Exponential backoff with full jitter: a random delay in [base·2^(n-1)/2, base·2^(n-1)], capped.
 * The lower half keeps many failing deliveries from bunching up while never retrying instantly.
 * A target's Retry-After is a floor: we never come back sooner than it asked.
 */
export function retryDelayMs(attempt: number, policy: BackoffPolicy, retryAfterMs?: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const jittered = exp / 2 + random() * (exp / 2);
  if (retryAfterMs === undefined) return Math.round(jittered);
  // Honour Retry-After exactly, plus a little jitter so waiting deliveries do not return in one burst.
  return Math.round(retryAfterMs + random() * Math.min(1000, retryAfterMs * 0.1 + 50));
}
