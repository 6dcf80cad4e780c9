// A tenant's configuration changed while its events are on their way (review finding 8): a request whose tenant was
// resolved before the change committed used to be stored after it by the runtime of the old configuration, making
// deliveries for the old targets that the change's warning did not count, and none for the new target: an invoice
// never booked there. Now the change takes the tenant's intake turn (TenantStore.setConfig), and the tenant runtime's
// intake stores a group only while the tenant's version is the one it runs; otherwise 503, nothing stored, and the
// resend is taken by the new runtime. Real parts: a real PostgreSQL server, the tenant store, the tenant runtime as a
// hosted worker starts it (agent/hosted/tenant-runtime.ts), the e-conomic sandbox on loopback.
import { describe, expect, test } from "bun:test";
import { Worker } from "../agent/db/pg/workers.ts";
import { takeIntakeTurn } from "../agent/intake-store.ts";
import { IntakeUnavailable } from "../agent/intake.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { customerEvents, hostedInProcess, pausedEconomicTarget } from "./hosted-in-process.ts";

const hosted = hostedInProcess("a tenant's configuration changed during intake");
const target = (name: string) => pausedEconomicTarget(hosted.sandbox.url, name);

describe.skipIf(!!hosted.unavailable)("a tenant's configuration changed while its events are on their way", () => {
  test("the old runtime stores nothing once the change has committed; the change waits for a group under way", async () => {
    const tenants = new TenantStore(hosted.storage.client);
    const { tenant } = await tenants.add({ slug: "acme", config: { targets: [target("old-books")] } }, {});
    const worker = await Worker.register(hosted.storage.client);
    const runner = hosted.storage.runner(tenant.id);
    const runtime = await hosted.start(tenant, worker.id, "e1");
    expect(await runtime.intake.submit(customerEvents(1))).toHaveLength(1);

    // A group under way holds the tenant's intake turn: the change waits for it, so what it stored is counted.
    let letGo!: () => void;
    const held = new Promise<void>((go) => (letGo = go));
    let turnTaken!: () => void;
    const taken = new Promise<void>((ok) => (turnTaken = ok));
    const underWay = runner.transaction(async (tx) => {
      await takeIntakeTurn(tx);
      turnTaken();
      await held;
    });
    await taken;
    let changed = false;
    const change = tenants.setConfig("acme", { targets: [target("new-books")] }, {}).then((r) => {
      changed = true;
      return r;
    });
    await Bun.sleep(300);
    expect(changed).toBe(false);
    letGo();
    await underWay.catch(() => {});
    const { warnings } = await change;
    expect(warnings.join(" ")).toContain("old-books");

    // The old runtime still runs here (the worker has not heard of the change yet): it stores nothing now.
    const refused = await runtime.intake.submit(customerEvents(2)).catch((e) => e);
    expect(refused).toBeInstanceOf(IntakeUnavailable);
    expect((refused as IntakeUnavailable).message).toContain("nothing was stored");
    const stored = await runner.all<{ key: string; target: string }>(
      "SELECT e.key, d.target FROM events e JOIN deliveries d ON d.event_seq = e.seq",
    );
    expect(stored).toEqual([{ key: "1", target: "old-books" }]);

    // The new runtime (the configuration as it is now) takes the resend.
    const now = (await tenants.get("acme"))!;
    const fresh = await hosted.start(now, worker.id, "e2");
    expect(await fresh.intake.submit(customerEvents(2))).toHaveLength(1);
    expect(await runner.all("SELECT d.target FROM events e JOIN deliveries d ON d.event_seq = e.seq WHERE e.key = '2'")).toEqual([
      { target: "new-books" },
    ]);
    await worker.stop();
  }, 60_000);
});
