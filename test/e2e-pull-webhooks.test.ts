// Webhooks both ways, over loopback: kontobro's signed deliveries to the PSA (with retries), and
// e-conomic's hints to kontobro (token, size limit, URL-template parameters, debounced pull). Also the
// status page's pull section and the catch-up of a run missed while the agent was down.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { waitFor, tempDir } from "./helpers.ts";
import { day, seedPsa, startPullStack, type PullStack } from "./pull-harness.ts";

let stack: PullStack;
afterEach(async () => {
  await stack?.stop();
});

const expense = (text: string, project = 4711) => ({
  date: day(0),
  supplierNumber: 1,
  text,
  lines: [{ account: 2800, amount: 125, vatCode: "I25", projectNumber: project, costTypeNumber: 1 }],
});
const runs = (trigger?: string) =>
  stack.agent.db.$client
    .query(`SELECT stream, trigger, status FROM job_runs WHERE (?1 IS NULL OR trigger = ?1) ORDER BY id`)
    .all(trigger ?? null) as any[];
const tokenOf = () => stack.agent.pulls.webhooks.find((w) => w.name === "eco")!.token;

describe("delivery to the PSA webhook", () => {
  test("items arrive signed; a failing PSA endpoint is retried with backoff until it answers 2xx", async () => {
    stack = await startPullStack();
    await seedPsa(stack, [4711]);
    stack.psa.failNext(3);
    await stack.book([expense("A"), expense("B")]);
    expect(await stack.runNow("expenses")).toMatchObject({ imported: 2 });
    await waitFor("delivered after the PSA recovered", () => stack.psa.accepted().length === 2);
    await waitFor(
      "marked delivered",
      () => (stack.agent.db.$client.query(`SELECT count(*) AS n FROM inbox WHERE state = 'delivered'`).get() as any).n === 2,
    );
    // Three refusals, then one accepted call per item.
    expect(stack.psa.calls.map((c) => c.status)).toEqual([503, 503, 503, 200, 200]);
    expect(stack.psa.calls.every((c) => c.verified)).toBe(true);
    const [a, b] = stack.psa.calls[0]!.items.map((i) => i.id);
    // The batch first, oldest first; after it failed, each item is retried alone (issue 10 item 8). Which item's retry
    // comes due first depends on the backoff's jitter and the machine's load, so the order of the singles is not fixed.
    const sent = stack.psa.calls.map((c) => c.items.map((i) => i.id));
    expect(sent[0]).toEqual([a, b]);
    expect(sent.slice(1).every((ids) => ids.length === 1)).toBe(true);
    const accepted = stack.psa.calls.filter((c) => c.status === 200).map((c) => c.items[0]!.id);
    expect(accepted.sort()).toEqual([a, b].sort());
    expect(
      stack.psa
        .accepted()
        .map((i) => i.data.description)
        .sort(),
    ).toEqual(["A", "B"]);
    // Each item's attempts are the refused calls it was in.
    const refusedCalls = (id: string | undefined) =>
      stack.psa.calls.filter((c) => c.status === 503 && c.items.some((i) => i.id === id)).length;
    const rows = stack.agent.db.$client
      .query(`SELECT state, attempts, delivered_via AS via, error_code AS code FROM inbox ORDER BY seq`)
      .all();
    expect(rows).toEqual([
      { state: "delivered", attempts: refusedCalls(a), via: "webhook", code: null },
      { state: "delivered", attempts: refusedCalls(b), via: "webhook", code: null },
    ]);
    expect(refusedCalls(a) + refusedCalls(b)).toBe(4);
  });

  test("a PSA that cannot verify the signature (other secret) refuses, and kontobro keeps the items and says why", async () => {
    stack = await startPullStack({ psa: { webhook_secret: "not-the-psa-secret-0123" } });
    await seedPsa(stack, [4711]);
    await stack.book([expense("A")]);
    await stack.runNow("expenses");
    await waitFor("refused twice", () => stack.psa.calls.length >= 2);
    expect(stack.psa.calls.every((c) => !c.verified && c.status === 401)).toBe(true);
    const row = stack.agent.db.$client.query(`SELECT state, error_code AS code, error_hint AS hint FROM inbox`).get() as any;
    expect(row).toMatchObject({ state: "new", code: "psa_http_401" });
    expect(row.hint).toContain("psa.webhook_secret");
    const page = await (await fetch(stack.agent.url)).text();
    expect(page).toContain("The PSA webhook answered 401");
  });
});

