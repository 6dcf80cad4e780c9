// Master per entity, the pure parts: kontobro.toml's `masters`, fingerprints, matching names.
import { describe, expect, test } from "bun:test";
import { ConfigError, validateConfig } from "../agent/config.ts";
import { fingerprint, keyOf, normaliseName, parseMasters, sameName } from "../agent/master/policy.ts";
import { connectorKinds } from "../connectors/registry.ts";

describe("masters in kontobro.toml", () => {
  test("per target and entity; the PSA by default; only a connector that can be master may name the target", () => {
    const problems: string[] = [];
    expect(parseMasters(connectorKinds.eaccounting!, { customers: "target", products: "psa" }, "targets[0]", problems)).toEqual({
      customer: "target",
      product: "psa",
    });
    expect(parseMasters(connectorKinds.eaccounting!, undefined, "targets[0]", problems)).toEqual({});
    expect(problems).toEqual([]);
    parseMasters(connectorKinds.economic!, { customers: "target" }, "targets[0]", problems);
    parseMasters(connectorKinds.eaccounting!, { projects: "target", products: "both" }, "targets[1]", problems);
    expect(problems).toEqual([
      'targets[0].masters.customers: Visma e-conomic cannot be the master of customers; the PSA is (remove the key or write "psa")',
      "targets[1].masters.projects: unknown entity; use customers or products",
      'targets[1].masters.products: must be "psa" or "target"',
    ]);
  });

  test("validateConfig keeps them on the target and refuses the wrong ones with one line each", () => {
    const base = { kind: "eaccounting", client_id: "c", client_secret: "s" };
    const { targets } = validateConfig(
      {
        targets: [
          { name: "ea", ...base, masters: { customers: "target" } },
          { name: "eco", kind: "economic", app_secret_token: "a", agreement_grant_token: "b" },
        ],
      },
      {},
    );
    expect(targets.map((t) => [t.name, t.masters])).toEqual([
      ["ea", { customer: "target" }],
      ["eco", {}],
    ]);
    try {
      validateConfig(
        { targets: [{ name: "uc", kind: "uniconta", company_id: 1, username: "u", password: "p", masters: { products: "target" } }] },
        {},
      );
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual([
        'targets[0].masters.products: Uniconta cannot be the master of products; the PSA is (remove the key or write "psa")',
      ]);
    }
  });

  test("two targets named master of one entity are refused: the PSA has one set of customers", () => {
    const ea = (name: string, masters: object) => ({ name, kind: "eaccounting", client_id: "c", client_secret: "s", masters });
    try {
      validateConfig(
        {
          targets: [
            ea("ea1", { customers: "target" }),
            ea("ea2", { customers: "target", products: "target" }),
            { ...ea("ea3", { products: "target" }), enabled: false },
          ],
        },
        {},
      );
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual([
        'targets[1].masters.customers: target "ea1" is already the master of customers; the PSA has one set of customers, so only one system can be their master (write "psa" for all targets but one)',
        'targets[2].masters.products: target "ea2" is already the master of products; the PSA has one set of products, so only one system can be their master (write "psa" for all targets but one)',
      ]);
    }
    // One master of each entity, in different targets: fine.
    expect(validateConfig({ targets: [ea("ea1", { customers: "target" }), ea("ea2", { products: "target" })] }, {}).targets).toHaveLength(
      2,
    );
  });
});

describe("matching and comparing", () => {
  test("names match case and spacing aside; numbers are keys", () => {
    expect(normaliseName("  Fjordkraft   Consulting AB ")).toBe("fjordkraft consulting ab");
    expect(sameName("ÅKE AB", "åke ab")).toBe(true);
    expect(sameName("Fjordkraft AB", "Fjordkraft A/S")).toBe(false);
    expect(keyOf("customer", { number: "10042" })).toBe("10042");
    expect(keyOf("product", { code: "KONS" })).toBe("KONS");
  });

  test("a fingerprint ignores key order, empty values and surrounding spaces; it sees every real change", () => {
    const a = { number: "1", name: "A", addresses: [{ city: "Oslo", zip: "0150" }], email: undefined, phone: "" };
    expect(fingerprint(a)).toBe(fingerprint({ addresses: [{ zip: "0150", city: " Oslo" }], name: "A", number: "1" }));
    expect(fingerprint(a)).not.toBe(fingerprint({ ...a, name: "B" }));
    expect(fingerprint(a)).not.toBe(fingerprint({ ...a, addresses: [{ city: "Oslo", zip: "0151" }] }));
  });
});
