// End to end over loopback: PSA events → intake → outbox → dispatcher → e-conomic sandbox.
import { afterEach, describe, expect, test } from "bun:test";
import { Outbox } from "../agent/outbox.ts";
import { SAMPLE_PDF_BASE64 } from "../agent/demo.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, invoiceEvent, projectEvent, waitFor } from "./helpers.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

const booked = async (n: number) => (await stack.sandboxState()).booked.filter((b: any) => b.bookedInvoiceNumber === n);

describe("e-conomic end to end", () => {
  test("customer, project, product and invoice with PDF arrive with the PSA's numbers", async () => {
    stack = await startStack();
    const res = await stack.post([
      customerEvent(10042, { orgNumber: "912345678", email: "faktura@fjord.no" }),
      projectEvent(4711, 10042),
      { id: "prod-1", type: "product.upserted", data: { code: "CONSULT-1", name: "Consulting", price: 145000 } },
      invoiceEvent(20001, 10042, 4711, { pdf: { filename: "f.pdf", contentBase64: SAMPLE_PDF_BASE64 } }),
    ]);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(4);
    await stack.waitDelivered(4);
    const s = await stack.sandboxState();
    expect(s.customers.find((c: any) => c.customerNumber === 10042)).toMatchObject({
      name: "Customer 10042",
      corporateIdentificationNumber: "912345678",
      customerGroup: { customerGroupNumber: 1 },
    });
    expect(s.projects.find((p: any) => p.number === 4711)).toMatchObject({ customerNumber: 10042, projectGroupNumber: 1 });
    expect(s.products.find((p: any) => p.productNumber === "CONSULT-1")).toBeTruthy();
    const [inv] = await booked(20001);
    expect(inv).toMatchObject({ references: { other: "PSA-INV-20001" }, project: { projectNumber: 4711 }, hasAttachment: true });
    expect(s.drafts).toHaveLength(0);
  });

  test("dependency order: an invoice sent before its customer and project still books", async () => {
    stack = await startStack();
    await stack.post([invoiceEvent(30001, 501, 601)]);
    await stack.post([projectEvent(601, 501)]);
    await Bun.sleep(100);
    expect((await stack.deliveries("waiting")).map((d) => d.entity).sort()).toEqual(["invoice", "project"]);
    await stack.post([customerEvent(501)]);
    await stack.waitDelivered(3);
    expect(await booked(30001)).toHaveLength(1);
  });

  test("recovers from 503s and honours 429 Retry-After", async () => {
    stack = await startStack();
    await stack.addFaults(
      { method: "POST", path: "^/customers$", kind: "503", count: 2 },
      { method: "POST", path: "^/projectsapi", kind: "429", count: 1, retryAfterSeconds: 1 },
    );
    await stack.post([customerEvent(1), projectEvent(2, 1)]);
    // The 429 sets the next attempt at least Retry-After later (behaviour, read from the store).
    const throttled = await waitFor("a throttled project", async () =>
      (await stack.deliveries("pending")).find((d) => d.entity === "project" && d.errorCode && d.errorCode !== "waiting"),
    );
    expect(throttled.nextAttemptAt - throttled.updatedAt).toBeGreaterThanOrEqual(1000);
    await stack.waitDelivered(2);
    const [project, customer] = await stack.deliveries("done");
    expect(customer.attempts).toBe(3);
    expect(project.attempts).toBe(2);
    expect((await stack.sandboxState()).customers.filter((c: any) => c.customerNumber === 1)).toHaveLength(1);
  });

  test("a dropped answer after booking does not book the invoice twice", async () => {
    stack = await startStack();
    await stack.addFaults(
      { method: "POST", path: "^/invoices/drafts$", kind: "drop_after_commit", count: 1 },
      { method: "PUT", path: "^/invoices/booked/", kind: "drop_after_commit", count: 1 },
    );
    await stack.post([customerEvent(7), invoiceEvent(40001, 7)]);
    await stack.waitDelivered(2);
    const inv = (await stack.deliveries("done")).find((d) => d.entity === "invoice");
    expect(inv.attempts).toBeGreaterThanOrEqual(2);
    expect(await booked(40001)).toHaveLength(1);
    const s = await stack.sandboxState();
    expect(s.faults.drop_after_commit).toBe(2); // both answers really were lost
    expect(s.drafts).toHaveLength(0); // the draft made by the lost first attempt was reused, not orphaned
    expect(s.booked).toHaveLength(1);
  });

  test("after a crash mid-push, the restarted agent finds the booked invoice instead of booking again", async () => {
    stack = await startStack();
    await stack.post([customerEvent(8)]);
    await stack.waitDelivered(1);
    await stack.agent.stop();
    // Simulate a push that reached e-conomic just before the process died: the delivery is in flight
    // (lease held by the dead process) and the invoice is already booked at the target.
    const { openDatabase } = await import("../agent/db/index.ts");
    const { IntakeWriter, parseEvents } = await import("../agent/intake.ts");
    const db = openDatabase(`${stack.dataDir}/kontobro.db`);
    const outbox = new Outbox(sqliteRunner(db.$client));
    const parsed = parseEvents([invoiceEvent(50001, 8)]);
    if (!parsed.ok) throw new Error("bad fixture");
    await new IntakeWriter(outbox, () => ["eco"]).submit(parsed.events);
    const [claimed] = await outbox.claim("eco", 1, 60_000, () => true);
    expect(claimed!.entity).toBe("invoice");
    db.$client.close();
    const headers = {
      "X-AppSecretToken": "demo-app-secret",
      "X-AgreementGrantToken": "demo-agreement-grant",
      "content-type": "application/json",
    };
    const draft: any = await (
      await fetch(`${stack.sandboxUrl}/invoices/drafts`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          date: "2026-11-20",
          currency: "NOK",
          customer: { customerNumber: 8 },
          paymentTerms: { paymentTermsNumber: 1 },
          layout: { layoutNumber: 19 },
          recipient: { name: "Customer 8", vatZone: { vatZoneNumber: 1 } },
          references: { other: "PSA-INV-50001" },
          // The version the delivery holds: the booking it made before the crash.
          lines: [
            { lineNumber: 1, product: { productNumber: "TIME" }, description: "Consulting", quantity: 7.5, unitNetPrice: 1450 },
            { lineNumber: 2, product: { productNumber: "TIME" }, description: "Travel", quantity: 1, unitNetPrice: 500 },
          ],
        }),
      })
    ).json();
    expect(
      (
        await fetch(`${stack.sandboxUrl}/invoices/booked/50001`, {
          method: "PUT",
          headers,
          body: JSON.stringify({ draftInvoice: { draftInvoiceNumber: draft.draftInvoiceNumber }, bookWithNumber: 50001 }),
        })
      ).status,
    ).toBeLessThan(300);

    await stack.restart();
    await waitFor("invoice delivered", async () => (await stack.deliveries("done")).some((d) => d.entity === "invoice"));
    expect(await booked(50001)).toHaveLength(1);
  });

  test("a permanent validation failure is shown with its hint, and retry delivers once it is fixed", async () => {
    stack = await startStack();
    await stack.post([{ id: "bad-project", type: "project.upserted", data: { number: "P-100", name: "Lettered" } }]);
    const [failed] = (await waitFor("needs action", () => stack.deliveries("needs_action").then((d) => (d.length ? d : null))))!;
    expect(failed.errorMessage).toContain("P-100");
    expect(failed.errorHint).toContain("digits only");
    const page = await (await fetch(stack.agent.url)).text();
    expect(page).toContain("digits only");
    expect(page).toContain(`/ui/deliveries/${failed.id}/retry`);

    // A failure reported by e-conomic itself: the customer group is missing.
    await fetch(`${stack.sandboxUrl}/__sandbox/seed/remove`, {
      method: "POST",
      body: JSON.stringify({ items: ["customerGroup1"] }),
      headers: { "content-type": "application/json" },
    });
    await stack.post([customerEvent(9)]);
    const customer = await waitFor("customer needs action", async () =>
      (await stack.deliveries("needs_action")).find((d) => d.entity === "customer"),
    );
    expect(customer.errorMessage).toContain("e-conomic");
    expect(customer.errorHint).toBeTruthy();
    await fetch(`${stack.sandboxUrl}/__sandbox/reset`, { method: "POST" });
    const retried = await fetch(`${stack.agent.url}/api/v1/deliveries/${customer.id}/retry`, {
      method: "POST",
      headers: { authorization: "Bearer test-token-0123456789" },
    });
    expect(retried.status).toBe(200);
    await waitFor("customer delivered after retry", async () => (await stack.deliveries("done")).some((d) => d.id === customer.id));
  });

  test("coalescing: only the newest of several waiting updates is pushed", async () => {
    stack = await startStack();
    await stack.post([customerEvent(11, { name: "v1" }), customerEvent(11, { name: "v2" }), customerEvent(11, { name: "v3" })]);
    await stack.waitDelivered(1);
    expect((await stack.deliveries("superseded")).length).toBe(2);
    expect((await stack.sandboxState()).customers.find((c: any) => c.customerNumber === 11).name).toBe("v3");
    // An identical re-send is acknowledged and needs no push; a changed one updates via PUT.
    await stack.post([customerEvent(11, { name: "v3" })]);
    await stack.post([customerEvent(11, { name: "v4" })]);
    await stack.waitDelivered(3);
    expect((await stack.sandboxState()).customers.find((c: any) => c.customerNumber === 11).name).toBe("v4");
  });

  test("a credit note books with negative amounts", async () => {
    stack = await startStack();
    await stack.post([
      customerEvent(12),
      invoiceEvent(60001, 12),
      {
        ...invoiceEvent(60002, 12),
        id: "cn",
        type: "invoice.credited",
        data: { ...invoiceEvent(60002, 12).data, creditedInvoiceNumber: 60001 },
      },
    ]);
    await stack.waitDelivered(3);
    const [cn] = await booked(60002);
    expect(cn.netAmount).toBeLessThan(0);
  });
});

