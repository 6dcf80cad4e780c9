// The chaos run's verdict is itself tested: a wrong booking, a doubled or missing one, a left draft and a
// request sent during a Retry-After must each be caught; the PSA's events follow the model's sign rules.
import { describe, expect, test } from "bun:test";
import { serveLogged } from "../connectors/sandbox.ts";
import { chaosEvents, expectedDocs, forTenant, masterNumbers, rng } from "../scripts/chaos-events.ts";
import {
  draftsMadeAfterStop,
  maxRequestsInRetryAfterWindow,
  verify,
  type BookedDoc,
  type LoggedRequest,
  type TargetSnapshot,
} from "../scripts/chaos-verify.ts";
import { waitFor } from "./helpers.ts";

const events = chaosEvents(40, rng(1));
const expected = expectedDocs(events);
const master = masterNumbers(events);

/** A target that booked exactly what the PSA sent. */
function perfect(): TargetSnapshot {
  const booked: BookedDoc[] = [...expected.values()].map((d) => ({
    psaId: d.psaId,
    number: d.number,
    customer: d.customer,
    lines: d.lines.map((l) => ({ ...l })),
    total: d.total,
  }));
  return { booked, drafts: [], customers: [...master.customers], projects: [...master.projects] };
}

describe("chaos events", () => {
  test("credit notes come after their invoice, lower what the customer owes, whatever signs the PSA wrote", () => {
    const at = new Map(events.map((e, i) => [e.id, i]));
    const credits = events.filter((e) => e.type === "invoice.credited");
    expect(credits.length).toBeGreaterThan(0);
    for (const c of credits) expect(at.get(c.id)!).toBeGreaterThan(at.get(`chaos-i-${c.id.split("-").pop()}`)!);
    const written = credits.map((c) =>
      (c.data.lines as { quantity: number; unitPrice: number }[]).some((l) => l.quantity < 0 || l.unitPrice < 0),
    );
    expect(written).toContain(true); // some written with minus signs
    expect(written).toContain(false);
    for (const d of expected.values()) {
      if (d.kind === "credit_note") expect(d.total).toBeLessThan(0);
      else expect(d.total).toBeGreaterThan(0);
      for (const l of d.lines) expect(l.unitPrice).toBeGreaterThanOrEqual(0);
    }
    // Discount lines on invoices: a negative quantity after the model's normalisation.
    expect([...expected.values()].some((d) => d.kind === "invoice" && d.lines.some((l) => l.quantity < 0))).toBe(true);
  });
});

