// A 401 on an access token makes the connector forget it (OAuthTokens.invalidate): it reads the stored credential and
// writes it back without the access token. Two workers refused the same token: while A's read-then-write was under
// way, B refreshed, rotating the refresh token R1 away for R2; A's write then put R1 back, and the next refresh was
// refused (reconnect needed, the tenant's pushes and pulls stopped). The read and the write now run under the store's
// `exclusive`, as a refresh does. Review finding 3. Both engines: the data directory's lock file on SQLite, the
// tenant's credentials row lock on PostgreSQL (two workers on clients of their own); the e-accounting OAuth sandbox.
import { expect, test } from "bun:test";
import { storedCredentials, tenantCredentialStore } from "../agent/credentials.ts";
import type { CredentialStore } from "../connectors/contract.ts";
import { OAuthTokens } from "../connectors/eaccounting/auth.ts";
import { tokenUrl } from "../connectors/eaccounting/config.ts";
import { eaccounting } from "../connectors/eaccounting/index.ts";
import { DEMO, startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";
import { targetConfig } from "./eaccounting-fixtures.ts";
import { workerEngines } from "./engines.ts";

const { engines, open } = workerEngines("a late invalidate of an OAuth token");

/** The store, whose writes wait for `gate`: the moment between invalidate's read and its write, stretched. */
function slowWrites(inner: CredentialStore, gate: Promise<void>): CredentialStore {
  return {
    read: () => inner.read(),
    write: async (v) => {
      await gate;
      await inner.write(v);
    },
    exclusive: (fn) => inner.exclusive(fn),
  };
}

test.each(engines)(
  "on %s: a refresh by another worker while an invalidate is under way keeps its rotated refresh token",
  async (engine) => {
    const s = await open(engine);
    const sandbox = startEaccountingSandbox();
    try {
      const url = tokenUrl(eaccounting.configSchema.parse(targetConfig(sandbox.url)));
      const storeOn = async (runner: typeof s.storage) =>
        engine === "sqlite" ? storedCredentials(runner, "ledger", { lockFile: s.dataDir }) : tenantCredentialStore(runner, "ledger");
      const [storeA, storeB] = [await storeOn(s.storage), await storeOn(await s.worker())];
      const opts = { target: "ledger", tokenUrl: url, clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, timeoutMs: 5_000 };
      // The first token: T1 with refresh token R1, stored.
      const t1 = await new OAuthTokens({ ...opts, store: storeA, bootstrapRefreshToken: DEMO.refreshToken }).get();
      const r1 = (await storeA.read())!.refreshToken;
      // Both workers were refused T1. A's invalidate reads, and its write is held a while; B forgets T1 and refreshes.
      let letWrite!: () => void;
      const held = new Promise<void>((go) => (letWrite = go));
      const a = new OAuthTokens({ ...opts, store: slowWrites(storeA, held) });
      const b = new OAuthTokens({ ...opts, store: storeB });
      const aInvalidates = a.invalidate(t1);
      await Bun.sleep(100);
      const bRefreshes = b.invalidate(t1).then(() => b.get());
      // Long enough for B's refresh to finish had it not waited for A's invalidate.
      setTimeout(letWrite, 1_500);
      await aInvalidates;
      const t2 = await bRefreshes;
      expect(t2).not.toBe(t1);
      const stored = (await storeB.read())!;
      expect(stored.refreshToken).not.toBe(r1);
      expect(stored.accessToken).toBe(t2);
      // The refresh token stored is the one the identity server knows: a new worker refreshes with it and stays connected.
      await storeB.write({ ...stored, accessToken: null, accessExpiresAt: null });
      await new OAuthTokens({ ...opts, store: storeB }).get();
      expect((await storeB.read())!.state).toBe("connected");
    } finally {
      sandbox.stop();
    }
  },
  60_000,
);
