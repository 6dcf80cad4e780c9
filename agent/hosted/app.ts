// The hosted worker's HTTP surface (PostgreSQL storage, issue 17): /healthz, /readyz, the tenants' API (events,
// status, inbox, pulls and exports, each tenant by its own API token) and the operator's /admin/v1. Any worker answers for any tenant:
// intake requests of one tenant on two workers take turns on the tenant's intake_writer lock.
import { type Context, Hono, type MiddlewareHandler } from "hono";
import type { Metrics } from "../metrics.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { TenantStore } from "../tenants/store.ts";
import { adminRoutes, type AdminContext } from "../http/admin-api.ts";
import { deliveriesRoute, eventsRoute } from "../http/api.ts";
import { exportsApi } from "../http/exports-api.ts";
import { failedRequest, noRoute } from "../http/failure.ts";
import type { ReadinessCheck } from "../http/health.ts";
import { inboxFeedRoutes, pullsRoutes, type PullsSource } from "../http/inbox-api.ts";
import { webhookRoutes } from "../http/target-webhooks.ts";
import { requireTenant, type TenantVariables } from "../http/tenant-auth.ts";
import { Outbox } from "../outbox.ts";
import type { TenantFleet } from "./fleet.ts";
import { tenantStatus } from "./status.ts";
import { tenantPages } from "./status-page.ts";
import type { TenantRuntime } from "./tenant-runtime.ts";

export interface HostedAppContext {
  version: string;
  startedAt: number;
  workerId: number;
  maxBodyBytes: number;
  /** [pulls] webhook_max_body_bytes: the targets' webhook bodies. */
  maxWebhookBodyBytes: number;
  metrics: Metrics;
  tenants: TenantStore;
  fleet: TenantFleet;
  runner(tenant: number): SqlRunner;
  /** The database answers and this worker's row is there. */
  readiness(): Promise<ReadinessCheck[]>;
  /** The operator's API, when [admin] sets its token. */
  admin: AdminContext | null;
}

type Vars = { Variables: TenantVariables & { runtime: TenantRuntime } };

/**
 * The request's tenant runs on this worker as it is now, else 503. Its row, read with the request's token, says which
 * version: one added or changed since this worker's last refresh (another worker's change, whose announcement may
 * still be on its way) is started afresh first, so no event is taken with an older configuration's targets.
 */
function tenantRunning(ctx: HostedAppContext): MiddlewareHandler<Vars> {
  return async (c, next) => {
    const tenant = c.get("tenant");
    let runtime = ctx.fleet.get(tenant.id);
    if (!ctx.fleet.isCurrent(tenant.id, tenant.updatedAt)) {
      await ctx.fleet.refresh();
      runtime = ctx.fleet.get(tenant.id);
    }
    if (!runtime) {
      c.header("Retry-After", "30");
      return c.json(
        {
          error: "tenant_not_running",
          message: `Tenant "${tenant.slug}" does not run on this kontobro worker${ctx.fleet.whyNotRunning(tenant.id) ? `: ${ctx.fleet.whyNotRunning(tenant.id)}` : ""}. Nothing was stored.`,
          hint: "Send the same events again later; repeated ids are stored once. The operator finds the cause in the worker's log.",
        },
        503,
      );
    }
    c.set("runtime", runtime);
    await next();
  };
}

function tenantApi(ctx: HostedAppContext): Hono<Vars> {
  const api = new Hono<Vars>();
  api.use(
    "*",
    requireTenant((token) => ctx.tenants.resolveApiToken(token)),
  );
  api.use("/events", tenantRunning(ctx));
  api.route(
    "/deliveries",
    deliveriesRoute({
      runner: (c) => ctx.runner(c.get("tenant").id),
      // Back to pending through the tenant's Outbox; this worker's dispatcher of the target is woken, the others find it
      // at their next idle poll.
      retry: async (c, id) => {
        const tenant = c.get("tenant").id;
        const r = await new Outbox(ctx.runner(tenant)).retry(id);
        if (r.ok) ctx.fleet.get(tenant)?.notify();
        return r;
      },
      retryNeedingAction: async (c, target) => {
        const tenant = c.get("tenant").id;
        const n = await new Outbox(ctx.runner(tenant)).retryAllNeedingAction(target);
        if (n > 0) ctx.fleet.get(tenant)?.notify();
        return n;
      },
    }),
  );
  api.route("/events", eventsRoute({ maxBodyBytes: ctx.maxBodyBytes, metrics: ctx.metrics, intake: (c) => c.get("runtime").intake }));
  // The tenant's inbox feed, pull jobs and run-now: the SQLite agent's routes on the tenant's pulls on this worker.
  const tenantPulls: PullsSource = {
    pulls: (c) => (c as Context<Vars>).get("runtime").pulls,
    webhookBase: (c) => `/t/${(c as Context<Vars>).get("tenant").slug}/webhooks`,
  };
  for (const path of ["/inbox", "/inbox/*", "/pulls", "/pulls/*"]) api.use(path, tenantRunning(ctx));
  api.route("/inbox", inboxFeedRoutes(tenantPulls));
  api.route("/pulls", pullsRoutes(tenantPulls));
  // The tenant's exports, files and export statuses: the SQLite agent's routes on the tenant's runner (row-level
  // security holds them to its rows), with its own [exports] settings; progress to its running_work rows.
  for (const path of ["/exports", "/exports/*"]) api.use(path, tenantRunning(ctx));
  api.route(
    "/exports",
    exportsApi({
      runner: (c) => ctx.runner((c as Context<Vars>).get("tenant").id),
      settings: (c) => (c as Context<Vars>).get("runtime").exports,
      progressIn: null,
      // Progress to the tenant's running_work rows: its page on any worker shows the export under way.
      work: (c) => (c as Context<Vars>).get("runtime").work,
      // The delivery claim's lease is compared with other workers' claims: the database's clock (Worker.now).
      clock: (c) => (c as Context<Vars>).get("runtime").now,
    }),
  );
  api.get("/status", async (c) => {
    const tenant = c.get("tenant");
    const runtime = ctx.fleet.get(tenant.id);
    const notRunning = runtime ? undefined : (ctx.fleet.whyNotRunning(tenant.id) ?? "not started on this worker yet");
    c.header("Cache-Control", "no-store");
    return c.json(
      await tenantStatus(ctx.runner(tenant.id), {
        tenant: tenant.slug,
        worker: ctx.workerId,
        targets: runtime?.targets ?? [],
        ...(notRunning ? { notRunning } : {}),
      }),
    );
  });
  return api;
}

