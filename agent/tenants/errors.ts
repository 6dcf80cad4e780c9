// What can go wrong when tenants are managed, as one error type: the CLI prints its message and problems,
// the admin API answers with its code (agent/http/admin-api.ts maps each code to an HTTP status).
export type TenantErrorCode =
  | "invalid_slug"
  | "invalid_config"
  | "duplicate_slug"
  | "not_found"
  | "still_active"
  | "work_under_way"
  | "account_changed"
  | "lookup_changed"
  | "token_rotated";

export class TenantError extends Error {
  constructor(
    readonly code: TenantErrorCode,
    message: string,
    readonly hint: string,
    /** One line per problem, named by its key (targets[0].kind: …), for invalid_config, account_changed and lookup_changed. */
    readonly problems: string[] = [],
  ) {
    super(message);
    this.name = "TenantError";
  }
}
