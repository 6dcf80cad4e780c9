// `kontobro tenant status SLUG [--json] [--watch]`: `kontobro status` for one tenant of a hosted installation, read from
// PostgreSQL through the tenant's runner (row-level security: its rows only): deliveries per target, items for its PSA,
// what is in progress on any of its workers (queues catching up, exports and pulls: running_work), what needs action.
// --watch follows what is in progress until it is over, as for a single installation.
import type { AgentConfig } from "../config.ts";
import { liveWorkerIds, sqlWorkBoard } from "../running-work-sql.ts";
import { TenantError } from "../tenants/errors.ts";
import type { TenantStore } from "../tenants/store.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { printStatus, statusReport } from "./status.ts";
import { watchProgress } from "./status-watch.ts";

export const tenantStatus = (
  withTenants: (
    configFile: string | undefined,
    path: string,
    fn: (tenants: TenantStore, config: AgentConfig) => Promise<number>,
  ) => Promise<number>,
) =>
  defineCommand({
    name: "status",
    args: "SLUG",
    summary: "a tenant's deliveries per target, what is in progress and what needs action (--json, --watch)",
    description:
      "As `kontobro status` for a single installation, for one tenant: its deliveries per target and state, items\n" +
      "waiting for its PSA, what is in progress on any worker (a queue catching up after a burst, exports and pulls\n" +
      "under way), and up to 50 deliveries that need action with how to fix them. --watch shows only what is in\n" +
      "progress, on one line, until it is all over.",
    options: {
      json: { type: "boolean", help: "machine-readable: {counts, needsAction, inbox, progress}" },
      watch: { type: "boolean", help: "follow what is in progress until it is over" },
      ...CONFIG_OPTION,
    },
    positionals: [1, 1],
    examples: [
      "kontobro tenant status acme",
      ["kontobro tenant status acme --watch", "e.g. while the tenant's first sync goes to its targets"],
    ],
    run: ({ values, positionals: [slug], path }) =>
      withTenants(values.config, path, async (tenants) => {
        const tenant = await tenants.get(slug!);
        if (!tenant) throw new TenantError("not_found", `there is no tenant "${slug}"`, "`kontobro tenant list` shows the tenants.");
        const runner = tenants.runnerOf(tenant);
        const source = {
          runner,
          work: sqlWorkBoard(runner, { worker: null, liveWorkers: liveWorkerIds }),
          targets: tenant.targets.map((t) => t.name),
        };
        if (values.watch) return watchProgress(source);
        const report = await statusReport(source);
        if (values.json) console.log(JSON.stringify(report, null, 2));
        else await printStatus(runner, report);
        return 0;
      }),
  });
