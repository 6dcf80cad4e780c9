// The records a push reads besides its own (agent/record-source.ts), on both engines: a real SQLite file and a
// tenant on a real PostgreSQL server. Loaded in one statement per round for what the round's deliveries depend on;
// an invoice's push and pre-flight rules read its customer and project through it.
import { beforeEach, describe, expect, test } from "bun:test";
import type { Connector, PushContext, RelatedRecords } from "../connectors/contract.ts";
import type { SqlRunner } from "../agent/db/pg/runner.ts";
import { Dispatcher } from "../agent/dispatcher.ts";
import { IntakeWriter, parseEvents } from "../agent/intake.ts";
import { silentLogger } from "../agent/log.ts";
import { Metrics } from "../agent/metrics.ts";
import { Outbox } from "../agent/outbox.ts";
import { recordSource } from "../agent/record-source.ts";
import { storageEngines } from "./engines.ts";
import { customerEvent, invoiceEvent, projectEvent, waitFor } from "./helpers.ts";

const { engines, open } = storageEngines("the record source tests");

/**
 * A target taking customers, projects and invoices. An invoice's rules refuse it without its customer, and its
 * push answers with the names of the customer and project it read: what it got from the dispatcher.
 */
function readingTarget(): Connector {
  return {
    name: "t",
    kind: "test",
    supports: (e: string) => e === "customer" || e === "project" || e === "invoice",
    check: async () => [],
    validate: (entity: string, payload: any, related?: RelatedRecords) =>
      entity === "invoice" && !related?.("customer", payload.customerNumber)
        ? [{ code: "customer_unknown", message: `customer ${payload.customerNumber} not received` }]
        : [],
    push: async (entity: string, payload: any, ctx: PushContext) => {
      if (entity !== "invoice") return { remoteId: `${entity}-${payload.number}` };
      const customer = ctx.record?.("customer", payload.customerNumber);
      const project = payload.projectNumber ? ctx.record?.("project", payload.projectNumber) : null;
      return { remoteId: `invoice ${payload.number} to ${customer?.name} for ${project?.name ?? "no project"}` };
    },
    find: async () => null,
  } as unknown as Connector;
}

describe.each(engines)("records a push reads, on %s", (engine) => {
  let runner: SqlRunner;
  let outbox: Outbox;

  async function send(...events: unknown[]) {
    const parsed = parseEvents(events);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed));
    await new IntakeWriter(outbox, () => ["t"]).submit(parsed.events);
  }

  beforeEach(async () => {
    runner = await open(engine);
    outbox = new Outbox(runner);
  });

  test("load reads the latest payloads of the records named; one never sent is null, one not named is refused", async () => {
    await send(customerEvent(1, { name: "Old name" }), customerEvent(1, { name: "Acme AS" }), projectEvent(50, 1), customerEvent(2));
    const lookup = await recordSource(runner).load([
      { entity: "customer", key: "1" },
      { entity: "project", key: "50" },
      { entity: "customer", key: "1" },
      { entity: "project", key: "1" }, // the PSA never sent project 1 (customer 1's number is not a project's)
    ]);
    expect(lookup("customer", "1")).toMatchObject({ number: "1", name: "Acme AS" });
    expect(lookup("project", "50")).toMatchObject({ number: "50", name: "Project 50" });
    expect(lookup("project", "1")).toBeNull();
    expect(() => lookup("customer", "2")).toThrow("record customer 2 was not loaded for this push");
    expect(() => lookup("customer", "2")).toThrow("dependenciesOf in agent/model.ts");
    expect(
      await recordSource(runner)
        .load([{ entity: "time_record", key: "1" }])
        .catch((e: Error) => e.message),
    ).toContain("a push reads only records of customer, project, product, invoice");
  });

  test("an invoice's rules and push read the latest payloads of its customer and project", async () => {
    await send(customerEvent(1, { name: "Old name" }), customerEvent(1, { name: "Acme AS" }), projectEvent(50, 1));
    await send(invoiceEvent(100, 1, 50), invoiceEvent(101, 1));
    const dispatcher = new Dispatcher(
      "t",
      readingTarget(),
      outbox,
      { concurrency: 4, leaseMs: 30_000, backoff: { baseMs: 10, maxMs: 50 }, idlePollMs: 20, keyPrefix: "k" },
      silentLogger,
      new Metrics(),
      recordSource(runner),
    );
    dispatcher.start();
    try {
      const invoices = () =>
        runner.all<{ key: string; status: string; remoteId: string | null }>(
          "SELECT key, status, remote_id AS remoteId FROM deliveries WHERE entity = 'invoice' ORDER BY key",
        );
      await waitFor("both invoices delivered", async () => (await invoices()).every((d) => d.status === "done"));
      expect(await invoices()).toEqual([
        { key: "100", status: "done", remoteId: "invoice 100 to Acme AS for Project 50" },
        { key: "101", status: "done", remoteId: "invoice 101 to Acme AS for no project" },
      ]);
    } finally {
      await dispatcher.stop(1000);
    }
  });
});
