// The admin API's token ([admin] of kontobro.toml): written there (token = "${KONTOBRO_ADMIN_TOKEN}"), or kept
// in a file of its own (token_file), read when the agent starts. Neither set: no admin API.
import { readFileSync } from "node:fs";
import { BearerToken, ConfigError, type AgentConfig } from "../config.ts";
import { registerSecret } from "../log.ts";

export function adminToken(admin: AgentConfig["admin"]): string | null {
  if (admin.token) return admin.token;
  if (!admin.token_file) return null;
  let text: string;
  try {
    text = readFileSync(admin.token_file, "utf8");
  } catch (e) {
    throw new ConfigError([
      `admin.token_file: ${admin.token_file} cannot be read (${(e as Error).message}); write the token there, e.g. openssl rand -base64 32 > ${admin.token_file}`,
    ]);
  }
  const parsed = BearerToken.safeParse(text.trim());
  if (!parsed.success) {
    throw new ConfigError([`admin.token_file: the token in ${admin.token_file} ${parsed.error.issues[0]!.message}`]);
  }
  registerSecret(parsed.data);
  return parsed.data;
}
