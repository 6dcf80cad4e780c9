// A tenant's configuration changed while a worker still runs the old one (issue 17): its runtime claimed the tenant's
// pending deliveries and pushed them with the old configuration, e.g. to the account a target pointed at before. Now a
// hosted runtime's claims lease nothing once the tenant's version is no longer the one it runs (Outbox's claimGuard,
// wired in agent/hosted/tenant-runtime.ts), while the runtime of the current version claims them. Real parts: a real
// PostgreSQL server, the tenant store, the tenant runtime as a hosted worker starts it, the e-conomic sandbox.
import { describe, expect, test } from "bun:test";
import { Worker } from "../agent/db/pg/workers.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { customerEvents, hostedInProcess, pausedEconomicTarget } from "./hosted-in-process.ts";

const hosted = hostedInProcess("claims after a tenant's configuration changed");
// Paused: no dispatcher of the runtime claims in the background; the test claims through the runtime's outbox.
const books = (grant: string) => pausedEconomicTarget(hosted.sandbox.url, "books", grant);

describe.skipIf(!!hosted.unavailable)("claims after a tenant's configuration changed", () => {
  test("the runtime of the old version claims nothing; the runtime of the current version claims the deliveries", async () => {
    const tenants = new TenantStore(hosted.storage.client);
    const { tenant } = await tenants.add({ slug: "acme", config: { targets: [books("demo-agreement-grant")] } }, {});
    const worker = await Worker.register(hosted.storage.client);
    const runner = hosted.storage.runner(tenant.id);
    const start = async (epoch: string) => hosted.start((await tenants.get("acme"))!, worker.id, epoch);
    const old = await start("e1");
    expect(await old.intake.submit(customerEvents(1, 2))).toHaveLength(2);

    // Pointed at another account (no ids held there yet: recorded, nothing else). The old runtime still runs here
    // (its worker has not heard of the change): it leases nothing.
    await tenants.setConfig("acme", { targets: [books("another-agreement-grant")] }, {});
    expect(await old.outbox.claim("books", 10, 30_000, () => true)).toEqual([]);
    const pending = "SELECT status, lease_owner AS owner FROM deliveries WHERE target = 'books' ORDER BY id";
    expect(await runner.all(pending)).toEqual([
      { status: "pending", owner: null },
      { status: "pending", owner: null },
    ]);

    // The runtime of the configuration as it is now claims them.
    const fresh = await start("e2");
    const claimed = await fresh.outbox.claim("books", 10, 30_000, () => true);
    expect(claimed.map((d) => d.key).sort()).toEqual(["1", "2"]);
    expect(await runner.all(pending)).toEqual([
      { status: "in_flight", owner: worker.id },
      { status: "in_flight", owner: worker.id },
    ]);
    await worker.stop();
  }, 60_000);

  test("a claim during a change under way claims nothing and waits for nothing; after a change given up it claims", async () => {
    const tenants = new TenantStore(hosted.storage.client);
    const { tenant } = await tenants.add({ slug: "gamma", config: { targets: [books("demo-agreement-grant")] } }, {});
    const worker = await Worker.register(hosted.storage.client);
    const runtime = await hosted.start(tenant, worker.id, "e1");
    expect(await runtime.intake.submit(customerEvents(1))).toHaveLength(1);
    // A change holds the tenant's row (TenantStore.setConfig locks it FOR UPDATE first), then is given up.
    let letGo!: () => void;
    const held = new Promise<void>((go) => (letGo = go));
    let locked!: () => void;
    const lockTaken = new Promise<void>((ok) => (locked = ok));
    const change = hosted.storage
      .runner(tenant.id)
      .transaction(async (tx) => {
        await tx.get("SELECT updated_at FROM tenants WHERE id = ?1 FOR UPDATE", tenant.id);
        locked();
        await held;
        throw new Error("given up");
      })
      .catch((e: Error) => e.message);
    await lockTaken;
    expect(await runtime.outbox.claim("books", 10, 30_000, () => true)).toEqual([]);
    letGo();
    expect(await change).toBe("given up");
    expect((await runtime.outbox.claim("books", 10, 30_000, () => true)).map((d) => d.key)).toEqual(["1"]);
    await worker.stop();
  }, 60_000);

  test("a change waits for a claim under way that read the old version, then takes its leases back", async () => {
    const tenants = new TenantStore(hosted.storage.client);
    const { tenant } = await tenants.add({ slug: "beta", config: { targets: [books("demo-agreement-grant")] } }, {});
    const worker = await Worker.register(hosted.storage.client);
    const runner = hosted.storage.runner(tenant.id);
    const old = await hosted.start(tenant, worker.id, "e1");
    expect(await old.intake.submit(customerEvents(1))).toHaveLength(1);

    // A dispatcher round of the old runtime has claimed (the version was still its own) and not yet committed.
    let letGo!: () => void;
    const held = new Promise<void>((go) => (letGo = go));
    let leased!: (n: number) => void;
    const claimedInRound = new Promise<number>((ok) => (leased = ok));
    const round = runner.transaction(async (tx) => {
      leased((await old.outbox.completeAndClaim(tx, [], "books", 10, 30_000, () => true)).length);
      await held;
    });
    expect(await claimedInRound).toBe(1);
    let changed = false;
    const change = tenants.setConfig("beta", { targets: [books("another-agreement-grant")] }, {}).then((r) => {
      changed = true;
      return r;
    });
    await Bun.sleep(300);
    expect(changed).toBe(false);
    letGo();
    await round;
    await change;
    // The round's lease committed first; the change then took it back: its push's answer writes nothing, and the
    // delivery goes again, looked up first, to the account the target points at now.
    expect(await runner.all("SELECT status, uncertain, lease_owner AS owner FROM deliveries WHERE target = 'books'")).toEqual([
      { status: "pending", uncertain: 1, owner: null },
    ]);
    await worker.stop();
  }, 60_000);
});
