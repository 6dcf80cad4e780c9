// Which deliveries the outbox's partial indexes hold (agent/db/schema.ts), as the SQL that asks for them. Done rows are
// most of a long-running database and only a few queries read them, so the indexes of open work leave them out: a
// delivery that is done leaves those indexes with one delete each, instead of moving within them (issue 16).
// SQLite uses a partial index only for a query whose WHERE has the index's terms as written (a bound status, or
// `status = 'pending'`, does not prove `status <> 'done'` to it): a query reading these rows says so with these texts,
// AND-ed into its WHERE. PostgreSQL proves it either way.

/** Not delivered: the rows of deliveries_ready and deliveries_status_id. */
export const NOT_DONE = "status <> 'done'";

/**
 * Not finished (neither done nor superseded): deliveries_record's key expression equal to FALSE (an index range of it on
 * both engines, which match the expression as written). Implies NOT_DONE (it contains its text).
 */
export const OPEN = `${NOT_DONE} AND (status = 'done' OR status = 'superseded') = FALSE`;