describe("the e-conomic webhook receiver", () => {
  test("a wrong token gets 401 and reveals nothing; nothing is pulled", async () => {
    stack = await startPullStack();
    const token = tokenOf();
    const wrong = [token.slice(0, -1) + (token.endsWith("A") ? "B" : "A"), "x", token + "x", "a".repeat(200)];
    const answers = await Promise.all([
      ...wrong.map((t) => fetch(`${stack.agent.url}/webhooks/economic/${t}?type=invoice&invoice=1`, { method: "POST" })),
      fetch(`${stack.agent.url}/webhooks/unimicro/${token}?type=invoice`, { method: "POST" }),
    ]);
    for (const res of answers) {
      expect(res.status).toBe(401);
      // The same answer for every wrong token: it says where the right URL is, never why this one is wrong.
      expect(await res.json()).toEqual({
        error: "unauthorized",
        message: "Unauthorized.",
        hint: expect.stringContaining("GET /api/v1/pulls"),
      });
    }
    await Bun.sleep(150); // longer than the debounce: a wrongly accepted hint would have started a run
    expect(runs("webhook")).toEqual([]);
  });

  test("the right token with e-conomic's URL-template parameters starts one debounced pull of the relevant stream", async () => {
    stack = await startPullStack({ pulls: { webhook_debounce_ms: 400 } });
    const url = `${stack.agent.url}/webhooks/economic/${tokenOf()}`;
    const hits = await Promise.all([1, 2, 3].map((n) => fetch(`${url}?type=invoice&invoice=${20000 + n}`, { method: "POST" })));
    for (const res of hits) {
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ accepted: true, target: "eco", pulls: ["payments"] });
    }
    const get = await fetch(`${url}?type=customer&old=[OLDNUMBER]&new=[NEWNUMBER]`);
    expect(await get.json()).toMatchObject({ accepted: true, pulls: [] }); // the PSA is master of customers
    await waitFor("the hinted pull", () => runs("webhook").some((r) => r.status === "ok"));
    await Bun.sleep(500); // longer than the debounce: a second run would have started by now
    expect(runs("webhook")).toEqual([{ stream: "payments", trigger: "webhook", status: "ok" }]);
    const big = await fetch(url, { method: "POST", body: "x".repeat(100_000), headers: { "content-type": "application/json" } });
    expect(big.status).toBe(413);
  });

  test("the sandbox calls kontobro's webhook when a day book is booked; the expense reaches the PSA", async () => {
    stack = await startPullStack();
    await seedPsa(stack, [4711]);
    await stack.control("webhooks", {
      type: "daybook",
      url: `${stack.agent.url}/webhooks/economic/${tokenOf()}?type=daybook&daybook=[DAYBOOKNO]&from=[FROMSERIALNO]&to=[TOSERIALNO]`,
    });
    const { booked } = await stack.book([expense("Hinted")]);
    await waitFor("the expense at the PSA", () => stack.psa.accepted().some((i) => i.data.description === "Hinted"));
    expect(runs("webhook")).toEqual([{ stream: "expenses", trigger: "webhook", status: "ok" }]);
    const { webhookCalls } = await stack.control("ledger");
    expect(webhookCalls[0].url).toContain(`daybook=1&from=${booked[0].voucherNumber}&to=${booked[0].voucherNumber}`);
    expect(webhookCalls[0].status).toBe(202);
  });
});

describe("status page and start-up", () => {
  test("the pull section shows jobs, the webhook token and inbox states; Run now starts a run", async () => {
    stack = await startPullStack({ psa: { webhook_url: undefined } });
    await seedPsa(stack, [4711]);
    await stack.book([expense("Shown"), expense("Unknown", 9999)]);
    let page = await (await fetch(stack.agent.url)).text();
    expect(page).toContain('data-job="eco/expenses"');
    expect(page).toContain('<code>0 6 * * *</code> <span class="muted">Europe/Copenhagen</span>');
    expect(page).toContain(tokenOf());
    const cross = await fetch(`${stack.agent.url}/ui/pulls/eco/expenses/run`, {
      method: "POST",
      redirect: "manual",
      headers: { origin: "https://evil.example" },
    });
    expect(cross.status).toBe(403);
    const res = await fetch(`${stack.agent.url}/ui/pulls/eco/expenses/run`, {
      method: "POST",
      redirect: "manual",
      headers: { origin: stack.agent.url },
    });
    expect(res.status).toBe(303);
    await waitFor("the manual run", () => runs("manual").some((r) => r.status === "ok"));
    page = await (await fetch(stack.agent.url)).text();
    expect(page).toContain("fetched 2, imported 1, already had 0, ignored 1");
    expect(page).toMatch(/data-state="ignored_unknown_project"[\s\S]*Ignored: project unknown to the PSA/);
    expect(page).toContain('data-inbox-state="new">1<');
  });

  test("a scheduled run missed while the agent was down is caught up at start", async () => {
    const dataDir = tempDir("kontobro-catchup-");
    const db = openDatabase(join(dataDir, "kontobro.db"));
    // The expenses job was configured three days ago and has not run since (the agent was down).
    db.$client.run(`INSERT INTO settings (name, value) VALUES ('pull_first_seen:eco:expenses', ?1)`, [String(Date.now() - 3 * 86_400_000)]);
    db.$client.close();
    stack = await startPullStack({ dataDir });
    await waitFor("the catch-up run", () => runs("catch-up").some((r) => r.status === "ok"));
    expect(runs()).toEqual([{ stream: "expenses", trigger: "catch-up", status: "ok" }]); // payments was first seen now: nothing missed
    await stack.restart();
    await Bun.sleep(200);
    expect(runs()).toHaveLength(1); // it ran: nothing to catch up any more
  });
});
