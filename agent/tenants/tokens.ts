// A tenant's secrets: its API token and its targets' webhook tokens. Each is 32 random bytes (256 bits),
// shown once when it is made and stored only as its sha256.
// Why a plain sha256 and not bcrypt/argon2: a slow, salted hash protects a low-entropy secret (a password a
// person chose) from guessing after the table leaks. These tokens are random with 256 bits, so guessing one
// from its hash is as hopeless as guessing the token itself; a fast unsalted hash keeps the lookup one indexed
// read per request (tenants.api_token_hash), which a salted hash would turn into a scan over every tenant.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { registerSecret } from "../log.ts";

/** A new random token: 32 bytes as base64url (43 characters, RFC 6750 bearer token characters). */
export function newToken(): string {
  const token = randomBytes(32).toString("base64url");
  registerSecret(token);
  return token;
}

/** The stored form of a token: sha256 as 64 hex digits. */
export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** Whether two stored hashes are equal, in time that does not depend on where they differ. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === 32 && y.length === 32 && timingSafeEqual(x, y);
}