describe("two installations against one agreement", () => {
  test("a fresh data directory never gets another installation's cached answers", async () => {
    stack = await startStack();
    await stack.post([customerEvent(21)]);
    await stack.waitDelivered(1);
    // A reinstall (new data directory, delivery ids from 1 again) talking to the same e-conomic within
    // the hour its idempotency cache keeps answers: the new customer must really be created.
    const { startAgent } = await import("../agent/agent.ts");
    const { validateConfig } = await import("../agent/config.ts");
    const { silentLogger } = await import("../agent/log.ts");
    const { tempDir } = await import("./helpers.ts");
    const { config, targets } = validateConfig(
      {
        agent: { data_dir: tempDir() },
        http: { port: 0 },
        dispatch: { idle_poll_ms: 50 },
        targets: [
          {
            name: "eco",
            kind: "economic",
            rest_url: stack.sandboxUrl,
            projects_url: `${stack.sandboxUrl}/projectsapi/v1.1.0`,
            app_secret_token: "demo-app-secret",
            agreement_grant_token: "demo-agreement-grant",
            requests_per_second: 0,
          },
        ],
      },
      {},
    );
    const second = await startAgent(config, targets, silentLogger);
    try {
      await fetch(`${second.url}/api/v1/events`, {
        method: "POST",
        body: JSON.stringify(customerEvent(22)),
        headers: { authorization: `Bearer ${second.apiToken}`, "content-type": "application/json" },
      });
      await waitFor("customer 22 at e-conomic", async () =>
        (await stack.sandboxState()).customers.some((c: any) => c.customerNumber === 22),
      );
    } finally {
      await second.stop();
    }
  });
});

