// A hosted tenant's status page (issue 17 item 3): `/t/:slug/` and its record pages, search, retry and run-now buttons
// under `/t/:slug/ui/*`, and its metrics at `/t/:slug/metrics`, on any worker. The same routes and rendering as the
// SQLite agent's page (agent/http/status-routes.ts) over the tenant's runner, so row-level security holds every
// statement to the tenant's rows, and every link of the pages stays under the tenant's prefix. Who may open it: the
// tenant (HTTP Basic with the slug as the user name and its API token as the password, which a browser asks for; or its
// token as a Bearer token) and the operator (the admin token, as either); anyone else gets 401. Posts must come from the
// page itself, as on SQLite (ui-guard.ts).
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { connectorKinds } from "../../connectors/registry.ts";
import { bearerToken, sameSecret } from "../http/auth.ts";
import type { StatusContext, StatusTarget } from "../http/context.ts";
import { registerStatusPages } from "../http/status-routes.ts";
import { isCrossSite } from "../http/ui-guard.ts";
import { Outbox } from "../outbox.ts";
import { liveWorkerIds, sqlWorkBoard } from "../running-work-sql.ts";
import { renderTenantMetrics } from "../tenant-metrics.ts";
import type { TenantState } from "../tenants/store.ts";
import type { HostedAppContext } from "./app.ts";

/** The tenant whose page a request opens, once the guard let it through. */
type PageVars = { Variables: { pageTenant: { id: number; slug: string; state: TenantState; updatedAt: number } } };

/** The routes of every tenant's pages; mounted at the hosted app's root. */
export function tenantPages(ctx: HostedAppContext): Hono<PageVars> {
  const app = new Hono<PageVars>();
  const guard = tenantPageGuard(ctx);
  // The page is `/t/<slug>/`: its links are written from there.
  app.get("/t/:slug", (c) => c.redirect(`${baseOf(c.req.param("slug"))}/`, 301));
  app.use("/t/:slug/", guard);
  app.use("/t/:slug/ui/*", guard);
  registerStatusPages(app, "/t/:slug", (c) => tenantView(ctx, c.get("pageTenant")));
  // The tenant's Prometheus metrics, from the database: the same figures whichever worker answers the scrape.
  app.use("/t/:slug/metrics", guard);
  app.get("/t/:slug/metrics", async (c) => {
    const tenant = c.get("pageTenant");
    const targets = ctx.fleet.get(tenant.id)?.targets ?? (await ctx.tenants.get(tenant.slug))?.targets ?? [];
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    c.header("Cache-Control", "no-store");
    return c.body(
      await renderTenantMetrics(
        ctx.runner(tenant.id),
        targets.map((t) => t.name),
      ),
    );
  });
  return app;
}

const baseOf = (slug: string) => `/t/${encodeURIComponent(slug)}`;

