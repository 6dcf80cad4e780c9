// The server user's daily call quota (uniconta.md §10: 5,000 calls a day in the standard packages; past it
// Uniconta slows every user of that login down). Every call is counted before it is sent; a call that would
// pass the day's budget is not sent. Pulls stop while fewer than `reserve` calls are left, so invoices can
// still be pushed. The count is kept in the agent's database when it offers counters (a restart keeps it).
import type { PeriodCounters, TargetBudget } from "../contract.ts";
import { TargetError } from "../http.ts";

export interface BudgetSettings {
  limit: number;
  reserve: number;
  timezone: string;
  gatewayPostCalls: number;
  gatewaySessionMinutes: number;
}

export function dayIn(timezone: string, at: number): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(at));
}

function offsetMs(timezone: string, at: number): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    })
      .formatToParts(new Date(at))
      .map((p) => [p.type, p.value]),
  );
  const local = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  return local - Math.floor(at / 1000) * 1000;
}

/** The instant the next day starts in `timezone`. */
export function nextMidnight(timezone: string, at: number): number {
  const [y, m, d] = dayIn(timezone, at).split("-").map(Number);
  const utcMidnight = Date.UTC(y!, m! - 1, d! + 1);
  let t = utcMidnight - offsetMs(timezone, utcMidnight);
  t = utcMidnight - offsetMs(timezone, t); // once more across a DST change
  return t;
}

export class CallBudget {
  private day = "";
  private local = 0;
  private gatewayLoginAt = -Infinity;
  private postponed: string | null = null;

  constructor(
    private readonly s: BudgetSettings,
    private readonly counters?: PeriodCounters,
    private readonly now: () => number = Date.now,
    private readonly onCounterError: (e: unknown) => void = () => {},
  ) {}

  today(): string {
    return dayIn(this.s.timezone, this.now());
  }

  /** The count is the day's, kept in the agent's database (else only what this process counted). */
  get durable(): boolean {
    return this.counters !== undefined;
  }

  /** Calls counted today. */
  used(): number {
    const today = this.today();
    if (today !== this.day) {
      this.day = today;
      this.local = 0;
      this.postponed = null;
    }
    if (this.counters) {
      try {
        this.local = Math.max(this.local, this.counters.get("calls", today));
      } catch (e) {
        this.onCounterError(e);
      }
    }
    return this.local;
  }

  left(): number {
    return Math.max(0, this.s.limit - this.used());
  }

  /** Counts `calls` about to be sent, or throws (nothing sent) when today's budget cannot hold them. */
  spend(calls: number, what: string): void {
    const used = this.used();
    if (used + calls > this.s.limit) {
      const until = nextMidnight(this.s.timezone, this.now());
      throw new TargetError("retryable", {
        code: "uniconta.call_budget_spent",
        retryAfterMs: Math.max(1000, until - this.now() + 60_000),
        message: `Uniconta's daily call budget is spent (${used} of ${this.s.limit} calls today); ${what} was not sent.`,
        hint:
          `Nothing to do: kontobro sends it after midnight (${this.s.timezone}), when the server user's quota starts again. ` +
          "If this happens often, buy more calls for the server user in Uniconta and raise calls_per_day in kontobro.toml.",
      });
    }
    this.local = used + calls;
    if (this.counters) {
      try {
        this.local = Math.max(this.local, this.counters.add("calls", this.day, calls));
      } catch (e) {
        this.onCounterError(e);
      }
    }
  }

  /** The server calls of one gateway posting: the posting, plus a login when the gateway's session has expired. */
  gatewayCost(): number {
    const now = this.now();
    const login = now - this.gatewayLoginAt >= this.s.gatewaySessionMinutes * 60_000 ? 2 : 0;
    return this.s.gatewayPostCalls + login;
  }

  /** Remembers that the gateway (probably) logged in now. */
  gatewayUsed(cost: number): void {
    if (cost > this.s.gatewayPostCalls) this.gatewayLoginAt = this.now();
  }

  /** Whether a pull may start a page needing about `calls` calls: only while the reserve for pushes stays untouched. */
  pullAllowed(calls: number): { ok: true } | { ok: false; reason: string } {
    const left = this.left();
    if (left - calls >= this.s.reserve) {
      this.postponed = null;
      return { ok: true };
    }
    this.postponed = `Pulls are postponed until midnight (${this.s.timezone}): ${left} of today's ${this.s.limit} calls are left and ${this.s.reserve} are kept for pushing invoices.`;
    return { ok: false, reason: this.postponed };
  }

  report(title: string): TargetBudget {
    const used = this.used();
    const note =
      used >= this.s.limit ? `The budget is spent: pushes wait until midnight (${this.s.timezone}).` : (this.postponed ?? undefined);
    return { name: "calls_per_day", title, used, limit: this.s.limit, period: this.day, ...(note ? { note } : {}) };
  }
}
