// Whether the SQLite agent still makes its writes durable. After a failed fsync of the database's WAL
// (agent/db/wal-sync.ts) nothing more is: the dispatchers send nothing, and an event intake stored could be lost with
// the frames before it, until kontobro is restarted. One fact, read by /readyz, /metrics, the status page, intake and
// the notifier (an alert by e-mail or webhook), so that a queue stopped this way does not go unnoticed.
import type { Db } from "./db/index.ts";
import { sqliteRunner } from "./db/pg/runner.ts";
import { describeWalFailure, WAL_FAILURE_HINT } from "./db/wal-sync.ts";
import type { Gauge } from "./metrics.ts";
import type { Problem } from "./notify/alerts.ts";

export interface DurabilityFault {
  /** When the fsync failed (epoch ms). */
  since: number;
  message: string;
  hint: string;
}

/** The failed fsync of the agent's connection, in words, or null while every commit is made durable. */
export function durabilityFault(db: Db): DurabilityFault | null {
  const failure = sqliteRunner(db.$client).walFailure();
  return failure && { since: failure.at, message: describeWalFailure(failure), hint: WAL_FAILURE_HINT };
}

/** Why intake takes no events now (IntakeThreadOptions.refuse): an acknowledged event must survive a power cut. */
export function intakeRefusal(db: Db): string | null {
  const fault = durabilityFault(db);
  return fault && `${fault.message} Nothing was stored: send the events again once kontobro has been restarted. ${fault.hint}`;
}

export function durabilityGauge(db: Db): Gauge {
  return {
    name: "kontobro_database_fsync_failed",
    help: "1 once an fsync of the database's WAL failed: nothing is sent to the targets and no event is taken until kontobro is restarted; else 0.",
    rows: [{ labels: {}, value: durabilityFault(db) ? 1 : 0 }],
  };
}

/** The fault as an alert of each target (the notifier's problems): none of them is sent anything until a restart. */
export function durabilityProblems(db: Db, targets: string[]): Problem[] {
  const fault = durabilityFault(db);
  if (!fault) return [];
  return targets.map((target) => ({
    target,
    kind: "storage",
    subject: "",
    code: "wal_fsync_failed",
    message: fault.message,
    hint: fault.hint,
    detail: { since: fault.since },
  }));
}
