// A tenant's life in a hosted installation (issue 17), as an integrator lives it over the years: removed while a worker
// still pushes for it, added again under the same slug, added twice at once. Real parts: a real PostgreSQL server, the
// tenant store, the tenant runtime as a hosted worker starts it (test/hosted-in-process.ts), the e-conomic sandbox.
import { describe, expect, test } from "bun:test";
import { Worker } from "../agent/db/pg/workers.ts";
import { TenantError } from "../agent/tenants/errors.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { customerEvents, hostedInProcess, pausedEconomicTarget } from "./hosted-in-process.ts";

const hosted = hostedInProcess("a tenant's life");
// Paused: no dispatcher of the runtime claims in the background; the test claims through the runtime's outbox, as a
// push under way on a worker holds its lease.
const books = () => pausedEconomicTarget(hosted.sandbox.url, "books");

/** What the store refuses: the TenantError's code and message. */
async function refusal(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    if (e instanceof TenantError) return { code: e.code, message: e.message, hint: e.hint };
    throw e;
  }
  throw new Error("expected a TenantError");
}

describe.skipIf(!!hosted.unavailable)("a tenant's life", () => {
  test("a tenant is not removed while a worker has pushes of it under way; added again, it starts empty", async () => {
    const tenants = new TenantStore(hosted.storage.client);
    const added = await tenants.add({ slug: "acme", config: { targets: [books()] } }, {});
    const worker = await Worker.register(hosted.storage.client);
    const runtime = await hosted.start(added.tenant, worker.id, "e1");
    expect(await runtime.intake.submit(customerEvents(1, 2, 3))).toHaveLength(3);
    // Two pushes under way on this worker (their leases held while their requests are at the target).
    const claimed = await runtime.outbox.claim("books", 2, 60_000, () => true);
    expect(claimed).toHaveLength(2);

    // Disabled, then removed at once, before this worker has handed its pushes back: their rows would go while the
    // requests may still book at the target, nothing left to say so. Refused, naming what is under way.
    await tenants.setState("acme", "disabled");
    const refused = await refusal(tenants.remove("acme"));
    expect(refused.code).toBe("work_under_way");
    expect(refused.message).toContain("2 pushes");
    expect(refused.hint).toContain("kontobro tenant remove acme");
    const runner = hosted.storage.runner(added.tenant.id);
    expect((await runner.get<{ n: number }>("SELECT count(*) AS n FROM deliveries"))!.n).toBe(3);

    // Handed back (its tenant stopped on the worker), but a pull of the tenant still runs there: refused too.
    await runtime.outbox.release(claimed.map((d) => d.id));
    await runner.run(
      "INSERT INTO job_runs (target, stream, trigger, status, started_at, worker) VALUES ('books', 'entries', 'schedule', 'running', 1, ?1)",
      worker.id,
    );
    const pullUnderWay = await refusal(tenants.remove("acme"));
    expect(pullUnderWay.message).toBe('tenant "acme" still has 1 pull under way on a worker; nothing was removed');
    // A pull goes on to its end after the disable (shutdown_grace_ms bounds only how long a worker waits for it): the
    // hint says so, not that it ends within the grace.
    expect(pullUnderWay.hint).toBe(
      "Wait until nothing of it is under way (a pull under way runs to its end, which for a long pull can take a while), then run kontobro tenant remove acme again. `kontobro tenant status acme` shows what is in flight.",
    );
    // Once the pull has ended, the tenant goes with all its rows.
    await runner.run("UPDATE job_runs SET status = 'interrupted', finished_at = 2");
    expect((await tenants.remove("acme")).rows).toBeGreaterThan(0);

    // The old runtime (a worker that has not heard yet) stores and claims nothing of the removed tenant: its claim and
    // its intake fail on the tenant's foreign key (its API answers 401 before that: the token resolves no tenant).
    await expect(runtime.outbox.claim("books", 10, 60_000, () => true)).rejects.toThrow("foreign key");
    await expect(runtime.intake.submit(customerEvents(4))).rejects.toThrow();
    expect((await runner.get<{ n: number }>("SELECT count(*) AS n FROM events"))!.n).toBe(0);

    // Added again under the same slug: another tenant, with none of the old one's rows, and the old token is refused.
    const again = await tenants.add({ slug: "acme", config: { targets: [books()] } }, {});
    expect(again.tenant.id).not.toBe(added.tenant.id);
    expect(await tenants.resolveApiToken(added.apiToken)).toBeNull();
    expect((await tenants.resolveApiToken(again.apiToken))?.id).toBe(again.tenant.id);
    const fresh = hosted.storage.runner(again.tenant.id);
    for (const table of ["events", "records", "deliveries", "links"])
      expect((await fresh.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))!.n).toBe(0);
    await worker.stop();
  }, 60_000);

  test("the same slug added by two calls at once: one tenant, the other call is told the slug is taken", async () => {
    const tenants = new TenantStore(hosted.storage.client);
    const config = { targets: [books()] };
    const results = await Promise.allSettled([
      tenants.add({ slug: "twice", name: "One", config }, {}),
      tenants.add({ slug: "twice", name: "Two", config }, {}),
    ]);
    const done = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
    expect(done).toHaveLength(1);
    expect(failed.map((e) => (e as TenantError).code)).toEqual(["duplicate_slug"]);
    expect((await tenants.list()).filter((t) => t.slug === "twice")).toHaveLength(1);
  }, 60_000);
});