/** What a request's Authorization header offers: a Bearer token, or HTTP Basic's user name and password. */
export function credentialsOf(header: string | undefined): { user: string | null; secret: string } | null {
  const bearer = bearerToken(header);
  if (bearer) return { user: null, secret: bearer };
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

function tenantPageGuard(ctx: HostedAppContext): MiddlewareHandler<PageVars> {
  return async (c, next) => {
    const slug = c.req.param("slug")!;
    const given = credentialsOf(c.req.header("authorization"));
    let tenant: PageVars["Variables"]["pageTenant"] | null = null;
    if (given && ctx.admin && sameSecret(given.secret, ctx.admin.token)) {
      // The operator opens any tenant's page, a disabled one's too.
      const found = await ctx.tenants.get(slug);
      if (!found)
        return c.text(`There is no tenant "${slug}". \`kontobro tenant list\` (or GET /admin/v1/tenants) shows the tenants.`, 404);
      tenant = found;
    } else if (given) {
      const found = await ctx.tenants.resolveApiToken(given.secret);
      // Another tenant's token is a wrong token here: the same 401, saying nothing of who it belongs to.
      if (found && found.slug === slug && (given.user === null || given.user === slug)) {
        if (found.state !== "active")
          return c.text(
            `Tenant "${slug}" is disabled: its status page is closed, as its API is. Ask the operator of this kontobro installation to enable it again (kontobro tenant enable).`,
            403,
          );
        tenant = found;
      }
    }
    if (!tenant) return unauthorized(c, slug);
    if (await isCrossSite(c)) return c.text("Cross-site requests are refused.", 403);
    c.set("pageTenant", { id: tenant.id, slug: tenant.slug, state: tenant.state, updatedAt: tenant.updatedAt });
    await next();
  };
}

function unauthorized(c: Context, slug: string) {
  // A realm per tenant: a browser keeps each tenant's login apart.
  c.header("WWW-Authenticate", `Basic realm="kontobro tenant ${slug.replace(/[^a-z0-9-]/g, "")}", charset="UTF-8"`);
  return c.text(
    `Log in with the user name ${JSON.stringify(slug)} and the tenant's API token as the password (or send Authorization: Bearer <the tenant's API token>).`,
    401,
  );
}

/** The tenant's page as this worker sees it: its runner, its targets as this worker runs them, the retry through its Outbox. */
async function tenantView(ctx: HostedAppContext, tenant: PageVars["Variables"]["pageTenant"]): Promise<StatusContext> {
  // A tenant added or changed since this worker's last refresh is started first, so the page shows its targets as they are.
  if (!ctx.fleet.isCurrent(tenant.id, tenant.updatedAt)) await ctx.fleet.refresh();
  const runtime = ctx.fleet.get(tenant.id);
  const runner = ctx.runner(tenant.id);
  const title = (kind: string) => connectorKinds[kind]?.title ?? kind;
  let targets: StatusTarget[];
  let notRunning: string | undefined;
  if (runtime) {
    targets = runtime.targets.map((t) => ({ name: t.name, kind: t.kind, title: title(t.kind), paused: !t.sending, held: t.held }));
  } else {
    notRunning =
      tenant.state !== "active"
        ? "it is disabled (kontobro tenant enable starts it again)"
        : (ctx.fleet.whyNotRunning(tenant.id) ?? "it has not started on this worker yet");
    // Its deliveries are still shown, under the targets its stored configuration names.
    const stored = (await ctx.tenants.get(tenant.slug))?.targets ?? [];
    targets = stored.map((t) => ({
      name: t.name,
      kind: t.kind,
      title: title(t.kind),
      paused: true,
      held: "the tenant does not run on this worker",
    }));
  }
  return {
    runner,
    base: baseOf(tenant.slug),
    version: ctx.version,
    startedAt: ctx.startedAt,
    targets,
    // Back to pending through the tenant's Outbox; this worker's dispatcher of the target is woken, the others find it at
    // their next idle poll.
    retry: async (id) => {
      const r = await new Outbox(runner).retry(id);
      ctx.fleet.get(tenant.id)?.notify();
      return r;
    },
    // Its pull jobs, inbox and webhook addresses as this worker runs them; "run now" starts the pull here.
    ...(runtime ? { pulls: runtime.pulls } : {}),
    // Its exports with its own [exports] settings; the page has a login, so its forms and downloads are on.
    ...(runtime ? { exports: { settings: runtime.exports, uiActions: true, clock: runtime.now } } : {}),
    // Its exports and pulls under way on any worker (running_work), and its queues catching up (its settings rows).
    inProgress: { work: runtime?.work ?? sqlWorkBoard(runner, { worker: null, liveWorkers: liveWorkerIds }) },
    // How its alerts go as this worker runs them; its notices waiting or failed are its rows, whichever worker sends.
    notificationChannels: runtime?.notificationChannels ?? [],
    hosted: { tenant: tenant.slug, worker: ctx.workerId, ...(notRunning ? { notRunning } : {}) },
    // A page's reads in one transaction of the tenant: one connection of the pool, not one per statement.
    readTogether: (fn) => runner.transaction(fn),
  };
}
