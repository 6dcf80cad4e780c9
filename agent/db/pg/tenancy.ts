// The names tenancy rests on in PostgreSQL (and the oldest server it runs on), kept apart from the schema (mirror.ts loads drizzle's pg-core) so the
// SQL runner and the dialect translator load without it: a SQLite agent never loads PostgreSQL's modules.

/** The setting a transaction names its tenant in (SET LOCAL kontobro.tenant = '7'). */
export const TENANT_SETTING = "kontobro.tenant";
/** The column every tenant table has, first in every key and index. */
export const TENANT_COLUMN = "tenant_id";

/** The oldest PostgreSQL kontobro runs on. */
export const MIN_SERVER_VERSION = 13;
