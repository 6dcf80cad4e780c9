import type { Db } from "../db/index.ts";
import type { IntakeWriter } from "../intake.ts";
import type { Metrics } from "../metrics.ts";

/** What the HTTP layer needs from the running agent. */
export interface AppContext {
  db: Db;
  intake: IntakeWriter;
  metrics: Metrics;
  apiToken: string;
  maxBodyBytes: number;
  targets: { name: string; kind: string; title: string }[];
  retry(id: number): { ok: boolean; status?: string };
  startedAt: number;
  version: string;
}
