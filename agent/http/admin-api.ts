// /admin/v1: the operator's API of a hosted installation (PostgreSQL storage, issue 17), guarded by its own
// token ([admin] token_file or token), never by a tenant's. Mounted by app.ts only when that token is set.
//   GET    /admin/v1/tenants                 the tenants (no secrets: no configuration, no tokens)
//   POST   /admin/v1/tenants                 {slug, name?, config}: adds one; its tokens are in this answer only
//   PUT    /admin/v1/tenants/:slug/config    its configuration replaced (validated as when added); every worker restarts it;
//                                            ?forget_links=T / ?keep_links=T for a target pointed at another account
//   POST   /admin/v1/tenants/:slug/rotate-token  a new API token, in this answer only; the old one is refused at once
//   POST   /admin/v1/tenants/:slug/disable   its API answers 403, the workers skip it
//   POST   /admin/v1/tenants/:slug/enable
//   DELETE /admin/v1/tenants/:slug           a disabled tenant and all its rows
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { lazySchema, once } from "../lazy-schema.ts";
import { issuesToProblems } from "../problem.ts";
import { choiceList } from "../target-account.ts";
import { TENANT_SECTIONS } from "../tenants/config.ts";
import { TenantError, type TenantErrorCode } from "../tenants/errors.ts";
import type { Tenant, TenantStore } from "../tenants/store.ts";
import { requireApiToken } from "./auth.ts";

export interface AdminContext {
  /** The admin token ([admin] token_file or token). */
  token: string;
  tenants: TenantStore;
}

/** POST /admin/v1/tenants's body. Built on its first request (agent/lazy-schema.ts): the idle agent holds no route's schema. */
const newTenantBody = once(() =>
  z.strictObject({
    slug: z.string().min(1).max(100).describe("Lowercase letters, digits and dashes (1 to 40), e.g. acme-consulting."),
    name: z.string().trim().min(1).max(200).optional().describe("For people; the slug when absent."),
    config: z
      .record(z.string(), z.unknown())
      .describe(`The tenant's ${TENANT_SECTIONS.join(", ")} with kontobro.toml's keys, as JSON ({"targets": [{"name": …, "kind": …}]}).`),
  }),
);
export const NewTenantBody = lazySchema(newTenantBody);

const STATUS: Record<TenantErrorCode, ContentfulStatusCode> = {
  invalid_slug: 400,
  invalid_config: 422,
  duplicate_slug: 409,
  not_found: 404,
  still_active: 409,
  work_under_way: 409,
  account_changed: 409,
  lookup_changed: 409,
  token_rotated: 409,
};

/** A tenant as the admin API shows it: no configuration (it holds the targets' secrets) and no token hashes. */
const view = (t: Tenant) => ({
  slug: t.slug,
  name: t.name,
  state: t.state,
  targets: t.targets,
  createdAt: new Date(t.createdAt).toISOString(),
  updatedAt: new Date(t.updatedAt).toISOString(),
});

function refusal(c: Context, e: unknown) {
  if (!(e instanceof TenantError)) throw e;
  return c.json(
    {
      error: e.code,
      message: `${e.message[0]!.toUpperCase()}${e.message.slice(1)}.`,
      hint: e.hint,
      ...(e.problems.length ? { problems: e.problems } : {}),
    },
    STATUS[e.code],
  );
}

const ONE_MIB = bodyLimit({
  maxSize: 1024 * 1024,
  onError: (c) => c.json({ error: "body_too_large", message: "The request body is larger than 1 MiB." }, 413),
});

/** The request's JSON body, or the answer that says what is wrong with it. */
async function jsonBody(c: Context, what: string): Promise<{ body: unknown } | { refused: Response }> {
  if (!/^application\/json\b/i.test(c.req.header("content-type") ?? "")) {
    return {
      refused: c.json(
        { error: "unsupported_media_type", message: "Content-Type must be application/json.", hint: `Send ${what} as JSON.` },
        415,
      ),
    };
  }
  try {
    return { body: await c.req.json() };
  } catch (e) {
    return {
      refused: c.json({ error: "invalid_json", message: `The body is not valid JSON: ${(e as Error).message.slice(0, 200)}` }, 400),
    };
  }
}

