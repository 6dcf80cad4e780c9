// Whether each target's credentials work, as the last calls found: a 401 from the target (after the
// connector's own token refresh) marks them refused; any call the target answered with success marks them
// working again. Kept in the settings table (credentials:<target>), so /readyz, the status page and the
// notifier see it across restarts. A stored refusal is dropped at start when the target's settings changed
// (someone fixed the token): the next call tells again. Through the SqlRunner, so a hosted tenant's refusals are its
// own settings rows (row-level security); the SQLite agent's /readyz, which answers synchronously, reads the same
// statement from the connection.
import { createHash } from "node:crypto";
import type { Connector } from "../../connectors/contract.ts";
import { isTargetError } from "../../connectors/http.ts";
import type { Db } from "../db/index.ts";
import type { SqlRunner } from "../db/pg/runner.ts";
import type { Logger } from "../log.ts";

export interface CredentialsRefused {
  target: string;
  /** When the target first refused them (epoch ms). */
  since: number;
  message: string;
  hint?: string;
  /** Hash of the target's settings when refused: other settings at start drop the refusal. */
  settings: string;
}

const PREFIX = "credentials:";

const REFUSED = `SELECT name, value FROM settings WHERE name LIKE 'credentials:%' ORDER BY name`;
const DROP = `DELETE FROM settings WHERE name = ?1`;

const toRefused = (rows: { name: string; value: string }[]): CredentialsRefused[] =>
  rows.map((r) => ({ ...(JSON.parse(r.value) as Omit<CredentialsRefused, "target">), target: r.name.slice(PREFIX.length) }));

/** Every target whose credentials were refused and have not worked since. */
export async function listRefusedCredentials(db: SqlRunner): Promise<CredentialsRefused[]> {
  return toRefused(await db.all<{ name: string; value: string }>(REFUSED));
}

/** The same, read at once from the SQLite agent's connection: /readyz answers synchronously. */
export function refusedCredentials(db: Db): CredentialsRefused[] {
  try {
    return toRefused(db.$client.query(REFUSED).all() as { name: string; value: string }[]);
  } catch {
    return [];
  }
}

export const settingsHash = (settings: unknown) =>
  createHash("sha256")
    .update(JSON.stringify(settings ?? null))
    .digest("hex")
    .slice(0, 16);

/** A connector's method, as the wrapper hands it out. */
type Method = (...args: unknown[]) => unknown;

/** The methods that call the target; their outcome tells whether the credentials work. */
const CALLS = new Set(["push", "find", "pull"]);

export class CredentialsWatch {
  /** Known state per target: true = working, false = refused. Writes happen only on a change. */
  private readonly known = new Map<string, boolean>();

  constructor(
    private readonly db: SqlRunner,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** At start: forget refusals of targets whose settings changed since, or that are gone. */
  async reconcile(targets: { name: string; settings: unknown }[]): Promise<void> {
    const current = new Map(targets.map((t) => [t.name, settingsHash(t.settings)]));
    for (const r of await listRefusedCredentials(this.db)) {
      if (current.get(r.target) === r.settings) {
        this.known.set(r.target, false);
        continue;
      }
      await this.db.run(DROP, PREFIX + r.target);
      this.log.info("the target's settings changed since its credentials were refused; the next call checks them again", {
        target: r.target,
      });
    }
  }

  async refused(target: string, settings: unknown, message: string, hint?: string): Promise<void> {
    if (this.known.get(target) === false) return;
    this.known.set(target, false);
    try {
      const value: Omit<CredentialsRefused, "target"> = {
        since: this.now(),
        message,
        ...(hint ? { hint } : {}),
        settings: settingsHash(settings),
      };
      await this.db.run(
        `INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING`,
        PREFIX + target,
        JSON.stringify(value),
      );
      this.log.warn("the target refused kontobro's credentials", { target, message, hint });
    } catch (e) {
      this.known.delete(target);
      this.log.warn("could not record that the target refused the credentials", { target, error: e });
    }
  }

  async working(target: string): Promise<void> {
    if (this.known.get(target) === true) return;
    try {
      const { changes: changed } = await this.db.run(DROP, PREFIX + target);
      this.known.set(target, true);
      if (changed > 0) this.log.info("the target accepts kontobro's credentials again", { target });
    } catch (e) {
      this.log.warn("could not record that the target accepts the credentials again", { target, error: e });
    }
  }

  /** The same connectors, watched: their calls' outcomes keep the credentials state. */
  wrap(connectors: Map<string, Connector>, settingsOf: (target: string) => unknown): Map<string, Connector> {
    const out = new Map<string, Connector>();
    for (const [name, connector] of connectors) {
      // The functions handed out, made once per method (a push reads several: supports, validate, push).
      const made = new Map<PropertyKey, { value: Method; fn: Method }>();
      const succeeded = (result: unknown) =>
        // Known to work already (every success after the first): nothing to write, no turn to wait.
        this.known.get(name) === true ? result : this.working(name).then(() => result);
      const failed = async (e: unknown) => {
        if (isTargetError(e) && e.status === 401) await this.refused(name, settingsOf(name), e.message, e.hint);
        throw e;
      };
      // The call's own promise, continued: no async function of its own around it (a promise and a turn less per push).
      const watch =
        (value: Method, obj: Connector) =>
        (...args: unknown[]): Promise<unknown> => {
          let call: Promise<unknown>;
          try {
            call = Promise.resolve(value.apply(obj, args));
          } catch (e) {
            call = Promise.reject(e);
          }
          return call.then(succeeded, failed);
        };
      out.set(
        name,
        new Proxy(connector, {
          get: (obj, prop) => {
            const value = Reflect.get(obj, prop);
            if (typeof value !== "function") return value;
            const hit = made.get(prop);
            if (hit && hit.value === value) return hit.fn;
            const fn = typeof prop !== "string" || !CALLS.has(prop) ? value.bind(obj) : watch(value, obj);
            made.set(prop, { value, fn });
            return fn;
          },
        }),
      );
    }
    return out;
  }
}
