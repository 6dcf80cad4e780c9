import type { TargetBudget } from "../../connectors/contract.ts";
import type { Db } from "../db/index.ts";
import type { ExportsRuntime } from "../exports/config.ts";
import type { Intake } from "../intake.ts";
import type { Metrics } from "../metrics.ts";
import type { Notifier } from "../notify/index.ts";
import type { DemoMailbox } from "../notify/demo-mailbox.ts";
import type { PullsRuntime } from "../pulls/index.ts";
import type { AdminContext } from "./admin-api.ts";

/** What the HTTP layer needs from the running agent. */
export interface AppContext {
  db: Db;
  intake: Intake;
  metrics: Metrics;
  apiToken: string;
  /** The server is bound to a loopback address (the status page then needs no login). */
  listensOnLoopback: boolean;
  maxBodyBytes: number;
  /** `budgets`: the target's quotas as its connector counts them (Connector.budgets), when it has any. */
  targets: { name: string; kind: string; title: string; paused: boolean; budgets?: () => TargetBudget[] }[];
  retry(id: number): Promise<{ ok: boolean; status?: string }>;
  startedAt: number;
  version: string;
  /** Pulls, inbox and target webhooks (absent in an app built without them). */
  pulls?: PullsRuntime;
  /** File exports: settings, and whether the status page may run them and hand out files. */
  exports?: ExportsRuntime;
  /** Alerts by e-mail and webhook, when [notifications] is configured (agent/notify/). */
  notifier?: Notifier | null;
  /** `kontobro demo`: the alert mails it built instead of sending them (/ui/demo/mail). */
  mailbox?: DemoMailbox;
  /** The admin API (/admin/v1: tenants), on PostgreSQL storage with [admin] token_file or token set. */
  admin?: AdminContext;
}
