// /api/v1/openapi.json: OpenAPI 3.1 generated from the zod schemas that validate the requests, linted by
// Redocly CLI (offline, recommended-strict: warnings fail too); the agent's real answers match the
// described shapes; the reference page is server-rendered, with no script and nothing from elsewhere.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { DeliveryList, EventsAccepted, EventsRefused, InboxPage, PullJobs } from "../agent/http/openapi-schemas.ts";
import { EVENT_TYPES } from "../agent/model.ts";
import { DELIVERY_STATUSES } from "../agent/states.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, tempDir } from "./helpers.ts";

let stack: Stack;
let doc: any;
const auth = { authorization: "Bearer test-token-0123456789" };
beforeAll(async () => {
  stack = await startStack();
  const res = await fetch(`${stack.agent.url}/api/v1/openapi.json`);
  expect(res.status).toBe(200);
  doc = await res.json();
});
afterAll(async () => {
  await stack.stop();
});

describe("OpenAPI description of /api/v1", () => {
  test("is OpenAPI 3.1, served without a token, for this agent's address", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers[0].url).toBe(`${stack.agent.url}/api/v1`);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect(Object.keys(doc.paths)).toContain("/events");
    expect(Object.keys(doc.paths).length).toBeGreaterThanOrEqual(20);
  });

  test("is generated from the validators themselves", () => {
    // Each event type's data is the model's own schema, as zod renders it.
    const customer = z.toJSONSchema(EVENT_TYPES["customer.upserted"].schema, {
      io: "input",
      target: "draft-2020-12",
      unrepresentable: "any",
    }) as any;
    delete customer.$schema;
    expect(doc.components.schemas.Customer).toEqual(customer);
    expect(doc.components.schemas.CustomerUpsertedEvent.properties.type).toEqual({ type: "string", const: "customer.upserted" });
    expect(doc.components.schemas.Event.oneOf.length).toBe(Object.keys(EVENT_TYPES).length);
    const status = doc.paths["/deliveries"].get.parameters.find((p: any) => p.name === "status");
    expect(status.schema.enum).toEqual([...DELIVERY_STATUSES]);
    expect(doc.paths["/inbox"].get.parameters.map((p: any) => p.name)).toEqual(["after", "limit", "target"]);
  });

  test("the agent's answers have the described shapes", async () => {
    const post = async (body: unknown) =>
      fetch(`${stack.agent.url}/api/v1/events`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { ...auth, "content-type": "application/json" },
      });
    const accepted = await post(customerEvent(501));
    expect(accepted.status).toBe(202);
    EventsAccepted.strict().parse(await accepted.json());
    const refused = await post({ id: "x", type: "customer.upserted", data: { number: 1 } });
    expect(refused.status).toBe(422);
    EventsRefused.parse(await refused.json());
    await stack.waitDelivered(1);
    const list = DeliveryList.parse(await (await fetch(`${stack.agent.url}/api/v1/deliveries`, { headers: auth })).json());
    expect(Object.keys(list.deliveries[0]!).sort()).toEqual(Object.keys(doc.components.schemas.Delivery.properties).sort());
    InboxPage.parse(await (await fetch(`${stack.agent.url}/api/v1/inbox?after=0`, { headers: auth })).json());
    PullJobs.parse(await (await fetch(`${stack.agent.url}/api/v1/pulls`, { headers: auth })).json());
  });

  test("passes Redocly's lint (recommended-strict), offline", () => {
    const file = join(tempDir("kontobro-openapi-"), "openapi.json");
    writeFileSync(file, JSON.stringify(doc, null, 2));
    const cli = join(import.meta.dir, "../node_modules/@redocly/cli/bin/cli.js");
    // Redocly CLI runs on Node.js (>= 20.19); Bun runs it too where Node.js is missing.
    const runtime = Bun.which("node") ?? process.execPath;
    const r = spawnSync(runtime, [cli, "lint", file, "--extends", "recommended-strict", "--format", "stylish"], {
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true", NO_COLOR: "1", CI: "true" },
    });
    const output = `${r.stdout}\n${r.stderr}`;
    console.log(`redocly lint (${runtime}):\n${output.replace(/\n\s*\n/g, "\n").trim()}`);
    expect(r.status).toBe(0);
    expect(output).toContain("Your API description is valid");
    expect(output).not.toMatch(/\d+ (error|warning)s?\b/);
  });

  test("the reference page is server-rendered from it, linked from the status page", async () => {
    const page = await (await fetch(`${stack.agent.url}/ui/api`)).text();
    expect(page).toContain("<title>kontobro local API");
    for (const path of Object.keys(doc.paths)) expect(page).toContain(`<code>/api/v1${path}</code>`);
    expect(page).toContain('id="schema-Customer"');
    expect(page).toContain("Authorization: Bearer &lt;token&gt;");
    expect(page).not.toContain("<script");
    expect(page).not.toMatch(/(src|href)="https?:/);
    const status = await (await fetch(stack.agent.url)).text();
    expect(status).toContain('<a href="/ui/api">API reference</a>');
  });
});
