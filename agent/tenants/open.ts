// The tenants of the configured PostgreSQL storage, for `kontobro tenant`: opened with openStorage (server and
// role checked, migrated under the migration lock, so it is safe beside running workers). The SQLite file has
// exactly one tenant (this installation) and no tenants table: that is a clear error, and nothing is opened.
import type { AgentConfig } from "../config.ts";
import { openStorage, storageOf } from "../storage.ts";
import { TenantStore } from "./store.ts";

export class NoTenantsInSqlite extends Error {
  constructor() {
    super(
      'tenants need PostgreSQL storage: set [storage] url = "postgres://…" in kontobro.toml. With the SQLite file (the default) ' +
        "there is exactly one tenant, this installation, configured by kontobro.toml itself",
    );
    this.name = "NoTenantsInSqlite";
  }
}

export async function openTenantStore(
  config: Pick<AgentConfig, "agent" | "storage">,
): Promise<{ tenants: TenantStore; close(): Promise<void> }> {
  if (storageOf(config).engine !== "postgres") throw new NoTenantsInSqlite();
  const storage = await openStorage(config, { max: 2 });
  if (storage.engine !== "postgres") throw new NoTenantsInSqlite();
  return { tenants: new TenantStore(storage.client), close: () => storage.close() };
}
