// The pure parts of tenants (issue 17) and the admin token: slugs, a tenant's configuration checked by
// kontobro.toml's validators, the order tenant tables are emptied in, token hashes, [admin] token_file.
import { describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { foreignKey, integer, pgTable } from "drizzle-orm/pg-core";
import { ConfigError, validateConfig } from "../agent/config.ts";
import { adminToken } from "../agent/tenants/admin-token.ts";
import { checkSlug, targetsOf, validateTenantConfig } from "../agent/tenants/config.ts";
import { TenantError } from "../agent/tenants/errors.ts";
import { childrenFirst } from "../agent/tenants/tables.ts";
import { sameHash, tokenHash } from "../agent/tenants/tokens.ts";
import { tempDir } from "./helpers.ts";

const problemsOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof TenantError || e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("expected a refusal");
};

describe("a tenant's slug and configuration", () => {
  test("slugs are lowercase letters, digits and dashes", () => {
    for (const ok of ["a", "acme", "acme-consulting-2", "9", "a".repeat(40)]) expect(checkSlug(ok)).toBe(ok);
    for (const bad of ["", "A", "acme_x", "-a", "a-", "å", "a".repeat(41), "a b"]) expect(() => checkSlug(bad)).toThrow(TenantError);
  });

  test("the same keys and validators as kontobro.toml; installation keys are refused by name", () => {
    const targets = [{ name: "books", kind: "uniconta", company_id: 7, username: "u", password: "${PW}" }];
    const valid = validateTenantConfig({ targets, exports: { currency: "NOK" } }, { PW: "tenants-config-password" });
    expect(valid.targets.map((t) => [t.name, t.kind, t.settings.password])).toEqual([["books", "uniconta", "tenants-config-password"]]);
    expect(valid.config).toEqual({ targets: [{ ...targets[0], password: "tenants-config-password" }], exports: { currency: "NOK" } });
    // What kontobro.toml refuses, a tenant's configuration refuses with the same words.
    const wrong = { targets: [{ name: "Books", kind: "uniconta", company_id: "7", username: "u", password: "p" }] };
    const asToml = problemsOf(() => validateConfig(wrong, {}));
    expect(problemsOf(() => validateTenantConfig(wrong, {}))).toEqual(asToml);
    expect(asToml.length).toBeGreaterThan(0);
    expect(problemsOf(() => validateTenantConfig({ dispatch: {}, colour: "red" }, {}))).toEqual([
      "dispatch: is set for the whole installation in kontobro.toml, not per tenant; remove it from the tenant's configuration",
      "colour: unknown key; a tenant's configuration holds only targets, psa, exports, notifications",
    ]);
    expect(problemsOf(() => validateTenantConfig([], {}))).toEqual([
      "(top level): must be a table of sections (targets, psa, exports, notifications)",
    ]);
    expect(targetsOf(valid.config)).toEqual([{ name: "books", kind: "uniconta" }]);
  });
});

describe("tenant tables are emptied children first", () => {
  test("a table comes before every table it references", () => {
    const parent = pgTable("parent", { id: integer("id").primaryKey() });
    const child = pgTable("child", { id: integer("id").primaryKey(), parentId: integer("parent_id").references(() => parent.id) });
    const grandchild = pgTable("grandchild", { childId: integer("child_id") }, (t) => [
      foreignKey({ columns: [t.childId], foreignColumns: [child.id] }),
    ]);
    expect(childrenFirst([parent, child, grandchild])).toEqual(["grandchild", "child", "parent"]);
    expect(childrenFirst([grandchild, parent, child])).toEqual(["grandchild", "child", "parent"]);
  });
});

describe("tokens and the admin token", () => {
  test("hashes compare equal only when the tokens are", () => {
    expect(sameHash(tokenHash("a"), tokenHash("a"))).toBe(true);
    expect(sameHash(tokenHash("a"), tokenHash("b"))).toBe(false);
    expect(sameHash(tokenHash("a"), "")).toBe(false);
  });

  test("[admin] token or token_file; a missing file or a short token says what to do", () => {
    const dir = tempDir();
    const file = join(dir, "admin-token");
    expect(adminToken({})).toBeNull();
    expect(adminToken({ token: "tenants-config-admin-token" })).toBe("tenants-config-admin-token");
    expect(problemsOf(() => adminToken({ token_file: file }))).toEqual([
      expect.stringMatching(/^admin\.token_file: .* cannot be read .*openssl rand/),
    ]);
    writeFileSync(file, "short\n");
    expect(problemsOf(() => adminToken({ token_file: file }))).toEqual([
      `admin.token_file: the token in ${file} must be at least 16 characters`,
    ]);
    writeFileSync(file, "Zm9vYmFyYmF6cXV4cXV1eGNvcmdl\n");
    chmodSync(file, 0o600);
    expect(adminToken({ token_file: file })).toBe("Zm9vYmFyYmF6cXV4cXV1eGNvcmdl");
    const pg = { url: "postgres://kontobro@db.example.com/kontobro" };
    expect(problemsOf(() => validateConfig({ storage: pg, admin: { token_file: file, token: "tenants-config-admin-token" } }, {}))).toEqual(
      ["admin: set token_file or token, not both"],
    );
    expect(validateConfig({ storage: pg, admin: { token_file: file } }, {}).config.admin).toEqual({ token_file: file });
    // On the SQLite file there are no tenants to manage.
    expect(problemsOf(() => validateConfig({ admin: { token_file: file } }, {}))).toEqual([
      expect.stringMatching(/^admin: the admin API manages tenants, which need PostgreSQL storage; set \[storage\] url/),
    ]);
  });
});
