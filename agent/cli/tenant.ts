// `kontobro tenant add|list|set|connect|status|rotate-token|disable|enable|remove`: the tenants of a hosted installation (PostgreSQL
// storage, issue 17), as the admin API manages them. A tenant's file is a kontobro.toml holding only its [[targets]],
// [psa], [exports] and [notifications]; its tokens are printed once, when it is added. `connect` signs a tenant's
// OAuth target in (as `kontobro connect` does for a single installation) and keeps the tokens in the tenant's rows.
import { readFileSync } from "node:fs";
import { connectorKinds } from "../../connectors/registry.ts";
import { createConnectors } from "../agent.ts";
import type { AgentConfig } from "../config.ts";
import { tenantCredentialStore } from "../credentials.ts";
import { createLogger } from "../log.ts";
import { loadTenantConfig } from "../tenants/config.ts";
import { loadConfig } from "./runtime.ts";
import { CONFIG_OPTION, defineCommand, defineGroup } from "./command.ts";
import { listed } from "./listing.ts";
import { runConnect } from "./connect.ts";
import { tenantStatus } from "./tenant-status.ts";
import { choiceList } from "../target-account.ts";
import { TenantError } from "../tenants/errors.ts";
import type { Tenant, TenantStore } from "../tenants/store.ts";

/** Runs `fn` on the configured tenants; a refusal is printed with how to fix it (2: bad input, 1: otherwise). */
async function withTenants(
  configFile: string | undefined,
  path: string,
  fn: (tenants: TenantStore, config: AgentConfig) => Promise<number>,
): Promise<number> {
  // PostgreSQL's modules are loaded by this command only, not at every start of the binary (issue 16: idle memory).
  const { NoTenantsInSqlite, openTenantStore } = await import("../tenants/open.ts");
  const { config } = loadConfig(configFile, { postgres: true });
  let opened: Awaited<ReturnType<typeof openTenantStore>>;
  try {
    opened = await openTenantStore(config);
  } catch (e) {
    if (!(e instanceof NoTenantsInSqlite)) throw e;
    console.error(`${path}: ${e.message}.`);
    return 2;
  }
  try {
    return await fn(opened.tenants, config);
  } catch (e) {
    if (!(e instanceof TenantError)) throw e;
    console.error(`${path}: ${e.message}${e.problems.map((p) => `\n  - ${p}`).join("")}\n  fix: ${e.hint}`);
    return e.code === "invalid_slug" || e.code === "invalid_config" ? 2 : 1;
  } finally {
    await opened.close();
  }
}

const targetsText = (t: Tenant) => t.targets.map((x) => `${x.name} (${x.kind})`).join(", ") || "none";
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** A tenant file (TOML), or the message saying why it cannot be read. */
function readTenantFile(file: string): { raw: unknown } | { error: string } {
  try {
    return { raw: Bun.TOML.parse(readFileSync(file, "utf8")) };
  } catch (e) {
    return { error: `${file} cannot be read as TOML: ${(e as Error).message}` };
  }
}

