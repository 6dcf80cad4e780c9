// HTTP to e-conomic: the two auth headers, Idempotency-Key on writes, both error envelopes → Problems.
import type { Problem } from "../../agent/problem.ts";
import { HttpClient, TokenBucket, type HttpResponse } from "../http.ts";
import type { EconomicConfig } from "./config.ts";

/** Plain-language hints for e-conomic's documented error codes. */
const HINTS: Record<string, string> = {
  E02250:
    "The app secret token and the agreement grant token do not belong together. Copy both again from e-conomic (Settings → Extensions → Apps) into kontobro.toml, then run `kontobro check`.",
  E06000:
    "Something the record refers to does not exist in e-conomic (a group, VAT zone, payment terms, layout, product or customer). Run `kontobro check`, create it in e-conomic or fix the number in kontobro.toml, then press retry.",
  E04500: "A reference has no number. This is a kontobro mapping problem; please report it.",
  E04730: "An invoice line has a product but no quantity. Fix the line in the PSA.",
  E04740: "An amount has more than 2 decimals. Fix the amount in the PSA.",
  ProjectCannotBeCreatedUpdatedGroupDoesNotExist:
    "The project group set in kontobro.toml (project_group) does not exist in e-conomic. Create a project group of type Internal, or change project_group, then press retry.",
  ProjectCannotBeCreatedUpdatedCustomerNotFound:
    "The project's customer does not exist in e-conomic. Make sure the customer is sent from the PSA first.",
  ProjectCannotBeCreatedUpdatedCustomerNumberRequired:
    "The project group is not Internal, so e-conomic needs a customer on the project. Set a customer on the project in the PSA, or use an Internal project group.",
};

/** Flattens e-conomic's annotated errors (which mirror the request shape) into "field: message" items. */
export function flattenAnnotated(errors: unknown, path = ""): { field: string; code?: string; message: string }[] {
  if (!errors || typeof errors !== "object") return [];
  const out: { field: string; code?: string; message: string }[] = [];
  for (const [k, v] of Object.entries(errors as Record<string, any>)) {
    if (k === "errors" && Array.isArray(v)) {
      for (const e of v) out.push({ field: path, code: e?.errorCode, message: String(e?.message ?? "invalid") });
    } else if (k === "items" && Array.isArray(v)) {
      for (const item of v) out.push(...flattenAnnotated(item, `${path}[${item?.arrayIndex ?? "?"}]`));
    } else if (v && typeof v === "object" && k !== "arrayIndex") {
      out.push(...flattenAnnotated(v, path ? `${path}.${k}` : k));
    }
  }
  return out;
}

export function describeEconomicError(res: HttpResponse): Problem {
  const b = res.body && typeof res.body === "object" ? res.body : {};
  const details = flattenAnnotated(b.errors);
  const code: string = b.errorCode ?? b.code ?? details.find((d) => d.code)?.code ?? `http_${res.status}`;
  const base =
    typeof b.message === "string" ? b.message : typeof res.body === "string" && res.body ? res.body.slice(0, 300) : `HTTP ${res.status}`;
  const detailText = details.map((d) => (d.field ? `${d.field}: ${d.message}` : d.message)).join("; ");
  const field = details[0]?.field || b.property || undefined;
  const message = `e-conomic: ${base}${detailText ? ` (${detailText})` : ""}`;
  const hint =
    HINTS[code] ??
    (details.find((d) => d.code && HINTS[d.code]) ? HINTS[details.find((d) => d.code && HINTS[d.code])!.code!] : undefined) ??
    (res.status === 400
      ? "e-conomic refused the data. Correct the field named in the message in the PSA (or the setting in kontobro.toml), then send it again or press retry."
      : b.developerHint);
  return { code, message, hint, field };
}

export function createEconomicHttp(cfg: EconomicConfig): HttpClient {
  return new HttpClient({
    baseHeaders: () => ({ "X-AppSecretToken": cfg.app_secret_token, "X-AgreementGrantToken": cfg.agreement_grant_token }),
    timeoutMs: cfg.request_timeout_ms,
    describeError: (res) => describeEconomicError(res),
    limiter: cfg.requests_per_second > 0 ? new TokenBucket(cfg.requests_per_second, cfg.burst) : undefined,
    targetTitle: "e-conomic",
  });
}

/** e-conomic's REST filter value escaping ($ before special characters). */
export function filterValue(v: string): string {
  return v.replace(/[$()*,[\]]/g, (c) => `$${c}`);
}
