// Child process of the SIGKILL test (test/eaccounting-oauth.test.ts): refreshes the eAccounting token through the
// agent's credential store, says so once the rotated refresh token is written, and then hangs before using the new
// access token, so the parent can kill it with SIGKILL exactly between the refresh and its use.
import { credentialStore } from "../agent/credentials.ts";
import { openDatabase } from "../agent/db/index.ts";
import { silentLogger } from "../agent/log.ts";
import { eaccounting } from "../connectors/eaccounting/index.ts";
import { targetConfig } from "./eaccounting-fixtures.ts";

const [dataDir, sandboxUrl] = process.argv.slice(2) as [string, string];
const db = openDatabase(`${dataDir}/kontobro.db`);
const real = credentialStore(db, dataDir, "ea");
const store = {
  ...real,
  async write(c: Parameters<typeof real.write>[0]) {
    await real.write(c);
    if (c.state === "connected" && c.accessToken) {
      process.stdout.write("WRITTEN\n");
      Bun.sleepSync(60_000); // killed here: the new refresh token is on disk, the new access token never used
    }
  },
};
const connector = eaccounting.create("ea", eaccounting.configSchema.parse(targetConfig(sandboxUrl, { refresh_token: undefined })), {
  log: silentLogger,
  credentials: store,
}) as any;
await connector.client.get("/customers");
process.stdout.write("USED\n");
