// `kontobro check` against the sandbox: all set, then with required set-up removed, then wrong tokens.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { silentLogger } from "../agent/log.ts";
import { EconomicConfig } from "../connectors/economic/config.ts";
import { EconomicConnector } from "../connectors/economic/connector.ts";
import { startEconomicSandbox } from "../connectors/economic/sandbox/index.ts";

let sandbox: Awaited<ReturnType<typeof startEconomicSandbox>>;
beforeAll(async () => {
  sandbox = await startEconomicSandbox({ port: 0 });
});
afterAll(async () => {
  await sandbox.stop();
});

const connector = (tokens: Partial<Record<"app_secret_token" | "agreement_grant_token", string>> = {}) =>
  new EconomicConnector(
    "eco",
    EconomicConfig.parse({
      rest_url: sandbox.url,
      projects_url: sandbox.projectsUrl,
      app_secret_token: "demo-app-secret",
      agreement_grant_token: "demo-agreement-grant",
      requests_per_second: 0,
      ...tokens,
    }),
    { log: silentLogger },
  );

describe("e-conomic check", () => {
  test("a complete agreement passes every check", async () => {
    const items = await connector().check();
    expect(items.filter((i) => !i.ok)).toEqual([]);
    expect(items.map((i) => i.name)).toEqual(
      expect.arrayContaining(["tokens", "customer group 1", "project group 1 (Internal)", "journal 1"]),
    );
  });

  test("missing customer group, internal project group and journal are named, with how to fix them", async () => {
    await fetch(`${sandbox.url}/__sandbox/seed/remove`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ items: ["customerGroup1", "internalProjectGroup", "journal1"] }),
    });
    const failed = (await connector().check()).filter((i) => !i.ok);
    expect(failed.map((i) => i.name)).toEqual(["customer group 1", "project group 1 (Internal)", "journal 1"]);
    for (const f of failed) expect(f.hint).toBeTruthy();
    expect(failed[0]!.message).toBe("Customer group 1 does not exist in e-conomic; new customers are put in it.");
    await fetch(`${sandbox.url}/__sandbox/reset`, { method: "POST" });
  });

  test("wrong tokens stop at the first check with a plain message", async () => {
    const items = await connector({ agreement_grant_token: "not-the-grant" }).check();
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ ok: false, name: "tokens" });
    expect(items[0]!.hint).toContain("token");
  });
});
