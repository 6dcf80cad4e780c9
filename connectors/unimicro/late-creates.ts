// Invoice draft POSTs answered after request_timeout_ms. The attempt gives up at the timeout (uncertain), but the
// request keeps listening; until its answer comes, no attempt for that invoice creates another draft. The
// next attempt then finds the late draft by its marker and finishes it, so no second draft is left behind.
import { TargetError } from "../http.ts";
import type { UniClient } from "./client.ts";

/** How long a draft POST that outlived request_timeout_ms is still listened to. */
export const LATE_CREATE_WAIT_MS = 10 * 60 * 1000;

export class LateCreates {
  /** Still listened to, by PSA id. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly api: UniClient,
    private readonly timeoutMs: number,
  ) {}

  /** Throws (retryable) while an earlier draft POST for this PSA id is unanswered: another could leave two drafts. */
  assertNonePending(psaId: string, number: string): void {
    if (!this.pending.has(psaId)) return;
    throw new TargetError("retryable", {
      code: "unimicro.create_pending",
      retryAfterMs: 1000,
      message: `${this.api.title} has not yet answered an earlier request to create invoice ${number}; kontobro creates nothing more until it does.`,
      hint: "Nothing to do: kontobro waits for that answer and then finishes the draft it made.",
    });
  }

  /** POST /api/biz/invoices with a deadline of its own; returns the new draft's ID. */
  async createDraft(psaId: string, body: object): Promise<number> {
    const request = this.api.request("POST", "/api/biz/invoices", { json: body, timeoutMs: LATE_CREATE_WAIT_MS });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), this.timeoutMs);
    });
    const first = await Promise.race([request, deadline]).finally(() => clearTimeout(timer));
    if (first === "late") {
      this.pending.set(
        psaId,
        request
          .then(
            () => undefined,
            () => undefined,
          )
          .finally(() => this.pending.delete(psaId)),
      );
      throw new TargetError("uncertain", {
        code: "timeout",
        message: `${this.api.title} did not answer POST /api/biz/invoices in time`,
        hint: "Usually temporary; kontobro retries and checks first whether the record arrived. A draft answered late is finished, not doubled.",
      });
    }
    return first.body?.ID as number;
  }
}
