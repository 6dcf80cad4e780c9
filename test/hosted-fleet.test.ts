// The tenants a hosted worker runs (agent/hosted/fleet.ts), with the tenant list and the start of a tenant given as
// plain functions: active tenants start, disabled and removed ones stop, a changed one starts afresh, a stored
// configuration that is not valid is remembered until the tenant changes, any other failure is tried again, calls
// waiting to refresh share one, and nothing starts after stop().
import { describe, expect, test } from "bun:test";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { TenantFleet } from "../agent/hosted/fleet.ts";
import type { TenantRuntime } from "../agent/hosted/tenant-runtime.ts";
import { silentLogger } from "../agent/log.ts";
import { TenantError } from "../agent/tenants/errors.ts";
import type { Tenant } from "../agent/tenants/store.ts";

const tenant = (id: number, over: Partial<Tenant> = {}): Tenant => ({
  id,
  slug: `t${id}`,
  name: `T${id}`,
  state: "active",
  config: {},
  targets: [],
  createdAt: 1,
  updatedAt: 1,
  ...over,
});

function fleetOver(list: () => Tenant[], start: (t: Tenant) => void = () => {}) {
  const events: string[] = [];
  let lists = 0;
  const fleet = new TenantFleet({
    listTenants: async () => {
      lists++;
      return list();
    },
    runner: () => ({}) as SqlRunner,
    start: async (t) => {
      start(t);
      events.push(`start ${t.slug}@${t.updatedAt}`);
      return {
        tenant: { id: t.id, slug: t.slug },
        version: t.updatedAt,
        stop: async () => void events.push(`stop ${t.slug}@${t.updatedAt}`),
      } as TenantRuntime;
    },
    log: silentLogger,
  });
  return { fleet, events, lists: () => lists };
}

describe("TenantFleet", () => {
  test("starts the active tenants, stops disabled and removed ones, and starts a changed one afresh", async () => {
    let tenants = [tenant(1), tenant(2), tenant(3, { state: "disabled" })];
    const { fleet, events } = fleetOver(() => tenants);
    await fleet.refresh();
    expect(events).toEqual(["start t1@1", "start t2@1"]);
    expect([fleet.get(1)?.tenant.slug, fleet.get(3)]).toEqual(["t1", undefined]);

    tenants = [tenant(1, { state: "disabled" }), tenant(2, { updatedAt: 2 }), tenant(3)];
    events.length = 0;
    await fleet.refresh();
    expect(events).toEqual(["stop t1@1", "stop t2@1", "start t2@2", "start t3@1"]);

    tenants = [tenant(3)];
    events.length = 0;
    await fleet.refresh();
    expect(events).toEqual(["stop t2@2"]);
    expect(fleet.size).toBe(1);
  });

  test("a stored configuration that is not valid is remembered, with why, until the tenant changes; other failures are tried again", async () => {
    let tenants = [tenant(1), tenant(2)];
    let databaseDown = true;
    const { fleet, events } = fleetOver(
      () => tenants,
      (t) => {
        if (t.id === 1 && t.updatedAt === 1)
          throw new TenantError("invalid_config", "the tenant's configuration has 1 problem(s)", "fix it", ["targets[0].kind: unknown"]);
        if (t.id === 2 && databaseDown) throw new Error("connection refused");
      },
    );
    await fleet.refresh();
    expect(events).toEqual([]);
    expect(fleet.notRunning).toBe(2);
    expect(fleet.whyNotRunning(1)).toBe(
      "its stored configuration is not valid: the tenant's configuration has 1 problem(s); targets[0].kind: unknown",
    );
    expect(fleet.whyNotRunning(2)).toBeUndefined();

    databaseDown = false;
    await fleet.refresh();
    expect(events).toEqual(["start t2@1"]);
    expect(fleet.get(1)).toBeUndefined();
    expect(fleet.notRunning).toBe(1);

    tenants = [tenant(1, { updatedAt: 2 }), tenant(2)];
    await fleet.refresh();
    expect(events).toEqual(["start t2@1", "start t1@2"]);
    expect(fleet.whyNotRunning(1)).toBeUndefined();
    expect(fleet.notRunning).toBe(0);
  });

  test("calls made while a refresh waits share it; after stop() nothing starts again", async () => {
    const { fleet, events, lists } = fleetOver(() => [tenant(1)]);
    const first = fleet.refresh();
    const [second, third] = [fleet.refresh(), fleet.refresh()];
    expect(second).toBe(first);
    expect(third).toBe(first);
    await Promise.all([first, second, third]);
    expect(lists()).toBe(1);
    await fleet.stop();
    await fleet.refresh();
    expect(events).toEqual(["start t1@1", "stop t1@1"]);
    expect(fleet.size).toBe(0);
  });
});
