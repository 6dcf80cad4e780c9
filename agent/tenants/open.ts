// The tenants of the configured PostgreSQL storage, for `kontobro tenant` and the admin API: the storage URL
// from kontobro.toml, the database migrated (under the migration lock, so it is safe beside running workers).
// SQLite storage has exactly one tenant (this installation) and no tenants table: that is a clear error.
import { SQL } from "bun";
import type { AgentConfig } from "../config.ts";
import { migratePostgres } from "../db/pg/migrate.ts";
import { embeddedMigrations } from "../db/pg/migrations.generated.ts";
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

/** The PostgreSQL URL of [storage] url, or null when the storage is the SQLite file. */
export function postgresUrl(config: AgentConfig): string | null {
  // [storage] url is being added beside this slice (issue 17, step 1c); read through a narrow view until then.
  const url = (config as { storage?: { url?: string } }).storage?.url;
  return url && /^postgres(ql)?:\/\//.test(url) ? url : null;
}

export async function openTenantStore(config: AgentConfig): Promise<{ tenants: TenantStore; close(): Promise<void> }> {
  const url = postgresUrl(config);
  if (!url) throw new NoTenantsInSqlite();
  const client = new SQL({ url, max: 2 });
  try {
    await migratePostgres(client, embeddedMigrations);
  } catch (e) {
    await client.close();
    throw e;
  }
  return { tenants: new TenantStore(client), close: () => client.close() };
}
