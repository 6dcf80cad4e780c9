// Order inserts (POST /api/Entities/Insert/DebtorOrderClient) answered after request_timeout_ms, as Uni Micro's
// late-creates.ts does for drafts. The attempt gives up at the timeout (uncertain), but the request keeps
// listening; until its answer comes, no attempt for that invoice inserts another order. The next attempt then
// finds the late order by its reference and finishes it, so no second order is left behind.
import { TargetError } from "../http.ts";
import type { Row, UnicontaClient } from "./client.ts";

/** How long an order insert that outlived request_timeout_ms is still listened to. */
export const LATE_ORDER_WAIT_MS = 10 * 60 * 1000;

export class LateOrders {
  /** Still listened to, by PSA id. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly client: UnicontaClient,
    private readonly timeoutMs: number,
  ) {}

  /** Throws (retryable) while an earlier order insert for this PSA id is unanswered: another could leave two orders. */
  assertNonePending(psaId: string, number: string): void {
    if (!this.pending.has(psaId)) return;
    throw new TargetError("retryable", {
      code: "uniconta.create_pending",
      retryAfterMs: 1000,
      message: `Uniconta has not yet answered an earlier request to create the order for invoice ${number}; kontobro creates nothing more until it does.`,
      hint: "Nothing to do: kontobro waits for that answer and then finishes the order it made.",
    });
  }

  /** Inserts the order with a deadline of its own; answers what Uniconta stored (null when the answer is empty). */
  async insertOrder(psaId: string, header: Row): Promise<Row | null> {
    const request = this.client.insert("DebtorOrderClient", header, { timeoutMs: LATE_ORDER_WAIT_MS });
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
        message: "Uniconta did not answer POST /api/Entities/Insert/DebtorOrderClient in time",
        hint: "Usually temporary; kontobro retries and checks first whether the order arrived. An order answered late is finished, not doubled.",
      });
    }
    return first;
  }
}
