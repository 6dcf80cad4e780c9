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

export class WalSync {
  /** The WAL file, or null when there is none to sync (an in-memory database, or a connection not at FULL). */
  private readonly wal: string | null;

  private readonly totalChanges;
  /** The WAL file's descriptor, opened at the first sync and kept: opening it for every round cost more than the fsync's dispatch. */
  private fd: number | null = null;

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

  /** Closes the WAL file (with the connection). */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * fsyncs the WAL. Opening it may fail for a moment (EMFILE: too many open files): that is tried again, since no
   * fsync was attempted. A failed fsync is not: after one, Linux may have dropped the dirty pages, and a second
   * fsync would report success for data that never reached the disk. The descriptor is dropped after any failure.
   */
  private async sync(wal: string): Promise<void> {
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
      if (this.fd === fd) this.close();
      throw e;
    }
  }

  /** Rows this connection has inserted, updated or deleted since it was opened. */
  private changes(): number {
    return (this.totalChanges.get() as { n: number }).n;
  }
}
