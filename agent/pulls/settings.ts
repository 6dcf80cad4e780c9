// Values the pull side keeps in the `settings` table (the tenant's, on PostgreSQL), through a SqlRunner: written once
// for both engines. The first writer's value stays; every worker then reads the same one.
import type { SqlRunner } from "../db/pg/runner.ts";

const SETTING = {
  put: `INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING`,
  get: `SELECT value FROM settings WHERE name = ?1`,
};

/** The name of the setting that holds a target's webhook token. */
export const webhookTokenSetting = (target: string) => `webhook_token:${target}`;

/** The setting `name`, created with `make()` if there is none yet. */
export function storedSetting(storage: SqlRunner, name: string, make: () => string): Promise<string> {
  return storage.transaction(async (tx) => {
    await tx.run(SETTING.put, name, make());
    return (await tx.get<{ value: string }>(SETTING.get, name))!.value;
  });
}
