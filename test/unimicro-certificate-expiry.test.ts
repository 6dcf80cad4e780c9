// A Uni Micro client certificate expires (its notAfter) while nobody looks. kontobro knows the date from the PEM:
// `kontobro check` shows it, an alert goes out credential_expiry_warn_days before it (naming the target, the date and
// how to renew), and after it a push needs action with "certificate expired on …" instead of a bare invalid_client.
// Real certificates (openssl) for the fixture key, the sandbox over loopback, alerts in a real SQLite file.
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../agent/db/index.ts";
import { sqliteRunner } from "../agent/db/pg/runner.ts";
import { selectAlerts, syncAlerts } from "../agent/notify/alerts.ts";
import { credentialExpiryProblems } from "../agent/notify/expiry.ts";
import { tempDir } from "./helpers.ts";
import { ctx, customer, privateKeyPem, startEnv, thrown, type Env } from "./unimicro-fixtures.ts";

let env: Env;
afterEach(() => env?.stop());

const DAY = 86_400_000;

/** A certificate for the fixture's key, valid from now for `days` days (-1: it ended yesterday). */
function certificate(days: number): string {
  const dir = tempDir("kontobro-unicert-");
  const key = join(dir, "key.pem");
  const out = join(dir, "cert.pem");
  writeFileSync(key, privateKeyPem);
  const csr = Bun.spawnSync(["openssl", "req", "-new", "-key", key, "-subj", "/CN=kontobro-test", "-out", join(dir, "req.csr")]);
  if (csr.exitCode !== 0) throw new Error(csr.stderr.toString());
  const sign = Bun.spawnSync(["openssl", "x509", "-req", "-in", join(dir, "req.csr"), "-signkey", key, "-days", String(days), "-out", out]);
  if (sign.exitCode !== 0) throw new Error(sign.stderr.toString());
  return out;
}

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

describe("a Uni Micro client certificate that expires", () => {
  test("after its date: the push needs action saying when it expired; check says so first", async () => {
    env = startEnv({ config: { certificate: certificate(-1) } });
    const e = await thrown(env.connector.push("customer", customer(), ctx()));
    // Before: the expired certificate was sent and the answer (if the platform refuses it) was a bare invalid_client.
    expect(e).toMatchObject({ kind: "permanent", code: "unimicro.certificate_expired" });
    expect(e.message).toContain(`expired on ${utcDay(Date.now() - DAY)}`);
    expect(e.hint).toContain("developer portal");
    const [first, ...rest] = await env.connector.check();
    expect(first).toMatchObject({ ok: false, name: "certificate" });
    expect(first!.message).toContain(`expired on ${utcDay(Date.now() - DAY)}`);
    expect(rest).toEqual([]);
    expect(credentialExpiryProblems([["uni", env.connector]], 30, Date.now())).toMatchObject([
      { target: "uni", kind: "credentials", subject: "expiry:certificate", code: "credential_expired" },
    ]);
  });

  test("20 days before: pushes work, check shows the date, and an alert names the target, the date and how to renew", async () => {
    env = startEnv({ config: { certificate: certificate(20) } });
    expect((await env.connector.push("customer", customer(), ctx())).remoteId).toBeTruthy();
    const until = utcDay(Date.now() + 20 * DAY);
    const cert = (await env.connector.check()).find((i) => i.name === "certificate");
    // Before: check said nothing of the certificate.
    expect(cert).toMatchObject({ ok: true });
    expect(cert!.message).toContain(`expires on ${until}`);

    const now = Date.now();
    const problems = credentialExpiryProblems([["uni", env.connector]], 30, now);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toContain(`of uni expires on ${until}`);
    expect(problems[0]!.hint).toContain("developer portal");
    expect(credentialExpiryProblems([["uni", env.connector]], 10, now)).toEqual([]);
    expect(credentialExpiryProblems([["uni", env.connector]], 0, now)).toEqual([]);

    // Through the alerts table: opened once, resolved once the certificate is no longer expiring (renewed).
    const db = sqliteRunner(openDatabase(join(tempDir("kontobro-unicert-db-"), "kontobro.db")).$client);
    await db.transaction((tx) => syncAlerts(tx, now, problems));
    const [alert] = await selectAlerts(db, "resolved_at IS NULL");
    expect(alert).toMatchObject({ target: "uni", kind: "credentials", code: "credential_expiring" });
    await db.transaction((tx) => syncAlerts(tx, now + 1000, []));
    expect(await selectAlerts(db, "resolved_at IS NULL")).toEqual([]);
    expect((await selectAlerts(db, "id = ?1", alert!.id))[0]!.resolution).toBe("it was renewed (or is no longer configured)");
  });

  test("a year away: no alert; check shows the date", async () => {
    env = startEnv({ config: { certificate: certificate(400) } });
    expect(credentialExpiryProblems([["uni", env.connector]], 30, Date.now())).toEqual([]);
    const cert = (await env.connector.check()).find((i) => i.name === "certificate");
    expect(cert).toMatchObject({ ok: true, message: expect.stringContaining(`valid until ${utcDay(Date.now() + 400 * DAY)}`) });
  });
});
