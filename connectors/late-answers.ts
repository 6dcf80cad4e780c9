// Creates answered after the attempt's deadline. The attempt gives up at request_timeout_ms (uncertain),
// but the request keeps listening, because a target that answers late usually did create the record:
// the connector then finishes it or deletes it, so no second draft or
// order is left behind. One mechanism for every connector that creates drafts or orders.
import { TargetError } from "./http.ts";

/** How long a create that outlived request_timeout_ms is still listened to. */
export const LATE_ANSWER_WAIT_MS = 10 * 60 * 1000;

export interface LateCall {
  /** The target's name, for messages. */
  title: string;
  /** The request, e.g. "POST /api/biz/invoices". */
  call: string;
  /** What happens to a late answer, for the hint: "A draft answered late is finished, not doubled." */
  afterwards: string;
}

/**
 * Races `request` (sent with a timeout of LATE_ANSWER_WAIT_MS) against `deadlineMs`. Within it: the answer.
 * Past it: `onLate` gets the request, still listened to, and the attempt fails as uncertain. If `onLate` returns a
 * promise, the error carries it (TargetError.lateAnswer): the delivery stays leased until it settles.
 */
export async function answerWithin<T>(
  request: Promise<T>,
  deadlineMs: number,
  what: LateCall,
  onLate: (late: Promise<T>) => Promise<void> | void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), deadlineMs);
  });
  const first = await Promise.race([request, deadline]).finally(() => clearTimeout(timer));
  if (first !== "late") return first;
  const lateAnswer = onLate(request) ?? undefined;
  throw new TargetError("uncertain", {
    lateAnswer,
    code: "timeout",
    message: `${what.title} did not answer ${what.call} in time`,
    hint: `Usually temporary; kontobro retries and checks first whether the record arrived. ${what.afterwards}`,
  });
}

/**
 * Creates still listened to, by PSA id: while one is unanswered, no attempt for that document creates
 * another (it could leave two); once its answer is in, the next attempt finds and finishes what it made.
 * This process's attempts are held here; every other worker's by the delivery, which the dispatcher keeps leased
 * until the late answer is in (TargetError.lateAnswer): a retry on another worker looked before the create landed.
 */
export class PendingCreates {
  /** By PSA id: the request still unanswered ("POST /api/biz/invoices"), cleared when it answers. */
  private readonly pending = new Map<string, string>();

  constructor(
    private readonly what: LateCall,
    private readonly deadlineMs: number,
    /** The connector's code for "still waiting", e.g. "<kind>.create_pending". */
    private readonly pendingCode: string,
  ) {}

  /** Throws (retryable) while an earlier create for this PSA id is unanswered. */
  assertNonePending(psaId: string, number: string): void {
    const call = this.pending.get(psaId);
    if (call === undefined) return;
    throw new TargetError("retryable", {
      code: this.pendingCode,
      retryAfterMs: 1000,
      message: `${this.what.title} has not yet answered an earlier request for invoice ${number} (${call}); kontobro sends nothing more for it until it does.`,
      hint: "Nothing to do: kontobro waits for that answer and then finishes what it made.",
    });
  }

  /**
   * The create for `psaId`, with the attempt's deadline; a late one is remembered until it answers. `call` names
   * the request when this guard covers more than one (a draft's rewrite beside its create).
   */
  create<T>(psaId: string, request: Promise<T>, call: string = this.what.call): Promise<T> {
    return answerWithin(request, this.deadlineMs, { ...this.what, call }, (late) => {
      this.pending.set(psaId, call);
      return late.then(
        () => {
          this.pending.delete(psaId);
        },
        () => {
          this.pending.delete(psaId);
        },
      );
    });
  }
}
