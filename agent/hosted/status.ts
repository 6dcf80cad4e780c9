// GET /api/v1/status of a hosted tenant: its targets as this worker runs them, its deliveries counted per target
// and status, and the deliveries that need action. Read through the tenant's runner: row-level security holds
// every statement to the tenant's rows.
import type { SqlRunner } from "../db/pg/runner.ts";
import { deliveryCounts, type DeliveryRow, listDeliveries } from "../queries.ts";
import { RESTORE_SETTING_SQL, type RestoreInfo } from "../restore.ts";
import type { DeliveryStatus } from "../states.ts";
import type { RuntimeTarget } from "./tenant-runtime.ts";

/** The needs-action list holds at most this many, newest first. */
export const NEEDS_ACTION_LIMIT = 100;

export interface TenantStatus {
  tenant: string;
  /** The worker that answered (any worker answers for every tenant). */
  worker: number;
  /** The tenant's targets, sending or held (with why); empty when the tenant does not run on this worker. */
  targets: RuntimeTarget[];
  /** Why the tenant does not run on this worker, when it does not. */
  notRunning?: string;
  counts: { target: string; status: DeliveryStatus; n: number }[];
  needsAction: DeliveryRow[];
  /** The last restore of the database noticed (agent/db/pg/restore-watch.ts): what was done, and until when records new to a target are looked up first. */
  restore?: RestoreInfo;
}

export async function tenantStatus(
  runner: SqlRunner,
  about: { tenant: string; worker: number; targets: RuntimeTarget[]; notRunning?: string },
): Promise<TenantStatus> {
  // One transaction: the counts and the list are of the same moment.
  const { counts, needsAction, restore } = await runner.transaction(async (tx) => ({
    counts: await deliveryCounts(tx),
    needsAction: await listDeliveries(tx, { status: "needs_action", limit: NEEDS_ACTION_LIMIT }),
    restore: (await tx.get<{ value: string }>(RESTORE_SETTING_SQL))?.value,
  }));
  return { ...about, counts, needsAction, ...(restore ? { restore: JSON.parse(restore) as RestoreInfo } : {}) };
}
