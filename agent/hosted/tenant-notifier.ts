// A hosted tenant's alerts (issue 17 item 3): its Notifier from its own `notifications` section (recipients, SMTP,
// webhook), on the tenant's runner, so the alerts it syncs and the notices it stores and sends are the tenant's rows
// only (row-level security). Every worker runs it for every active tenant; the notifier's round turn and the lease
// on each notice make one round at a time per tenant and one send per notice (agent/notify/index.ts). The mails
// link the tenant's status page, /t/<slug>/ on the installation's [http] public_url.
import type { Connector } from "../../connectors/contract.ts";
import { connectorKinds } from "../../connectors/registry.ts";
import type { AgentConfig, TargetConfig } from "../config.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { Logger } from "../log.ts";
import { type NotificationsConfig, notificationsEnabled } from "../notify/config.ts";
import { credentialExpiryProblems } from "../notify/expiry.ts";
import { Notifier, tenantStatusPageUrl } from "../notify/index.ts";
import type { ScheduledPull } from "../notify/overdue-pulls.ts";
import { VERSION } from "../version.ts";

export interface TenantNotifierOptions {
  tenant: { slug: string };
  runner: SqlRunner;
  notifications: NotificationsConfig;
  /** The tenant's enabled targets. */
  targets: TargetConfig[];
  /** The tenant's connectors: credentials with a known end are told before it (agent/notify/expiry.ts). */
  connectors?: Map<string, Connector>;
  /** The tenant's scheduled pull jobs (its scheduler's). */
  pulls?: ScheduledPull[];
  /** The tenant's psa.webhook_url is set (kontobro sends the pulled items), else its PSA reads the feed. */
  psaWebhook?: boolean;
  config: Pick<AgentConfig, "http" | "agent">;
  log: Logger;
  /** The database's clock as this worker knows it (Worker.now): notice leases are compared across workers. */
  now?: () => number;
}

/** The tenant's notifier, not started; null when its `notifications` names no channel. */
export function tenantNotifier(o: TenantNotifierOptions): Notifier | null {
  if (!notificationsEnabled(o.notifications)) return null;
  return new Notifier({
    storage: o.runner,
    config: o.notifications,
    targets: o.targets.map((t) => ({ name: t.name, title: connectorKinds[t.kind]?.title ?? t.kind, paused: t.paused })),
    ...(o.pulls ? { pulls: o.pulls } : {}),
    psaWebhook: o.psaWebhook === true,
    ...(o.connectors
      ? { problems: () => credentialExpiryProblems(o.connectors!, o.notifications.credential_expiry_warn_days, (o.now ?? Date.now)()) }
      : {}),
    statusUrl: tenantStatusPageUrl(o.notifications, o.config.http, o.tenant.slug),
    log: o.log.child({ component: "notify" }),
    version: VERSION,
    retentionDays: o.config.agent.retention_days,
    ...(o.now ? { now: o.now } : {}),
  });
}
