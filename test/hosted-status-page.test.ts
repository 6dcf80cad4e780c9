// Each hosted tenant's status page (issue 17 item 3, agent/hosted/status-page.ts): a real hosted worker on a real
// PostgreSQL server (test/pg-server.ts), two tenants added with TenantStore, each with its own e-conomic sandbox over
// loopback. Each page shows only its tenant's records (a search for the other's invoice finds nothing), its links stay
// under /t/<slug>/, its retry and run-now buttons work (and cannot reach the other tenant's deliveries or pulls), another
// tenant's credentials get 401; and Chromium (Debian's, through playwright-core) opens a page with Basic credentials.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { validateConfig } from "../agent/config.ts";
import { postgresRunner } from "../agent/db/pg/runner.ts";
import { startHostedWorker, type HostedWorker } from "../agent/hosted/worker.ts";
import { silentLogger } from "../agent/log.ts";
import { TenantStore } from "../agent/tenants/store.ts";
import { startEconomicSandbox, type StartedEconomicSandbox } from "../connectors/economic/sandbox/index.ts";
import { customerEvent, invoiceEvent, tempDir, waitFor } from "./helpers.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN_TOKEN = "status-page-admin-token-0123456789";
const unavailable = pgUnavailable();
if (unavailable) console.warn(`hosted status pages on PostgreSQL skipped: ${unavailable}`);
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`hosted status page in a browser skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does this)`);

interface TenantUnderTest {
  id: number;
  slug: string;
  token: string;
  sandbox: StartedEconomicSandbox;
}

