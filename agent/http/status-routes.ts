// The status page, its retry and run-now buttons and the record pages, at `${prefix}/` and `${prefix}/ui/…`: the SQLite agent's
// (prefix "") and a hosted tenant's (prefix "/t/:slug", agent/hosted/status-page.ts) are the same routes over a
// StatusContext. The guard in front of them is the caller's (ui-guard.ts; the tenant's in the hosted file).
import type { Context, Env, Hono } from "hono";
import { type StatusContext, withReads } from "./context.ts";
import { renderStatusPage } from "./status-page.ts";
import { renderProgressSection } from "./status-progress.ts";
import { registerExportUi } from "./status-exports.ts";
import { registerPullUi } from "./status-pulls.ts";
import { registerRecordUi, retryReturnPath } from "./status-record.ts";

export function registerStatusPages<E extends Env>(
  app: Hono<E>,
  prefix: string,
  view: (c: Context<E>) => StatusContext | Promise<StatusContext>,
): void {
  app.get(`${prefix}/`, async (c) =>
    c.html(await withReads(await view(c), (s) => renderStatusPage(s, { refresh: c.req.query("refresh") }))),
  );
  // The retry button of the status page and of a record page (the guard makes it same-origin only).
  app.post(`${prefix}/ui/deliveries/:id/retry`, async (c) => {
    const s = await view(c);
    await s.retry(Number(c.req.param("id")));
    return c.redirect(retryReturnPath((await c.req.parseBody()).back, s.base), 303);
  });
  // The "In progress" section alone, for the script that keeps it current while something runs.
  app.get(`${prefix}/ui/progress`, async (c) => c.html(await withReads(await view(c), (s) => renderProgressSection(s))));
  // "Where is my invoice?": the search by number and a page per record.
  registerRecordUi(app, prefix, view);
  // The pulls section's "run now" buttons.
  registerPullUi(app, prefix, view);
  // The exports section's forms and downloads.
  registerExportUi(app, prefix, view);
}