export function adminRoutes(admin: AdminContext): Hono {
  const api = new Hono();
  api.use(
    "*",
    requireApiToken(
      () => admin.token,
      "Send the header Authorization: Bearer <admin token>, the token in [admin] token_file (or token) of kontobro.toml; a tenant's API token is not accepted here.",
    ),
  );

  api.get("/tenants", async (c) => c.json({ tenants: (await admin.tenants.list()).map(view) }));

  api.post("/tenants", ONE_MIB, async (c) => {
    const got = await jsonBody(c, "the tenant");
    if ("refused" in got) return got.refused;
    const parsed = newTenantBody().safeParse(got.body);
    if (!parsed.success) {
      return c.json(
        {
          error: "bad_request",
          message: "The body is not a tenant.",
          hint: 'Send {"slug": "acme", "name": "Acme A/S", "config": {"targets": [...]}}.',
          problems: issuesToProblems(parsed.error.issues, { whole: "(body)" }).map((p) => p.message),
        },
        400,
      );
    }
    try {
      // The server's environment is not the caller's: ${NAME} in the configuration is not resolved here.
      const added = await admin.tenants.add(parsed.data, {});
      c.header("Cache-Control", "no-store");
      return c.json(
        {
          tenant: view(added.tenant),
          apiToken: added.apiToken,
          webhookTokens: added.webhookTokens,
          warnings: added.warnings,
          note: "The API token is shown only in this answer (kontobro keeps its hash): store it now. The webhook tokens are kept in the tenant's settings; GET /api/v1/pulls with the API token lists their URLs again.",
        },
        201,
      );
    } catch (e) {
      return refusal(c, e);
    }
  });

  // The body is the configuration itself, as POST /tenants takes it in `config`.
  api.put("/tenants/:slug/config", ONE_MIB, async (c) => {
    const got = await jsonBody(c, 'the configuration ({"targets": [...]})');
    if ("refused" in got) return got.refused;
    try {
      // ?forget_links=books,ledger / ?keep_links=…: a target pointed at another account (agent/target-account.ts).
      const changed = await admin.tenants.setConfig(
        c.req.param("slug"),
        got.body,
        {},
        {
          forget: choiceList(c.req.query("forget_links")),
          keep: choiceList(c.req.query("keep_links")),
        },
      );
      return c.json({
        tenant: view(changed.tenant),
        warnings: changed.warnings,
        note: "Every worker starts the tenant afresh with this configuration now.",
      });
    } catch (e) {
      return refusal(c, e);
    }
  });

  for (const [action, state] of [
    ["disable", "disabled"],
    ["enable", "active"],
  ] as const) {
    api.post(`/tenants/:slug/${action}`, async (c) => {
      try {
        return c.json({ tenant: view(await admin.tenants.setState(c.req.param("slug"), state)) });
      } catch (e) {
        return refusal(c, e);
      }
    });
  }

  api.post("/tenants/:slug/rotate-token", async (c) => {
    try {
      const { tenant, apiToken } = await admin.tenants.rotateApiToken(c.req.param("slug"));
      c.header("Cache-Control", "no-store");
      return c.json({
        tenant: view(tenant),
        apiToken,
        note: "The new API token is shown only in this answer (kontobro keeps its hash); the old one is refused (401) on every worker from now on: give the PSA this one.",
      });
    } catch (e) {
      return refusal(c, e);
    }
  });

  api.delete("/tenants/:slug", async (c) => {
    try {
      return c.json({ removed: await admin.tenants.remove(c.req.param("slug")) });
    } catch (e) {
      return refusal(c, e);
    }
  });

  return api;
}