let server: PgServer;
let client: SQL;
let store: TenantStore;
let worker: HostedWorker;
const tenants: Record<"acme" | "globex", TenantUnderTest> = {} as any;

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const asTenant = (t: TenantUnderTest) => ({ authorization: basic(t.slug, t.token) });

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${worker.url}${path}`, { headers, redirect: "manual" });
  return {
    status: res.status,
    location: res.headers.get("location"),
    challenge: res.headers.get("www-authenticate"),
    text: await res.text(),
  };
}

/** The retry button's form post, as a browser on the page sends it (same origin). */
async function pressRetry(slug: string, id: number, headers: Record<string, string>) {
  const res = await fetch(`${worker.url}/t/${slug}/ui/deliveries/${id}/retry`, {
    method: "POST",
    headers: { ...headers, origin: worker.url, "content-type": "application/x-www-form-urlencoded" },
    body: "",
    redirect: "manual",
  });
  return { status: res.status, location: res.headers.get("location") };
}

async function post(t: TenantUnderTest, events: unknown[]) {
  const res = await fetch(`${worker.url}/api/v1/events`, {
    method: "POST",
    body: JSON.stringify(events),
    headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
  });
  expect(res.status).toBe(202);
}

/** The tenant's deliveries as GET /api/v1/status counts them, and those that need action. */
async function status(t: TenantUnderTest) {
  const res = await fetch(`${worker.url}/api/v1/status`, { headers: { authorization: `Bearer ${t.token}` } });
  return (await res.json()) as { counts: { status: string; n: number }[]; needsAction: { id: number; key: string }[] };
}

const count = async (t: TenantUnderTest, s: string) => (await status(t)).counts.find((c) => c.status === s)?.n ?? 0;

/** Every href and form action of a page. */
const linksOf = (page: string) => [...page.matchAll(/\s(?:href|action)="([^"]*)"/g)].map((m) => m[1]!);

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  const dir = tempDir("kontobro-hosted-page-");
  const { config } = validateConfig(
    {
      agent: { data_dir: join(dir, "data") },
      storage: { url: server.url },
      http: { port: 0 },
      dispatch: { retry_base_ms: 20, retry_max_ms: 200, idle_poll_ms: 50 },
      workers: { heartbeat_ms: 200, dead_after_ms: 3000 },
      admin: { token: ADMIN_TOKEN },
    },
    {},
  );
  worker = await startHostedWorker(config, silentLogger);
  client = new SQL({ url: server.url, max: 1 });
  store = new TenantStore(client);
  for (const slug of ["acme", "globex"] as const) {
    const sandbox = (await startEconomicSandbox({ port: 0 }))!;
    const added = await store.add(
      {
        slug,
        config: {
          exports: { company_name: `${slug} AB`, org_number: "556677-8899", currency: "NOK" },
          targets: [
            {
              name: "books",
              kind: "economic",
              rest_url: sandbox.url,
              projects_url: `${sandbox.url}/projectsapi/v1.1.0`,
              app_secret_token: "demo-app-secret",
              agreement_grant_token: "demo-agreement-grant",
              requests_per_second: 0,
            },
          ],
        },
      },
      {},
    );
    tenants[slug] = { id: added.tenant.id, slug, token: added.apiToken, sandbox };
  }
  // Each tenant: a customer and an invoice of its own, booked at its own sandbox.
  await post(tenants.acme, [customerEvent(101, {}, "acme-c-101"), invoiceEvent(5001, 101, undefined, {}, "acme-i-5001")]);
  await post(tenants.globex, [customerEvent(202, {}, "globex-c-202"), invoiceEvent(6001, 202, undefined, {}, "globex-i-6001")]);
  for (const t of Object.values(tenants)) await waitFor(`${t.slug} delivered`, async () => (await count(t, "done")) === 2, 30_000);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await client?.close();
  await server?.stop();
  for (const t of Object.values(tenants)) await t.sandbox?.stop();
});

describe.skipIf(!!unavailable)("a hosted tenant's status page", () => {
  test("a tenant's notices not sent yet are on its page, with why and when they go again; never on another's", async () => {
    // A notice of acme's whose webhook failed, as the tenant's notifier leaves it, in acme's rows.
    const runner = postgresRunner(client, tenants.acme.id);
    await runner.run(
      `INSERT INTO notifications (batch, target, channel, subject, body, payload, status, attempts, next_attempt_at, last_error, created_at)
       VALUES (1, 'books', 'webhook', 'acme: an invoice needs action', 'b', '{}', 'pending', 2, ?1, 'connection refused by hooks.acme.example', ?2)`,
      Date.now() + 60_000,
      Date.now(),
    );
    try {
      const acme = await get("/t/acme/", asTenant(tenants.acme));
      expect(acme.text).toContain('<section class="card notifications">');
      expect(acme.text).toContain("acme: an invoice needs action");
      expect(acme.text).toContain("connection refused by hooks.acme.example");
      expect(acme.text).toContain("2 attempt(s)");
      const globex = await get("/t/globex/", asTenant(tenants.globex));
      expect(globex.text).not.toContain("an invoice needs action");
      expect(globex.text).not.toContain('class="card notifications"');
    } finally {
      await runner.run(`DELETE FROM notifications`);
    }
  });

  test("each page shows only its own tenant's records, and every link stays under its prefix", async () => {
    const acme = await get("/t/acme/", asTenant(tenants.acme));
    expect(acme.status).toBe(200);
    expect(acme.text).toContain('<strong class="tenant">acme</strong>');
    expect(acme.text).toContain('data-target="books"');
    expect(acme.text).toContain('data-event="acme-i-5001"');
    expect(acme.text).not.toContain("globex");
    expect(acme.text).toMatch(/<strong data-status="done">2<\/strong>/);
    expect(acme.text).not.toContain("not-yet");
    const links = linksOf(acme.text);
    expect(links.length).toBeGreaterThan(3);
    for (const link of links) expect(link.startsWith("/t/acme/")).toBe(true);
    expect(links).toContain("/t/acme/ui/records/invoice/5001");

    const globex = await get("/t/globex/", asTenant(tenants.globex));
    expect(globex.status).toBe(200);
    expect(globex.text).toContain('data-event="globex-i-6001"');
    expect(globex.text).not.toContain("acme");

    // The search: its own invoice is found, the other tenant's number is nothing.
    const found = await get("/t/acme/ui/records?number=5001", asTenant(tenants.acme));
    expect(found).toMatchObject({ status: 303, location: "/t/acme/ui/records/invoice/5001" });
    const other = await get("/t/acme/ui/records?number=6001", asTenant(tenants.acme));
    expect(other.status).toBe(200);
    expect(other.text).toContain("Nothing numbered 6001");
    expect((await get("/t/acme/ui/records/invoice/6001", asTenant(tenants.acme))).status).toBe(404);
    expect((await get("/t/acme/ui/records/customer/202", asTenant(tenants.acme))).status).toBe(404);

    const record = await get("/t/acme/ui/records/invoice/5001", asTenant(tenants.acme));
    expect(record.status).toBe(200);
    expect(record.text).toContain('data-outcome="delivered"');
    expect(record.text).toContain('data-event="acme-i-5001"');
    for (const link of linksOf(record.text)) expect(link.startsWith("/t/acme/")).toBe(true);
    // The page without its slash leads to it.
    expect(await get("/t/acme")).toMatchObject({ status: 301, location: "/t/acme/" });
  });

  test("another tenant's credentials, none, or a wrong token get 401 with a Basic challenge; the operator's token opens any page", async () => {
    const refused = async (path: string, headers: Record<string, string> = {}) => {
      const r = await get(path, headers);
      expect(r.status).toBe(401);
      expect(r.challenge).toMatch(/^Basic realm="kontobro tenant /);
      expect(r.text).not.toContain("5001");
      return r;
    };
    await refused("/t/acme/");
    await refused("/t/acme/", { authorization: basic("globex", tenants.globex.token) });
    await refused("/t/acme/", { authorization: basic("acme", tenants.globex.token) });
    await refused("/t/acme/ui/records/invoice/5001", { authorization: `Bearer ${tenants.globex.token}` });
    await refused("/t/acme/", { authorization: basic("acme", "not-the-token") });
    // The right token under another tenant's name is refused too.
    await refused("/t/globex/", { authorization: basic("globex", tenants.acme.token) });
    await refused("/t/nobody/", { authorization: basic("nobody", tenants.acme.token) });
    expect((await pressRetry("acme", 1, { authorization: basic("globex", tenants.globex.token) })).status).toBe(401);

    // The tenant's token as a Bearer token, and the operator's, open it.
    expect((await get("/t/acme/", { authorization: `Bearer ${tenants.acme.token}` })).status).toBe(200);
    for (const slug of ["acme", "globex"]) {
      const page = await get(`/t/${slug}/`, { authorization: basic("operator", ADMIN_TOKEN) });
      expect(page.status).toBe(200);
      expect(page.text).toContain(`<strong class="tenant">${slug}</strong>`);
    }
    const none = await get("/t/nobody/", { authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(none.status).toBe(404);
    expect(none.text).toContain('There is no tenant "nobody"');
  });

  test("the retry button sends the delivery again; it cannot touch another tenant's delivery, nor be pressed from another site", async () => {
    // A customer each tenant's target refuses (its customer group is gone): needs action at both.
    for (const t of Object.values(tenants))
      await fetch(`${t.sandbox.url}/__sandbox/seed/remove`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ items: ["customerGroup1"] }),
      });
    await post(tenants.acme, [customerEvent(131, {}, "acme-c-131")]);
    await post(tenants.globex, [customerEvent(232, {}, "globex-c-232")]);
    const failed = async (t: TenantUnderTest) =>
      (await waitFor(`${t.slug} needs action`, async () => (await status(t)).needsAction[0] ?? null, 30_000))!;
    const acmeFailed = await failed(tenants.acme);
    const globexFailed = await failed(tenants.globex);
    for (const t of Object.values(tenants)) await fetch(`${t.sandbox.url}/__sandbox/reset`, { method: "POST" });

    const page = await get("/t/acme/", asTenant(tenants.acme));
    expect(page.text).toContain(`action="/t/acme/ui/deliveries/${acmeFailed.id}/retry"`);
    expect(page.text).toContain("Retry customer 131 at books");

    // From another site: refused, nothing retried.
    const crossSite = await fetch(`${worker.url}/t/acme/ui/deliveries/${acmeFailed.id}/retry`, {
      method: "POST",
      headers: { ...asTenant(tenants.acme), origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" },
      body: "",
      redirect: "manual",
    });
    expect(crossSite.status).toBe(403);
    // Acme's page pressing retry on globex's delivery: row-level security finds no such delivery for acme.
    expect(await pressRetry("acme", globexFailed.id, asTenant(tenants.acme))).toEqual({ status: 303, location: "/t/acme/" });
    expect(await count(tenants.acme, "needs_action")).toBe(1);
    expect(await count(tenants.globex, "needs_action")).toBe(1);

    expect(await pressRetry("acme", acmeFailed.id, asTenant(tenants.acme))).toEqual({ status: 303, location: "/t/acme/" });
    await waitFor("acme's customer delivered after the retry", async () => (await count(tenants.acme, "done")) === 3, 30_000);
    expect(await count(tenants.acme, "needs_action")).toBe(0);
    // Globex's delivery was not retried by acme's button: it still needs action.
    expect((await status(tenants.globex)).needsAction.map((d) => d.id)).toEqual([globexFailed.id]);
    // Pressed on a record page, it comes back to that page.
    const back = "/t/globex/ui/records/customer/232";
    const res = await fetch(`${worker.url}/t/globex/ui/deliveries/${globexFailed.id}/retry`, {
      method: "POST",
      headers: { ...asTenant(tenants.globex), origin: worker.url, "content-type": "application/x-www-form-urlencoded" },
      body: `back=${encodeURIComponent(back)}`,
      redirect: "manual",
    });
    expect(res.headers.get("location")).toBe(back);
    await waitFor("globex's customer delivered after the retry", async () => (await count(tenants.globex, "needs_action")) === 0, 30_000);
  });

  test("the run-now button starts the tenant's own pull and comes back to its page; the webhook address is under its prefix", async () => {
    const jobRow = async (t: TenantUnderTest) =>
      /<tr data-job="books\/payments">[\s\S]*?<\/tr>/.exec((await get(`/t/${t.slug}/`, asTenant(t))).text)?.[0] ?? "";
    const page = await get("/t/acme/", asTenant(tenants.acme));
    expect(page.text).toContain('action="/t/acme/ui/pulls/books/payments/run"');
    expect(page.text).toMatch(/<code>\/t\/acme\/webhooks\/economic\/[A-Za-z0-9_-]+<\/code>/);
    expect(await jobRow(tenants.acme)).toContain("never");
    const res = await fetch(`${worker.url}/t/acme/ui/pulls/books/payments/run`, {
      method: "POST",
      headers: { ...asTenant(tenants.acme), origin: worker.url, "content-type": "application/x-www-form-urlencoded" },
      body: "",
      redirect: "manual",
    });
    expect({ status: res.status, location: res.headers.get("location") }).toEqual({ status: 303, location: "/t/acme/" });
    await waitFor("acme's pull run shown on its page", async () => (await jobRow(tenants.acme)).includes('class="run-ok"'), 30_000);
    // Globex's job of the same name did not run.
    expect(await jobRow(tenants.globex)).toContain("never");
    // Another tenant's credentials cannot press it.
    const refused = await fetch(`${worker.url}/t/globex/ui/pulls/books/payments/run`, {
      method: "POST",
      headers: { ...asTenant(tenants.acme), origin: worker.url },
      redirect: "manual",
    });
    expect(refused.status).toBe(401);
  });

  test("the exports section: a tenant's page lists only its own files, runs a SIE export from its form, and refuses another tenant's credentials", async () => {
    const form = { ...asTenant(tenants.acme), origin: worker.url, "content-type": "application/x-www-form-urlencoded" };
    const before = await get("/t/acme/", asTenant(tenants.acme));
    expect(before.text).toContain('id="exports"');
    expect(before.text).toContain('action="/t/acme/ui/exports/run"');
    expect(before.text).toContain('action="/t/acme/ui/exports/status"');
    expect(before.text).toContain('<strong data-export-status="to_transfer">1</strong>');

    // Another tenant's credentials: 401 on the form and the download, nothing exported.
    const foreign = await fetch(`${worker.url}/t/acme/ui/exports/run`, {
      method: "POST",
      headers: { ...form, ...asTenant(tenants.globex) },
      body: "what=sie4",
      redirect: "manual",
    });
    expect(foreign.status).toBe(401);
    expect((await get("/t/acme/", asTenant(tenants.acme))).text).toContain('<strong data-export-status="to_transfer">1</strong>');

    // Acme's SIE 4 export from its page's form: its one invoice, its file linked under its prefix.
    const run = await fetch(`${worker.url}/t/acme/ui/exports/run`, {
      method: "POST",
      headers: form,
      body: "what=sie4",
      redirect: "manual",
    });
    const result = await run.text();
    expect(run.status).toBe(200);
    expect(result).toContain("1 invoice(s) marked as transferred");
    const download = /href="(\/t\/acme\/ui\/exports\/files\/(\d+)\/download)"/.exec(result);
    expect(download).not.toBeNull();
    for (const link of linksOf(result)) expect(link.startsWith("/t/acme/")).toBe(true);
    const fileId = download![2]!;
    const file = await fetch(`${worker.url}${download![1]}`, { headers: asTenant(tenants.acme) });
    expect(file.status).toBe(200);
    const sie = new TextDecoder("latin1").decode(await file.arrayBuffer());
    expect(sie).toContain("#SIETYP 4");
    expect(sie).toContain("5001");
    expect(sie).not.toContain("6001");

    const acme = await get("/t/acme/", asTenant(tenants.acme));
    expect(acme.text).toContain(`<tr data-file="${fileId}">`);
    expect(acme.text).toContain('<strong data-export-status="transferred">1</strong>');
    for (const link of linksOf(acme.text)) expect(link.startsWith("/t/acme/")).toBe(true);
    // Globex's page lists none of acme's files and its invoice is still to transfer.
    const globex = await get("/t/globex/", asTenant(tenants.globex));
    expect(globex.text).toContain("No files exported yet.");
    expect(globex.text).not.toContain("data-file=");
    expect(globex.text).toContain('<strong data-export-status="to_transfer">1</strong>');
    // The file through globex's own page: row-level security finds no such file; with globex's credentials on acme's: 401.
    expect((await get(`/t/globex/ui/exports/files/${fileId}/download`, asTenant(tenants.globex))).status).toBe(404);
    expect((await get(`/t/acme/ui/exports/files/${fileId}/download`, asTenant(tenants.globex))).status).toBe(401);
    const status = await fetch(`${worker.url}/t/acme/ui/exports/status`, {
      method: "POST",
      headers: { ...form, ...asTenant(tenants.globex) },
      body: "number=5001&status=to_transfer",
      redirect: "manual",
    });
    expect(status.status).toBe(401);
  });

  test("a target whose sign-in was refused says so on its tenant's page, with the tenant's command to connect again", async () => {
    // The state an OAuth target's refused refresh stores (agent/credentials.ts), in acme's rows.
    const acme = postgresRunner(client, tenants.acme.id);
    await acme.run(
      `INSERT INTO credentials (target, issuer, client_id, state, problem, updated_at) VALUES ('books', 'https://issuer.example', 'app', 'reconnect', 'the refresh token was revoked', 1)`,
    );
    try {
      const page = await get("/t/acme/", asTenant(tenants.acme));
      expect(page.text).toContain('data-connection="reconnect"');
      expect(page.text).toContain("<code>kontobro tenant connect acme books</code>");
      expect((await get("/t/globex/", asTenant(tenants.globex))).text).not.toContain("data-connection");
    } finally {
      await acme.run(`DELETE FROM credentials WHERE target = 'books'`);
    }
  });

  test("a disabled tenant's page is closed to its token, saying so; the operator still opens it", async () => {
    await store.setState("globex", "disabled");
    try {
      const closed = await get("/t/globex/", asTenant(tenants.globex));
      expect(closed.status).toBe(403);
      expect(closed.text).toContain('Tenant "globex" is disabled');
      const operator = await get("/t/globex/", { authorization: `Bearer ${ADMIN_TOKEN}` });
      expect(operator.status).toBe(200);
      expect(operator.text).toContain("This tenant does not run on the worker that answered: it is disabled");
      expect(operator.text).toContain('data-event="globex-i-6001"');
    } finally {
      await store.setState("globex", "active");
    }
  });
});

describe.skipIf(!!unavailable || !haveChromium)("a hosted tenant's status page in Chromium", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  test("opened with the tenant's Basic credentials: its page, the search, the record page", async () => {
    const context = await browser.newContext({ httpCredentials: { username: "acme", password: tenants.acme.token } });
    const page = await context.newPage();
    const res = await page.goto(`${worker.url}/t/acme/?refresh=0`);
    expect(res?.status()).toBe(200);
    const card = page.locator('section.target[data-target="books"]');
    expect(await card.locator('[data-status="done"]').textContent()).toBe(String(await count(tenants.acme, "done")));
    expect(await page.locator("header .tenant").textContent()).toBe("acme");
    await page.getByLabel("Number").fill("5001");
    await page.getByRole("button", { name: "Find record" }).click();
    await page.waitForURL(`${worker.url}/t/acme/ui/records/invoice/5001`);
    expect(await page.locator("h1").textContent()).toBe("Invoice 5001");
    expect(await page.locator('tr[data-outcome="delivered"]').count()).toBeGreaterThan(0);
    await page.getByRole("link", { name: "kontobro status page" }).click();
    await page.waitForURL(`${worker.url}/t/acme/`);
    await context.close();

    // With the other tenant's credentials the browser gets the 401 and nothing of the page.
    const other = await browser.newContext({ httpCredentials: { username: "globex", password: tenants.globex.token } });
    const refused = await other.newPage();
    expect((await refused.goto(`${worker.url}/t/acme/`))?.status()).toBe(401);
    expect(await refused.locator("section.target").count()).toBe(0);
    await other.close();
  }, 60_000);
});