describe("chaos verdict", () => {
  test("a target that booked what the PSA sent passes", () => {
    expect(verify(expected, master, perfect())).toMatchObject({
      missing: 0,
      duplicates: 0,
      wrong: 0,
      orphanDrafts: 0,
      missingCustomers: 0,
      missingProjects: 0,
    });
  });

  test("a credit note booked as a charge, a wrong customer or a changed line is wrong", () => {
    for (const spoil of [
      (b: BookedDoc) => {
        b.total = -b.total;
        b.lines = b.lines.map((l) => ({ ...l, quantity: -l.quantity }));
      },
      (b: BookedDoc) => {
        b.customer = "999";
      },
      (b: BookedDoc) => {
        b.lines = [...b.lines, { text: "extra", quantity: 1, unitPrice: 0 }];
      },
    ]) {
      const s = perfect();
      spoil(s.booked.find((b) => b.psaId?.startsWith("CHAOS-CN-"))!);
      expect(verify(expected, master, s).wrong).toBe(1);
    }
  });

  test("a document the target numbers itself (no PSA number on it) is judged by its PSA id and content", () => {
    const unnumbered = () => {
      const s = perfect();
      s.booked = s.booked.map((b) => ({ ...b, number: null }));
      return s;
    };
    expect(verify(expected, master, unnumbered())).toMatchObject({ missing: 0, duplicates: 0, wrong: 0 });
    const spoiled = unnumbered();
    spoiled.booked[0]!.customer = "999";
    spoiled.booked.push({ ...spoiled.booked[1]! });
    expect(verify(expected, master, spoiled)).toMatchObject({ missing: 0, duplicates: 1, wrong: 1 });
  });

  test("booked twice, missing, booked under our number with another PSA id, and drafts left are counted", () => {
    const s = perfect();
    s.booked.push({ ...s.booked[0]!, number: "999999" });
    s.booked.splice(1, 1);
    s.booked[2] = { ...s.booked[2]!, psaId: "SOMEONE-ELSE" };
    s.drafts.push({ psaId: "CHAOS-3", createdAt: 0 });
    s.customers.pop();
    expect(verify(expected, master, s)).toMatchObject({ duplicates: 2, missing: 2, orphanDrafts: 1, missingCustomers: 1 });
  });

  test("requests the target began after a Retry-After answer and before it ended are counted; answers without one open no window", () => {
    const req = (startedAt: number, extra: Partial<LoggedRequest> = {}): LoggedRequest => ({
      method: "GET",
      path: "/x",
      startedAt,
      answeredAt: startedAt + 1,
      answeredEpoch: 0,
      status: 200,
      ...extra,
    });
    const throttled = req(1000, { status: 429, retryAfterMs: 2000 });
    expect(maxRequestsInRetryAfterWindow([req(900), throttled, req(1001.2), req(2000)])).toMatchObject({ max: 2, windows: 1 });
    expect(maxRequestsInRetryAfterWindow([throttled, req(1500), req(2500), req(3100)]).max).toBe(2);
    // Each 429 opens its own window: the most in any one of them counts.
    const second = req(2900, { status: 429, retryAfterMs: 2000 });
    expect(maxRequestsInRetryAfterWindow([throttled, req(1500), second, req(3000), req(3500), req(4000), req(4500)])).toMatchObject({
      max: 4,
      windows: 2,
    });
    expect(maxRequestsInRetryAfterWindow([req(1000, { status: 503, retryAfterMs: 0 }), req(1500), req(1600)]).max).toBe(0);
  });

  test("a draft traced to a slow create whose agent was stopped meanwhile is told apart from other drafts", () => {
    const slow: LoggedRequest = {
      method: "POST",
      path: "/invoices/drafts",
      startedAt: 0,
      answeredAt: 1500,
      answeredEpoch: 11_500,
      status: 201,
    };
    const unheard = { psaId: "A", createdAt: 11_498 };
    const other = { psaId: "B", createdAt: 20_000 };
    expect(draftsMadeAfterStop([unheard, other], [], [slow], [10_700], 1000)).toEqual({ afterStop: [unheard], others: [other] });
    expect(draftsMadeAfterStop([unheard], [], [slow], [9_000], 1000).afterStop).toEqual([]);
    // Sent before its agent was killed, begun by a busy sandbox 20 ms after: no agent heard it either.
    expect(draftsMadeAfterStop([unheard], [], [slow], [10_020], 1000).afterStop).toEqual([unheard]);
    // Begun half a second after the stop: the next agent's, which heard it.
    expect(draftsMadeAfterStop([unheard], [], [slow], [9_500], 1000).afterStop).toEqual([]);
    // The unheard draft was finished and booked; a later draft with the same PSA id was left.
    const later = { psaId: "A", createdAt: 15_000 };
    expect(draftsMadeAfterStop([later], [{ psaId: "A", createdAt: 11_498 }], [slow], [10_700], 1000).afterStop).toEqual([later]);
    // Its agent gone before the answer whatever the stops say (begun by a sandbox busier than SENT_BEFORE_STOP_MS allows,
    // or a worker that exited by itself): no agent heard it. Gone but answered within the timeout: a draft left by it
    // is one the next attempt's lookup should have found.
    expect(draftsMadeAfterStop([unheard], [], [{ ...slow, clientGone: true }], [], 1000).afterStop).toEqual([unheard]);
    expect(draftsMadeAfterStop([unheard], [], [{ ...slow, clientGone: true }], [9_500], 1000).afterStop).toEqual([unheard]);
    expect(draftsMadeAfterStop([unheard], [], [{ ...slow, startedAt: 1000, clientGone: true }], [], 1000).afterStop).toEqual([]);
  });

  test("the sandbox's request log says when the client had gone before the answer", async () => {
    const log: LoggedRequest[] = [];
    const server = serveLogged(async () => {
      await Bun.sleep(500);
      return new Response("{}", { status: 201 });
    }, log);
    const url = `http://127.0.0.1:${server.port}/`;
    const child = Bun.spawn([process.execPath, "-e", `await fetch(${JSON.stringify(url)}, { method: "POST", body: "gone" })`]);
    await waitFor("the killed client's request at the sandbox", () => server.pendingRequests > 0);
    child.kill("SIGKILL");
    await child.exited;
    await (await fetch(url, { method: "POST", body: "heard" })).text();
    await waitFor("both answered", () => log.length === 2);
    server.stop(true);
    expect(log.map((r) => r.clientGone ?? false)).toEqual([true, false]);
  });
});

describe("chaos verdict per tenant (scripts/chaos-pg.ts)", () => {
  const other = expectedDocs(forTenant(events, 7));
  const otherBooked = (psaId: string): BookedDoc => {
    const d = other.get(psaId)!;
    return { psaId: d.psaId, number: d.number, customer: d.customer, lines: d.lines.map((l) => ({ ...l })), total: d.total };
  };

  test("another tenant sends the same ids and numbers with other texts and unit prices, of the same signs", () => {
    const mine = expectedDocs(forTenant(events, 0));
    expect([...other.keys()]).toEqual([...mine.keys()]);
    for (const [psaId, d] of other) {
      const m = mine.get(psaId)!;
      expect({ number: d.number, customer: d.customer, kind: d.kind }).toEqual({ number: m.number, customer: m.customer, kind: m.kind });
      expect(Math.sign(d.total)).toBe(Math.sign(m.total));
      expect(d.lines.map((l) => l.unitPrice)).not.toEqual(m.lines.map((l) => l.unitPrice));
      expect(d.lines.every((l) => l.text.endsWith(" (tenant 7)"))).toBe(true);
    }
  });

  test("a document of another tenant booked at this tenant's target is caught: in its place wrong, beside it a duplicate", () => {
    const [first, second] = [...expected.keys()];
    const instead = perfect();
    instead.booked = instead.booked.map((b) => (b.psaId === first ? otherBooked(first!) : b));
    expect(verify(expected, master, instead)).toMatchObject({ missing: 0, duplicates: 0, wrong: 1 });
    const beside = perfect();
    beside.booked.push(otherBooked(second!));
    expect(verify(expected, master, beside)).toMatchObject({ missing: 0, duplicates: 1, wrong: 1 });
  });
});
