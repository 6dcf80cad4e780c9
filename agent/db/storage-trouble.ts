// SQLite's words for a database that cannot be written, in one place: intake's 503, /readyz's hints and a pull's
// problem name the cause by them. By the message alone: the intake writer's thread passes on nothing else.
// "database disk image is malformed" and "disk I/O error" say "disk" too, and are no full disk.

export type StorageTrouble = "full" | "read-only" | "damaged" | "io";

/** What the error says about the database's storage, or null when it is about something else (busy, a bug). */
export function storageTrouble(e: unknown): StorageTrouble | null {
  const message = e instanceof Error ? e.message : String(e);
  if (/disk is full|SQLITE_FULL|no space/i.test(message)) return "full";
  if (/readonly|read-only/i.test(message)) return "read-only";
  if (/malformed|SQLITE_CORRUPT|not a database/i.test(message)) return "damaged";
  if (/I\/O error|SQLITE_IOERR/i.test(message)) return "io";
  return null;
}
