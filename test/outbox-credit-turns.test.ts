// Credit notes of one invoice go to a target one at a time, whichever worker claims them: a target may make a credit
// note from the invoice as a draft the push marks only later (Uni Micro's credit action), and two pushed side by side
// took each other's drafts (one credit note booked, the other lost). The turns were kept per process
// (Uni Micro's CreditTurns, now removed), so hosted workers sharing a tenant did not share them; the claim keeps them
// now. Both engines: a real SQLite file, and a tenant on a real PostgreSQL server with two workers (own clients).
import { beforeEach, describe, expect, test } from "bun:test";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { type ClaimedDelivery, Outbox } from "../agent/outbox.ts";
import { workerEngines } from "./engines.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

const ALL = () => true;
const LEASE_MS = 60_000;
const { engines, open } = workerEngines("the credit turn tests");

const creditNote = (n: number, credited: number) => ({
  ...invoiceEvent(n, 1, undefined, { creditedInvoiceNumber: credited }),
  type: "invoice.credited",
});
/** A credit note of `amount` (minor units) on one line, sent under event id `id`. */
const creditOf = (n: number, credited: number, amount: number, id = `c-${n}`) => ({
  ...invoiceEvent(
    n,
    1,
    undefined,
    { creditedInvoiceNumber: credited, lines: [{ text: "Credit", quantity: 1, unitPrice: amount, kind: "hours" }] },
    id,
  ),
  type: "invoice.credited",
});
const keys = (ds: ClaimedDelivery[]) => ds.map((d) => d.key).sort();

