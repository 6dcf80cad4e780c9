// Every state kept in the database, declared once: each list is its column's enum in agent/db/schema*.ts,
// its TypeScript type, what the API accepts, and (with its labels, in this order) what the status page
// shows. A new state is added here and nowhere else; the SQL that moves rows between states names them.

/**
 * A delivery (one event to one target): pending → in_flight → done | needs_action | superseded; waiting
 * while a record it depends on (or an older delivery of the same record) is not at the target yet.
 */
export const DELIVERY_STATUSES = ["pending", "in_flight", "waiting", "needs_action", "done", "superseded"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
export const DELIVERY_STATUS_LABELS: Record<DeliveryStatus, string> = {
  pending: "Pending",
  in_flight: "Sending",
  waiting: "Waiting",
  needs_action: "Needs action",
  done: "Delivered",
  superseded: "Superseded",
};
/** Open and not needing action: what still moves by itself (the stuck-queue check, agent/notify/stalled.ts). */
export const MOVING_DELIVERY_STATUSES = ["pending", "in_flight", "waiting"] as const satisfies readonly DeliveryStatus[];
/** What a person may retry (the API's and the status page's retry). */
export const RETRYABLE_DELIVERY_STATUSES = ["needs_action", "pending", "waiting"] as const satisfies readonly DeliveryStatus[];

/**
 * How one attempt to push a delivery ended (delivery_attempts): delivered; failed and tried again by itself;
 * failed and needs action; failed while a newer version was queued (which replaced it); held back because
 * another record must reach the target first; or no answer recorded (kontobro stopped during the push).
 */
export const ATTEMPT_OUTCOMES = ["delivered", "retry", "needs_action", "superseded", "wait", "interrupted"] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];
export const ATTEMPT_OUTCOME_LABELS: Record<AttemptOutcome, string> = {
  delivered: "Delivered",
  retry: "Failed, retried by itself",
  needs_action: "Failed, needs action",
  superseded: "Failed, replaced by a newer version",
  wait: "Held back",
  interrupted: "No answer recorded",
};

/** An item pulled for the PSA: new → delivered (by the feed or the webhook), or kept aside while its project is unknown. */
export const INBOX_STATES = ["new", "delivered", "ignored_unknown_project"] as const;
export type InboxState = (typeof INBOX_STATES)[number];
export const INBOX_STATE_LABELS: Record<InboxState, string> = {
  new: "New",
  delivered: "Delivered",
  ignored_unknown_project: "Ignored: project unknown to the PSA",
};

/** A run of a pull job (job_runs): running → ok | failed; interrupted when its process died mid-run. */
export const RUN_STATUSES = ["running", "ok", "failed", "interrupted"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const RUN_STATUS_LABELS: Record<RunStatus, string> = { running: "Running", ok: "OK", failed: "Failed", interrupted: "Interrupted" };

/** Why a pull run started. */
export const RUN_TRIGGERS = ["schedule", "catch-up", "manual", "webhook", "cli"] as const;
export type Trigger = (typeof RUN_TRIGGERS)[number];

/** Whether `value` is one of `list` (narrows a string from a query parameter or a row). */
export function isOneOf<T extends string>(list: readonly T[], value: unknown): value is T {
  return (list as readonly unknown[]).includes(value);
}
