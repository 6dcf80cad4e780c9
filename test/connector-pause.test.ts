// Every connector says how long its client still holds requests back after the target answered 429 with Retry-After
// (Connector.pausedForMs): the dispatcher's round stores that pause for every worker, so a 429 read by a request
// outside any push (a late create's answer, a pull, a lookup) is honoured by the other workers too (issue 16's
// PostgreSQL chaos run). Each connector against its own sandbox, over loopback, throttled through the chaos adapter.
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfigFile } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import type { Connector } from "../connectors/contract.ts";
import { connectorKinds } from "../connectors/registry.ts";
import type { ChaosTarget } from "../connectors/sandbox.ts";
import { tempDir } from "./helpers.ts";

// eAccounting's throttle answers name the wait in their message; its pause is tested in eaccounting-connector's
// rate-limit test, so it is left out here although it has a chaos adapter now.
const kinds = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.chaos && k !== "eaccounting");
const plan = { timeoutMs: 5_000, slowCreateMs: 6_000, slowCreateProbability: 0, lateAnswerWaitMs: 7_000 };

let target: ChaosTarget | null = null;
afterEach(async () => {
  await target?.stop();
  target = null;
});

/** The connector of kind `kind` as the agent builds it, from the [[targets]] table its chaos adapter writes. */
async function connectorAgainstSandbox(kind: string): Promise<Connector> {
  const dir = tempDir();
  target = await (await connectorKinds[kind]!.chaos!())({ name: "t", dir, random: () => 0.5, plan });
  const path = join(dir, "kontobro.toml");
  writeFileSync(path, `[agent]\ndata_dir = "${dir}/data"\n[http]\napi_token = "pause-token-0123456789"\n${target.toml}`, { mode: 0o600 });
  const t = loadConfigFile(path, {}).targets[0]!;
  return connectorKinds[kind]!.create(t.name, t.settings, { log: silentLogger });
}

describe("a connector's client pause is visible to the dispatcher", () => {
  test("every connector with a sandbox is covered (eAccounting in eaccounting-connector's rate-limit test)", () => {
    const withSandbox = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.startSandbox);
    expect([...kinds, "eaccounting"].sort()).toEqual(withSandbox.sort());
  });

  for (const kind of kinds) {
    test(`${kind}: a lookup answered 429 with Retry-After 600 outside any push pauses the client for about 600 s`, async () => {
      const connector = await connectorAgainstSandbox(kind);
      expect(connector.pausedForMs).toBeFunction();
      // Tokens and set-up lists first, unthrottled: the 429 below is the API's answer to a lookup.
      await connector.find("customer", { number: 1, name: "Kunde 1" }).catch(() => null);
      expect(connector.pausedForMs!()).toBe(0);
      target!.throttle(600);
      await expect(connector.find("customer", { number: 2, name: "Kunde 2" })).rejects.toThrow();
      const held = connector.pausedForMs!();
      expect(held).toBeGreaterThan(590_000);
      expect(held).toBeLessThanOrEqual(600_000);
    });
  }
});
