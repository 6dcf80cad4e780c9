// Which tenant a request to a tenant's API is for (hosted mode, issue 17): its bearer token resolves the
// tenant (TenantStore.resolveApiToken). An unknown token gets the same 401 as a wrong one; a disabled tenant's
// token gets a 403 that says so. The route then reads the tenant from c.get("tenant").
import type { Context, MiddlewareHandler } from "hono";
import type { ResolvedTenant } from "../tenants/store.ts";
import { bearerToken } from "./auth.ts";

export type TenantVariables = { tenant: ResolvedTenant };

const unauthorized = (c: Context) =>
  c.json(
    {
      error: "unauthorized",
      message: "A valid API token is required.",
      hint: "Send the header Authorization: Bearer <token> with the tenant's API token (shown once by `kontobro tenant add`).",
    },
    401,
    { "WWW-Authenticate": 'Bearer realm="kontobro"' },
  );

export function requireTenant(
  resolve: (token: string) => Promise<ResolvedTenant | null>,
): MiddlewareHandler<{ Variables: TenantVariables }> {
  return async (c, next) => {
    const token = bearerToken(c.req.header("authorization"));
    const tenant = token ? await resolve(token) : null;
    if (!tenant) return unauthorized(c);
    if (tenant.state !== "active") {
      return c.json(
        {
          error: "tenant_disabled",
          message: `Tenant "${tenant.slug}" is disabled: its API takes no requests and nothing of it is being sent.`,
          hint: "Ask the operator of this kontobro installation to enable it again (kontobro tenant enable).",
        },
        403,
      );
    }
    c.set("tenant", tenant);
    await next();
  };
}
