// The agent's HTTP surface: status page, /healthz, /readyz, /metrics and the API.
import { Hono } from "hono";
import { durabilityGauge } from "../durability.ts";
import { alertGauges } from "../notify/gauges.ts";
import { deliveryCounts, pullGauges } from "../queries.ts";
import { adminRoutes } from "./admin-api.ts";
import { apiRoutes } from "./api.ts";
import { renderApiReference } from "./api-reference.ts";
import { sqliteRunner } from "../db/pg/runner.ts";
import { statusOf, type AppContext } from "./context.ts";
import { registerDemoMailUi } from "./demo-mail.ts";
import { exportsRoutes } from "./exports-api.ts";
import { failedRequest, noRoute } from "./failure.ts";
import { registerHealthRoutes } from "./health.ts";
import { inboxRoutes, pullsApiRoutes } from "./inbox-api.ts";
import { uiGuard } from "./ui-guard.ts";
import { registerStatusPages } from "./status-routes.ts";
import { targetWebhookRoutes } from "./target-webhooks.ts";

export function createApp(ctx: AppContext): Hono {
  const app = new Hono();

  // /healthz (liveness) and /readyz (database, durability, migrations, credentials): agent/http/health.ts.
  registerHealthRoutes(app, ctx);

  app.get("/metrics", async (c) => {
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    // Events ever stored: rows are never deleted (retention keeps slim rows), so the count only grows.
    const stored = (ctx.db.$client.query(`SELECT count(*) AS n FROM events`).get() as { n: number }).n;
    const runner = sqliteRunner(ctx.db.$client);
    const targets = ctx.targets.map((t) => t.name);
    const gauges = [...(await pullGauges(runner)), ...(await alertGauges(runner, targets)), durabilityGauge(ctx.db)];
    return c.body(ctx.metrics.render(await deliveryCounts(runner), stored, gauges));
  });

  const guard = uiGuard({ loopback: ctx.listensOnLoopback, apiToken: () => ctx.apiToken });
  app.use("/", guard);
  app.use("/ui/*", guard);
  // The status page, its retry button, the search and the record pages (the same routes serve a hosted tenant's).
  registerStatusPages(app, "", () => statusOf(ctx));

  // The API's OpenAPI description (no token: it holds nothing secret) and its reference page. Its module loads with
  // the first request for either (issue 16: 0.4 MB of the idle agent's RSS).
  const apiDocument = async (url: string) => (await import("./openapi.ts")).openApiDocument(ctx.version, new URL(url).origin);
  app.get("/api/v1/openapi.json", async (c) => c.json(await apiDocument(c.req.url)));
  app.get("/ui/api", async (c) => c.html(renderApiReference(await apiDocument(c.req.url))));
  app.route("/api/v1", apiRoutes(ctx));
  // Pulls: the inbox feed, jobs and run-now, the targets' webhooks (the status page's button: status-routes.ts).
  app.route("/api/v1/inbox", inboxRoutes(ctx));
  app.route("/api/v1/pulls", pullsApiRoutes(ctx));
  app.route("/webhooks", targetWebhookRoutes(ctx));
  // File exports: runs, files, export status, templates (the status page's forms and downloads: status-routes.ts).
  app.route("/api/v1/exports", exportsRoutes(ctx));
  // `kontobro demo` only: the alert mails it built instead of sending them.
  registerDemoMailUi(app, ctx);
  // Hosted mode: the operator's API (tenants), only when its token is configured.
  if (ctx.admin) app.route("/admin/v1", adminRoutes(ctx.admin));

  app.notFound(noRoute);
  app.onError(failedRequest);
  return app;
}
