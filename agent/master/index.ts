// Master per entity wired into the agent with two small hooks: the dispatcher's connector is wrapped so pushes of
// customers and products go through MasterSync.push (agent.ts; a hosted tenant's in agent/hosted/tenant-runtime.ts),
// and a pull's master records go through MasterSync.pulled inside the inbox's transaction (pulls/runner.ts →
// Inbox.storeBatch). A connector without master data (no masterEntities in its factory) is returned as it is: the
// PSA is master, as before. Both engines: the store runs on the storage's runner.
import type { Connector } from "../../connectors/contract.ts";
import type { Entity } from "../model.ts";
import { connectorKinds } from "../../connectors/registry.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import { Inbox } from "../pulls/inbox.ts";
import { MasterStore } from "./store.ts";
import { MasterSync } from "./sync.ts";

export { MasterStore } from "./store.ts";
export { MasterSync, masterItem } from "./sync.ts";

const isMasterEntity = (connector: Connector, e: Entity): e is "customer" | "product" =>
  (e === "customer" || e === "product") && !!connector.master?.entities.includes(e);

/**
 * The target's master sync on `storage` (the SQLite agent's runner or a hosted tenant's), or null when its connector
 * offers no master data. `withInbox`: pushes may store a target master's version in the inbox (the dispatcher's;
 * a pull stores its own). `now`: the clock its times are written by (a hosted worker's: the database's).
 */
export function masterSyncFor(
  storage: SqlRunner,
  target: string,
  connector: Connector,
  opts: { withInbox?: boolean; now?: () => number } = {},
): MasterSync | null {
  if (!connector.master) return null;
  return new MasterSync(
    new MasterStore(storage, opts.now),
    target,
    connector.master,
    connectorKinds[connector.kind]?.title ?? connector.kind,
    (opts.withInbox ?? true) ? new Inbox(storage, opts.now) : undefined,
  );
}

/** The connector the dispatcher uses: pushes of master entities go through master per entity. */
export function withMasterGuard(connector: Connector, sync: MasterSync | null): Connector {
  if (!sync) return connector;
  return new Proxy(connector, {
    get(obj, prop) {
      if (prop === "push") {
        return (entity: Entity, payload: any, ctx: Parameters<Connector["push"]>[2]) =>
          isMasterEntity(obj, entity)
            ? sync.push(entity, payload, ctx, (c) => obj.push(entity, payload, c))
            : obj.push(entity, payload, ctx);
      }
      const value = Reflect.get(obj, prop);
      return typeof value === "function" ? value.bind(obj) : value;
    },
  });
}