/**
 * /t/:slug/webhooks/<kind>/<token>: a target's webhook of the tenant named in the path, checked against that tenant's
 * webhook tokens only (another tenant's token is as wrong as any); the hint starts a pull on this worker.
 */
function tenantWebhooks(ctx: HostedAppContext): Hono<Vars> {
  const hooks = new Hono<Vars>();
  hooks.use("*", async (c, next) => {
    const slug = c.req.param("slug") ?? "";
    const tenant = /^[a-z0-9-]{1,40}$/.test(slug) ? await ctx.tenants.get(slug) : null;
    if (!tenant)
      return c.json(
        {
          error: "not_found",
          message: `There is no tenant "${slug.slice(0, 40)}" on this kontobro installation.`,
          hint: "Give the target the webhook URL GET /api/v1/pulls lists (webhooks) with the tenant's API token.",
        },
        404,
      );
    if (tenant.state !== "active")
      return c.json(
        {
          error: "tenant_disabled",
          message: `Tenant "${tenant.slug}" is disabled: its webhooks start no pulls.`,
          hint: "Ask the operator of this kontobro installation to enable it again (kontobro tenant enable).",
        },
        403,
      );
    c.set("tenant", { id: tenant.id, slug: tenant.slug, state: tenant.state, updatedAt: tenant.updatedAt });
    await next();
  });
  hooks.use("*", tenantRunning(ctx));
  hooks.route("/", webhookRoutes({ pulls: (c) => (c as Context<Vars>).get("runtime").pulls, maxBodyBytes: ctx.maxWebhookBodyBytes }));
  return hooks;
}

/**
 * Adding, disabling or enabling a tenant here takes effect on this worker before the answer; the others refresh when
 * they hear its announcement (TENANTS_CHANNEL), sent at its commit.
 */
function refreshAfterChange(fleet: TenantFleet): MiddlewareHandler {
  return async (c, next) => {
    await next();
    if (c.req.method !== "GET" && c.res.status < 300) await fleet.refresh();
  };
}

export function createHostedApp(ctx: HostedAppContext): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    c.header("Cache-Control", "no-store");
    return c.json({
      status: "ok",
      version: ctx.version,
      worker: ctx.workerId,
      uptimeSeconds: Math.round((Date.now() - ctx.startedAt) / 1000),
    });
  });
  app.get("/readyz", async (c) => {
    c.header("Cache-Control", "no-store");
    const checks = await ctx.readiness();
    const ready = checks.every((x) => x.ok);
    return c.json({ status: ready ? "ready" : "not_ready", version: ctx.version, worker: ctx.workerId, checks }, ready ? 200 : 503);
  });
  // This worker's own figures (process, and what it counted since its start over all tenants); no tenant's data:
  // each tenant's metrics are /t/<slug>/metrics (agent/hosted/status-page.ts).
  app.get("/metrics", async (c) => {
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(
      ctx.metrics.renderWorker([
        { name: "kontobro_worker_tenants", help: "Tenants this worker runs now.", rows: [{ labels: {}, value: ctx.fleet.size }] },
        {
          name: "kontobro_worker_tenants_not_running",
          help: "Active tenants this worker does not run (their stored configuration is not valid, or their start failed): nothing is delivered for them here. Their status page says why.",
          rows: [{ labels: {}, value: ctx.fleet.notRunning }],
        },
      ]),
    );
  });
  app.route("/api/v1", tenantApi(ctx));
  app.route("/t/:slug/webhooks", tenantWebhooks(ctx));
  // Each tenant's status page and record pages: /t/:slug/ and /t/:slug/ui/* (agent/hosted/status-page.ts).
  app.route("/", tenantPages(ctx));
  if (ctx.admin) {
    app.use("/admin/v1/*", refreshAfterChange(ctx.fleet));
    app.route("/admin/v1", adminRoutes(ctx.admin));
  }
  app.notFound(noRoute);
  app.onError(failedRequest);
  return app;
}