describe.each(engines)("credit notes of one invoice on %s", (engine) => {
  let clock: number;
  let workers: Outbox[];
  let send: (...events: unknown[]) => Promise<void>;
  let storage: Awaited<ReturnType<typeof open>>;

  beforeEach(async () => {
    clock = 1_000_000;
    storage = await open(engine);
    const runners = [storage.storage, await storage.worker()];
    workers = runners.map((r) => new Outbox(r, () => clock, 15 * 60_000, { leaseOwner: storage.workerOf(r) }));
    send = async (...events: unknown[]) => {
      const parsed = parseEvents(events);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed));
      await new IntakeWriter(
        workers[0]!,
        () => ["t"],
        () => {},
        () => clock,
      ).submit(parsed.events);
    };
    await send(customerEvent(1));
    const [customer] = await workers[0]!.claim("t", 10, LEASE_MS, ALL);
    await workers[0]!.complete([{ delivery: customer!, outcome: { kind: "done", remoteId: "c1", payloadHash: "h" } }]);
    await send(creditNote(201, 100), creditNote(202, 100), creditNote(203, 101));
  });

  test("two workers claiming at once lease one credit note of an invoice between them; the other follows its outcome", async () => {
    const [a, b] = await Promise.all(workers.map((w) => w.claim("t", 1, LEASE_MS, ALL)));
    const [c, d] = await Promise.all(workers.map((w) => w.claim("t", 10, LEASE_MS, ALL)));
    const leased = [...a!, ...b!, ...c!, ...d!];
    expect(keys(leased)).toEqual(["201", "203"]);
    expect(await workers[1]!.claim("t", 10, LEASE_MS, ALL)).toEqual([]);
    const first = leased.find((x) => x.key === "201")!;
    const holder = workers[a!.concat(c!).includes(first) ? 0 : 1]!;
    await holder.complete([{ delivery: first, outcome: { kind: "done", remoteId: "r201", payloadHash: "h" } }]);
    expect(keys(await workers[1 - workers.indexOf(holder)]!.claim("t", 10, LEASE_MS, ALL))).toEqual(["202"]);
  });

  test("a credit note whose push ended in doubt holds the next credit note of its invoice until its outcome is known", async () => {
    const first = (await workers[0]!.claim("t", 10, LEASE_MS, ALL)).find((x) => x.key === "201")!;
    const timeout = { code: "timeout", message: "no answer in time" };
    // Its create may have been booked: the next attempt looks first. Until then the other credit note must not go (it
    // could take the first one's draft at the target, or credit the invoice beside a credit that was booked).
    await workers[0]!.complete([{ delivery: first, outcome: { kind: "retry", problem: timeout, delayMs: 30_000, uncertain: true } }]);
    expect(keys(await workers[1]!.claim("t", 10, LEASE_MS, ALL))).toEqual([]);
    clock += 60_000;
    // Both due now, the waiting one first by its time: the one in doubt goes, alone.
    const [again, ...rest] = await workers[1]!.claim("t", 10, LEASE_MS, ALL);
    expect([again!.key, ...keys(rest)]).toEqual(["201"]);
    await workers[1]!.complete([{ delivery: again!, outcome: { kind: "done", remoteId: "r201", payloadHash: "h" } }]);
    expect(keys(await workers[0]!.claim("t", 10, LEASE_MS, ALL))).toEqual(["202"]);
  });

  test("a credit note in doubt refused at the claim as over-crediting lets the credit note waiting for it go on (checked itself)", async () => {
    const done = (w: Outbox, d: ClaimedDelivery) =>
      w.complete([{ delivery: d, outcome: { kind: "done", remoteId: `r${d.key}`, payloadHash: "h" } }]);
    const claimOf = async (w: Outbox, key: string) => (await w.claim("t", 10, LEASE_MS, ALL)).find((x) => x.key === key);
    await send(invoiceEvent(300, 1), creditOf(301, 300, 600_000));
    await done(workers[0]!, (await claimOf(workers[0]!, "300"))!);
    await done(workers[0]!, (await claimOf(workers[0]!, "301"))!);
    // 302 fits (1,000,000 of 1,137,500) and goes; its answer is lost, so it may be booked; 303 waits for it.
    await send(creditOf(302, 300, 400_000), creditOf(303, 300, 100_000));
    const second = (await claimOf(workers[0]!, "302"))!;
    const timeout = { code: "timeout", message: "no answer in time" };
    await workers[0]!.complete([{ delivery: second, outcome: { kind: "retry", problem: timeout, delayMs: 30_000, uncertain: true } }]);
    expect(await claimOf(workers[1]!, "303")).toBeUndefined();
    // Meanwhile the PSA lowers the invoice to 950,000: 302's next claim refuses it (600,000 + 400,000 is more).
    await send(
      invoiceEvent(300, 1, undefined, { lines: [{ text: "Consulting", quantity: 1, unitPrice: 950_000, kind: "hours" }] }, "i-300-v2"),
    );
    clock += 60_000;
    await done(workers[1]!, (await claimOf(workers[1]!, "300"))!);
    expect(await claimOf(workers[1]!, "302")).toBeUndefined();
    const statusOf = (key: string) =>
      storage.storage.get<{ status: string; code: string | null; message: string | null }>(
        "SELECT status, error_code AS code, error_message AS message FROM deliveries WHERE entity = 'invoice' AND key = ?1 AND status <> 'superseded'",
        key,
      );
    expect(await statusOf("302")).toMatchObject({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
    expect((await statusOf("302"))!.message).toContain("an earlier push of it ended in doubt: it may be booked there already");
    // 303 no longer waits for a turn that never ends: it is checked by itself (302 may be booked, so it counts).
    await workers[1]!.claim("t", 10, LEASE_MS, ALL);
    const third = await statusOf("303");
    expect(third!.status).not.toBe("waiting");
    expect(third).toMatchObject({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
    expect(third!.message).toContain("302");
  });

  test("a credit note that with those booked would credit more than the invoice needs action at the claim, never leased", async () => {
    await send(invoiceEvent(300, 1), creditNote(301, 300), creditNote(302, 300));
    const claimed = await workers[0]!.claim("t", 10, LEASE_MS, ALL);
    const invoice = claimed.find((x) => x.key === "300")!;
    await workers[0]!.complete([{ delivery: invoice, outcome: { kind: "done", remoteId: "r300", payloadHash: "h" } }]);
    const [first] = (await workers[1]!.claim("t", 10, LEASE_MS, ALL)).filter((x) => x.key === "301" || x.key === "302");
    await workers[1]!.complete([{ delivery: first!, outcome: { kind: "done", remoteId: `r${first!.key}`, payloadHash: "h" } }]);
    expect(keys(await workers[0]!.claim("t", 10, LEASE_MS, ALL)).filter((k) => k === "301" || k === "302")).toEqual([]);
    const other = first!.key === "301" ? "302" : "301";
    const row = await storage.storage.get<{ status: string; code: string }>(
      "SELECT status, error_code AS code FROM deliveries WHERE entity = 'invoice' AND key = ?1",
      other,
    );
    expect(row).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
  });

  test("a later version of a booked invoice that needs action (other amounts) does not widen what may be credited", async () => {
    const booked = { lines: [{ text: "Consulting", quantity: 1, unitPrice: 100_000, kind: "hours" }] };
    await send(invoiceEvent(400, 1, undefined, booked, "i-400-v1"));
    const [v1] = (await workers[0]!.claim("t", 10, LEASE_MS, ALL)).filter((x) => x.key === "400");
    await workers[0]!.complete([{ delivery: v1!, outcome: { kind: "done", remoteId: "r400", payloadHash: "h" } }]);
    // The PSA's correction to 11,375.00: the target keeps the booked 1,000.00, so this version needs action.
    await send(invoiceEvent(400, 1, undefined, {}, "i-400-v2"));
    const [v2] = (await workers[1]!.claim("t", 10, LEASE_MS, ALL)).filter((x) => x.key === "400");
    const refused = {
      kind: "needs_action",
      uncertain: false,
      problem: { code: "x.invoice_already_booked", message: "booked", hint: "credit it" },
    } as const;
    await workers[1]!.complete([{ delivery: v2!, outcome: refused }]);
    // A credit note of 11,375.00 credits more than the 1,000.00 booked.
    await send(creditNote(401, 400));
    expect(keys(await workers[0]!.claim("t", 10, LEASE_MS, ALL)).filter((k) => k === "401")).toEqual([]);
    const row = await storage.storage.get<{ status: string; code: string; message: string }>(
      "SELECT status, error_code AS code, error_message AS message FROM deliveries WHERE entity = 'invoice' AND key = '401'",
    );
    expect({ status: row!.status, code: row!.code }).toEqual({ status: "needs_action", code: "invoice.credit_exceeds_invoice" });
    expect(row!.message).toContain("whose total is 1,000.00 NOK");
  });
});