describe("a paused target", () => {
  test("queues deliveries without sending, and sends them once unpaused", async () => {
    stack = await startStack({ economic: { paused: true } });
    await stack.post([customerEvent(41)]);
    await Bun.sleep(200);
    expect((await stack.deliveries("pending")).length).toBe(1);
    expect((await stack.sandboxState()).customers.some((c: any) => c.customerNumber === 41)).toBe(false);
    expect(await (await fetch(stack.agent.url)).text()).toContain("Paused: events are queued for this target but not sent.");
    await stack.restartWith({ paused: false });
    await stack.waitDelivered(1);
    expect((await stack.sandboxState()).customers.some((c: any) => c.customerNumber === 41)).toBe(true);
  });
});

describe("a revert after an update whose answer was lost", () => {
  test("is sent (not skipped as unchanged), so e-conomic ends with the PSA's version", async () => {
    stack = await startStack({ dispatch: { retry_base_ms: 10_000, retry_max_ms: 10_000 } });
    await stack.post([customerEvent(51, { name: "A" })]);
    await stack.waitDelivered(1);
    await stack.addFaults({ method: "PUT", path: "^/customers/51$", kind: "drop_after_commit", count: 1 });
    await stack.post([customerEvent(51, { name: "B" })]); // reaches e-conomic, the answer is lost
    await waitFor("B failed as uncertain", async () => (await stack.deliveries("pending")).some((d) => d.uncertain));
    expect((await stack.sandboxState()).customers.find((c: any) => c.customerNumber === 51).name).toBe("B");
    await stack.post([customerEvent(51, { name: "A" })]); // the user reverts in the PSA
    await stack.waitDelivered(2);
    expect((await stack.sandboxState()).customers.find((c: any) => c.customerNumber === 51).name).toBe("A");
  });
});