const add = defineCommand({
  name: "add",
  args: "SLUG",
  summary: "add a tenant from a file with its targets; prints its API token once",
  description:
    "FILE is a kontobro.toml holding only the tenant's sections: [[targets]] (same keys as kontobro.toml's),\n" +
    "[psa], [exports] and [notifications]; ${NAME} is read from the environment now and stored resolved.\n" +
    "The API token is printed once and stored only as a hash: keep it. The targets' webhook tokens are kept\n" +
    "in the tenant's settings: GET /api/v1/pulls (with the API token) lists their URLs again.",
  options: {
    file: { type: "string", value: "FILE", help: "the tenant's targets and settings (TOML), required" },
    name: { type: "string", value: "NAME", help: "for people (default: the slug)" },
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: [["kontobro tenant add acme --file acme.toml --name 'Acme A/S'", "prints its API token once"]],
  async run({ values, positionals: [slug], path, usage }) {
    if (!values.file) {
      console.error(`${path}: --file FILE is required: the tenant's targets, as in kontobro.toml\n\n${usage()}`);
      return 2;
    }
    const file = readTenantFile(values.file);
    if ("error" in file) {
      console.error(`${path}: ${file.error}`);
      return 2;
    }
    return withTenants(values.config, path, async (tenants) => {
      const added = await tenants.add({ slug: slug!, name: values.name, config: file.raw }, process.env);
      for (const w of added.warnings) console.log(`warning: ${w}`);
      console.log(`Tenant ${added.tenant.slug} added (${added.tenant.name}); targets: ${targetsText(added.tenant)}.`);
      console.log("\nIts API token, shown only now (kontobro keeps its hash): give it to the tenant's PSA.");
      console.log(`  ${added.apiToken}`);
      const hooks = Object.entries(added.webhookTokens);
      if (hooks.length > 0) {
        console.log("\nWebhook tokens of its targets (their URLs: /t/<slug>/webhooks/<kind>/<token>…, listed again by GET /api/v1/pulls):");
        for (const [target, token] of hooks) console.log(`  ${target}  ${token}`);
      }
      return 0;
    });
  },
});

const list = defineCommand({
  name: "list",
  summary: "the tenants: slug, state, targets, created (--json)",
  options: { json: { type: "boolean", help: "machine-readable: [{slug, name, state, targets, createdAt}]" }, ...CONFIG_OPTION },
  examples: ["kontobro tenant list", "kontobro tenant list --json"],
  run: ({ values, path }) =>
    withTenants(values.config, path, async (tenants) => {
      const all = await tenants.list();
      if (values.json) {
        const rows = all.map((t) => ({
          slug: t.slug,
          name: t.name,
          state: t.state,
          targets: t.targets,
          createdAt: new Date(t.createdAt).toISOString(),
        }));
        console.log(JSON.stringify(rows, null, 2));
        return 0;
      }
      if (all.length === 0) {
        console.log("No tenants yet; add one with kontobro tenant add SLUG --file FILE.");
        return 0;
      }
      const rows = [["SLUG", "STATE", "TARGETS", "CREATED"], ...all.map((t) => [t.slug, t.state, targetsText(t), day(t.createdAt)])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) console.log(r.map((cell, i) => (i < r.length - 1 ? cell.padEnd(widths[i]!) : cell)).join("  "));
      return 0;
    }),
});

const set = defineCommand({
  name: "set",
  args: "SLUG",
  summary: "replace a tenant's configuration from a file; every worker restarts the tenant with it",
  description:
    "FILE is the tenant's whole configuration, as for `kontobro tenant add` (its [[targets]], [psa], [exports],\n" +
    "[notifications]); it is checked the same way and nothing is stored when it has a problem. Every worker starts\n" +
    "the tenant afresh with it at once. Deliveries queued for a target the new file drops stay queued (counted in\n" +
    "GET /api/v1/status) and go out if the target comes back under the same name. Tokens do not change. A target\n" +
    "that keeps its name but points at another account (its kind, agreement, company or API host changed) while\n" +
    "kontobro holds ids of records in the old one is refused: rename it, or pass --forget-links or --keep-links.",
  // --file as for tenant add: --config names kontobro.toml in every command.
  options: {
    file: { type: "string", value: "FILE", help: "the tenant's new configuration (TOML), required" },
    "forget-links": {
      type: "string",
      value: "TARGET[,TARGET]",
      help: "targets pointed at another account: forget their ids of records in the old one (created anew)",
    },
    "keep-links": {
      type: "string",
      value: "TARGET[,TARGET]",
      help: "targets whose account settings changed but that are the same account (a new token): keep their ids",
    },
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: [["kontobro tenant set acme --file acme.toml", "after editing acme.toml"]],
  async run({ values, positionals: [slug], path, usage }) {
    if (!values.file) {
      console.error(`${path}: --file FILE is required: the tenant's whole configuration, as for tenant add\n\n${usage()}`);
      return 2;
    }
    const file = readTenantFile(values.file);
    if ("error" in file) {
      console.error(`${path}: ${file.error}`);
      return 2;
    }
    return withTenants(values.config, path, async (tenants) => {
      const changed = await tenants.setConfig(slug!, file.raw, process.env, {
        forget: choiceList(values["forget-links"]),
        keep: choiceList(values["keep-links"]),
      });
      for (const w of changed.warnings) console.log(`warning: ${w}`);
      console.log(`Tenant ${changed.tenant.slug} changed; targets: ${targetsText(changed.tenant)}. Every worker restarts it now.`);
      return 0;
    });
  },
});

const connect = defineCommand({
  name: "connect",
  args: "SLUG TARGET",
  summary: "sign a tenant's OAuth target in and keep its tokens in the tenant's rows",
  description:
    "As `kontobro connect` for a single installation: prints the authorisation address of the target's identity\n" +
    "server; sign in there as the tenant's user and accept. The browser comes back to the target's redirect_uri, where\n" +
    "this command listens when it is a loopback address; otherwise paste the code or the whole address it came back\n" +
    "to. The tokens go to the tenant's rows in PostgreSQL, where every worker reads them; refresh tokens rotate there.",
  options: {
    code: { type: "string", value: "CODE", help: "the authorization code (or the address the browser came back to), without waiting" },
    "no-listen": { type: "boolean", help: "do not listen on the redirect URI; wait for a pasted code" },
    ...CONFIG_OPTION,
  },
  positionals: [2, 2],
  examples: [["kontobro tenant connect acme books", "prints the address to open, waits for the browser"]],
  run: ({ values, positionals: [slug, name], path }) =>
    withTenants(values.config, path, async (tenants, config) => {
      const tenant = await tenants.get(slug!);
      if (!tenant) throw new TenantError("not_found", `there is no tenant "${slug}"`, "`kontobro tenant list` shows the tenants.");
      const { targets } = loadTenantConfig(tenant.config);
      const oauthTargets = targets.filter((t) => t.enabled && connectorKinds[t.kind]?.oauth);
      const target = oauthTargets.find((t) => t.name === name);
      if (!target) {
        const known = targets.some((t) => t.name === name);
        console.error(
          `${path}: tenant ${slug} has ${known ? `a target "${name}", but it does not sign in with OAuth (or is disabled)` : `no target "${name}"`}; ` +
            `its targets that sign in with OAuth: ${oauthTargets.map((t) => t.name).join(", ") || "none"}`,
        );
        return 2;
      }
      const store = tenantCredentialStore(tenants.runnerOf(tenant), target.name);
      return runConnect({
        config,
        target,
        code: values.code,
        listen: !values["no-listen"],
        input: console,
        home: {
          store,
          connector: () =>
            createConnectors([target], createLogger("error"), undefined, {
              credentials: () => store,
              signIn: () => `kontobro tenant connect ${slug} ${target.name}`,
            }).get(target.name),
          where: `tenant ${slug}'s rows in PostgreSQL`,
          command: `kontobro tenant connect ${slug} ${target.name}`,
          close: () => {},
        },
      });
    }),
});

const stateCommand = (name: "disable" | "enable", state: "disabled" | "active", summary: string, description: string) =>
  defineCommand({
    name,
    args: "SLUG",
    summary,
    description,
    options: { ...CONFIG_OPTION },
    positionals: [1, 1],
    examples: [`kontobro tenant ${name} acme`],
    run: ({ values, positionals: [slug], path }) =>
      withTenants(values.config, path, async (tenants) => {
        const t = await tenants.setState(slug!, state);
        console.log(`Tenant ${t.slug} is ${t.state}.`);
        return 0;
      }),
  });

const disable = stateCommand(
  "disable",
  "disabled",
  "stop a tenant's work: its API answers 403, the workers skip it",
  "Nothing of the tenant is deleted; `kontobro tenant enable` lets it work again.",
);
const enable = stateCommand(
  "enable",
  "active",
  "let a disabled tenant work again",
  "Its API takes requests again and the workers take up its work.",
);

const rotateToken = defineCommand({
  name: "rotate-token",
  args: "SLUG",
  summary: "give a tenant a new API token (printed once); the old one is refused at once",
  description:
    "Every worker refuses the old token (401) from now on: events the PSA sends with it are not stored, so give the\n" +
    "PSA the new one at once (a PSA that sends again after a 401 loses nothing). Nothing else of the tenant changes:\n" +
    "its work goes on, no worker restarts it, its webhook tokens stay.",
  options: { ...CONFIG_OPTION },
  positionals: [1, 1],
  examples: [["kontobro tenant rotate-token acme", "after its token leaked"]],
  run: ({ values, positionals: [slug], path }) =>
    withTenants(values.config, path, async (tenants) => {
      const { tenant, apiToken } = await tenants.rotateApiToken(slug!);
      console.log(`Tenant ${tenant.slug} has a new API token; the old one is refused from now on.`);
      console.log("\nIts API token, shown only now (kontobro keeps its hash): give it to the tenant's PSA.");
      console.log(`  ${apiToken}`);
      return 0;
    }),
});

const remove = defineCommand({
  name: "remove",
  args: "SLUG",
  summary: "delete a disabled tenant and all its rows (--yes)",
  description:
    "Deletes the tenant and every row it has in every table (events, deliveries, credentials, inbox, exports…)\n" +
    "in one transaction. Only a disabled tenant can be removed (kontobro tenant disable SLUG first), once no worker\n" +
    "pushes or pulls for it any more (refused meanwhile: try again a moment later). Cannot be undone.",
  options: { yes: { type: "boolean", help: "confirm: delete the tenant and everything it has" }, ...CONFIG_OPTION },
  positionals: [1, 1],
  examples: [["kontobro tenant remove acme --yes", "after kontobro tenant disable acme"]],
  async run({ values, positionals: [slug], path }) {
    if (!values.yes) {
      console.error(`${path}: this deletes tenant "${slug}" and all its rows and cannot be undone; pass --yes to confirm`);
      return 2;
    }
    return withTenants(values.config, path, async (tenants) => {
      const { rows, dropped } = await tenants.remove(slug!);
      console.log(`Tenant ${slug} removed, with its ${rows} row${rows === 1 ? "" : "s"}.`);
      const total = dropped.reduce((sum, d) => sum + d.n, 0);
      if (total > 0)
        console.log(
          `${total} queued deliver${total === 1 ? "y" : "ies"} never delivered went with it: ${dropped.map((d) => `${d.target} ${d.n}`).join(", ")}.`,
        );
      return 0;
    });
  },
});

export const tenant = defineGroup({
  ...listed("tenant"),
  description:
    "A hosted installation (PostgreSQL storage) keeps many tenants in one database, each with its own targets,\n" +
    "API token and data. With the SQLite file there is exactly one tenant: kontobro.toml's.",
  subcommands: [add, list, set, connect, tenantStatus(withTenants), rotateToken, disable, enable, remove],
  examples: [
    "kontobro tenant add acme --file acme.toml",
    "kontobro tenant list",
    "kontobro tenant set acme --file acme.toml",
    "kontobro tenant disable acme",
  ],
});
