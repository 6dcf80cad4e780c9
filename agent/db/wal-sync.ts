// Write transactions whose fsync does not hold up the event loop (issue 16). With synchronous=FULL the thread
// that commits stands still for the fsync, and with it every push's answer, intake and the status page. Here the
// transaction commits with synchronous=NORMAL (its pages written to the WAL, not yet synced) and the WAL file is
// then fsynced on a thread of Bun's pool while the event loop goes on. Once that fsync returns the transaction
// is as durable as after a synchronous=FULL commit (the WAL is append-only, so the fsync also covers every
// transaction committed before it). Whoever acts on what the transaction wrote (sends a push under its lease,
// reports an outcome) waits for `durable` first. Every other transaction on the connection commits with
// synchronous=FULL as before: the setting is restored as soon as this one has committed.
import type { Database } from "bun:sqlite";
import { closeSync, fsync, openSync } from "node:fs";

const FULL = 2;
const DURABLE = Promise.resolve();
/** Opening the WAL file for a round's fsync: tries, and the pause before the next (times the try's number). */
const OPEN_ATTEMPTS = 3;
const OPEN_RETRY_MS = 20;

/**
 * A failed fsync of the WAL (see WalSync.sync): from then on nothing more is made durable on the connection, so the
 * dispatchers send nothing until kontobro is restarted. /readyz, /metrics, the status page and intake all read this.
 */
export interface WalFailure {
  /** When the fsync failed (epoch ms). */
  at: number;
  error: Error;
}

/** What an operator does about a WalFailure. */
export const WAL_FAILURE_HINT =
  "Check the disk (kernel log, free space), then restart kontobro: SQLite recovers the database from the disk.";

/** The failure in a sentence: what happened, and what it stops. */
export const describeWalFailure = (f: WalFailure) =>
  `An fsync of the database's WAL failed at ${new Date(f.at).toISOString()} (${f.error.message}): nothing written since can be made durable, so nothing is sent to the targets until kontobro is restarted.`;

/**
 * Thrown once an fsync of the WAL has failed (by that fsync, and by every later durable transaction): it lasts until
 * kontobro is restarted, so whoever retries on errors (the dispatcher) says it once, not at every try.
 */
export class WalFailedError extends Error {
  override readonly name = "WalFailedError";
}

/** Whether `e`, or an error it was caused by, is a WalFailedError. */
export const causedByWalFailure = (e: unknown): boolean =>
  e instanceof WalFailedError || (e instanceof Error && e.cause !== undefined && causedByWalFailure(e.cause));

export class WalSync {
  /** The WAL file, or null when there is none to sync (an in-memory database, or a connection not at FULL). */
  private readonly wal: string | null;

  private readonly totalChanges;
  /** The WAL file's descriptor, opened at the first sync and kept: opening it for every round cost more than the fsync's dispatch. */
  private fd: number | null = null;
  /** The last sync asked for: each waits for the one before it (one fsync at a time, see sync). */
  private last: Promise<void> = DURABLE;
  /** Set by a failed fsync: from then on nothing more is made durable on this connection (see sync). */
  private failed: WalFailure | null = null;

  constructor(private readonly client: Database) {
    this.totalChanges = client.prepare("SELECT total_changes() AS n");
    // SQLite's own path of the file (symbolic links resolved; "" in memory): its WAL is beside that one, not beside a
    // symbolic link the connection was opened by (there, opening "-wal" failed and no commit was ever durable).
    const main = (client.prepare("PRAGMA database_list").all() as { name: string; file: string }[]).find((d) => d.name === "main");
    // prepare, not query: a cached statement would answer with the setting it was compiled under.
    const full = (client.prepare("PRAGMA synchronous").get() as { synchronous: number }).synchronous === FULL;
    this.wal = main?.file && full ? `${main.file}-wal` : null;
  }

  /**
   * Called right before BEGIN: the transaction about to start commits with synchronous=NORMAL. The function it
   * returns is called right after that transaction's COMMIT (true) or ROLLBACK (false): it sets FULL again and
   * returns a promise that resolves once the committed transaction is durable. The runner's transactions
   * (agent/db/pg/runner.ts) hold the connection meanwhile, so no other transaction commits under NORMAL. After a
   * COMMIT the runner turns a throw of that function into a rejected `durable`: the transaction stays committed.
   */
  relax(): (committed: boolean) => Promise<void> {
    // Nested in another transaction, its durability is that transaction's.
    if (this.wal === null || this.client.inTransaction) return () => DURABLE;
    const wal = this.wal;
    const changes = this.changes();
    // exec, not a prepared statement: SQLite applies this PRAGMA when it compiles it, not when it runs it.
    this.client.exec("PRAGMA synchronous = NORMAL");
    return (committed) => {
      this.client.exec("PRAGMA synchronous = FULL");
      // A transaction that wrote nothing (a round with nothing to do) has nothing to sync.
      return committed && this.changes() !== changes ? this.sync(wal) : DURABLE;
    };
  }

  /** The failed fsync, if one failed: nothing more is made durable on this connection. */
  get failure(): WalFailure | null {
    return this.failed;
  }

  /** Closes the WAL file (with the connection). */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * fsyncs the WAL, after the syncs asked for before (one at a time: Linux reports a write-back error to one fsync of a
   * descriptor, and one running beside the failed one could succeed for pages that never reached the disk). Opening it
   * may fail for a moment (EMFILE: too many open files): that is tried again, since no fsync was attempted. A failed
   * fsync is not, and nothing after it is made durable: Linux may have dropped the failed pages, a later fsync (on a new
   * descriptor, which is not told of the error) would report success for frames after them, and after a power cut
   * SQLite's recovery stops at the first frame whose checksum fails, so those later commits would be lost although
   * they were reported durable (a push sent under such a lease would be sent again). Every later sync rejects, so
   * nothing more is sent under a lease of this connection's rounds (each round's leases are released unsent and the
   * error is logged) until kontobro is restarted (SQLite then recovers the WAL from the disk).
   */
  private sync(wal: string): Promise<void> {
    const run = this.last.then(() => this.syncNow(wal));
    this.last = run.catch(() => {});
    return run;
  }

  /** Throws once an fsync has failed: nothing more can be made durable on this connection (see sync). */
  assertHealthy(): void {
    if (this.failed)
      throw new WalFailedError(
        `An earlier fsync of the database's WAL failed (${this.failed.error.message}): what was written since cannot be made durable. ${WAL_FAILURE_HINT}`,
        { cause: this.failed.error },
      );
  }

  private async syncNow(wal: string): Promise<void> {
    this.assertHealthy();
    for (let attempt = 1; this.fd === null; attempt++) {
      try {
        const fd = openSync(wal, "r+");
        // Another round's sync may have opened it while this one waited to try again.
        if (this.fd === null) this.fd = fd;
        else closeSync(fd);
      } catch (e) {
        if (attempt >= OPEN_ATTEMPTS) throw e;
        await Bun.sleep(OPEN_RETRY_MS * attempt);
      }
    }
    const fd = this.fd;
    try {
      await new Promise<void>((done, failed) => fsync(fd, (e) => (e ? failed(e) : done())));
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.failed = { at: Date.now(), error };
      if (this.fd === fd) this.close();
      throw new WalFailedError(error.message, { cause: error });
    }
  }

  /** Rows this connection has inserted, updated or deleted since it was opened. */
  private changes(): number {
    return (this.totalChanges.get() as { n: number }).n;
  }
}
