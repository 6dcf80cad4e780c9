// Logins and the daily call quota of the sandbox. Users sign in with HTTP Basic on every call; for the OData
// side the user name may carry the company as "00<CompanyID>/<user>" (uniconta.md §1). A server user has a
// daily call quota (5,000 by default, uniconta.md §10) that resets at midnight; past it, Uniconta slows the
// user down rather than refusing (the mechanics are unverified: "slow" or "refuse" here).
import fixtures from "./fixtures.json";

export interface User {
  user: string;
  password: string;
  companies: number[];
}

export interface QuotaOptions {
  /** Calls per user per day. */
  limit: number;
  /** Past the quota: answer after `slowMs` (Uniconta's "reduced speed") or refuse with an error. */
  mode: "slow" | "refuse";
  slowMs: number;
  /** The day the quota belongs to (Uniconta is Danish; which clock it resets on is unverified). */
  timezone: string;
}

export function dayIn(timezone: string, at = Date.now()): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(at));
}

export interface Caller {
  user: User;
  companyId: number | null;
}

/** "00<CompanyID>/<user>" or "<user>", password: the caller, or null when the login is refused. */
export function authenticate(header: string | undefined | null, users: User[], allowCompanyPrefix: boolean): Caller | null {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  const name = decoded.slice(0, colon),
    password = decoded.slice(colon + 1);
  const prefixed = /^00(\d+)\/(.+)$/.exec(name);
  if (prefixed && !allowCompanyPrefix) return null;
  const userName = prefixed ? prefixed[2]! : name;
  const user = users.find((u) => u.user === userName && u.password === password);
  return user ? { user, companyId: prefixed ? Number(prefixed[1]) : null } : null;
}

export class Quota {
  private day = "";
  readonly used = new Map<string, number>();
  readonly over = new Map<string, number>();

  constructor(public o: QuotaOptions) {}

  private roll(): void {
    const today = dayIn(this.o.timezone);
    if (today !== this.day) {
      this.day = today;
      this.used.clear();
      this.over.clear();
    }
  }

  /** Counts `calls` for the user; answers how long to hold the answer back, or "refused" past a refusing quota. */
  charge(user: string, calls: number): number | "refused" {
    this.roll();
    const before = this.used.get(user) ?? 0;
    if (before + calls > this.o.limit && this.o.mode === "refuse") return "refused";
    this.used.set(user, before + calls);
    const beyond = Math.max(0, before + calls - Math.max(this.o.limit, before));
    if (beyond > 0) this.over.set(user, (this.over.get(user) ?? 0) + beyond);
    return beyond > 0 ? this.o.slowMs : 0;
  }

  set(user: string, used: number): void {
    this.roll();
    this.used.set(user, used);
  }

  state() {
    this.roll();
    const users = fixtures.users.map((u) => u.user);
    return {
      day: this.day,
      limit: this.o.limit,
      mode: this.o.mode,
      timezone: this.o.timezone,
      users: Object.fromEntries(users.map((u) => [u, { used: this.used.get(u) ?? 0, over: this.over.get(u) ?? 0 }])),
    };
  }
}
