// The database cannot be written (read-only here; full or gone alike): no problem can be stored, so none could be told
// the usual way. The running agent's notifier mails it directly after a few failed rounds, once, and mails again when
// the database takes writes. Real agent, real SMTP over loopback.
import { afterAll, describe, expect, test } from "bun:test";
import { startStack } from "./e2e-harness.ts";
import { waitFor } from "./helpers.ts";
import { startSmtp } from "./notify-smtp.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("a database that cannot be written", () => {
  test("is mailed once by the running agent, and so is its end", async () => {
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    const stack = await startStack({
      sections: {
        notifications: {
          recipients: ["it@example.com"],
          target_recipients: { eco: ["regnskap@example.com"] },
          check_interval_seconds: 0.05,
          smtp: { host: "127.0.0.1", port: smtp.port, from: "kontobro@example.com", ca_file: smtp.caFile },
        },
      },
    });
    cleanups.push(() => stack.stop());
    const subjects = () => smtp.mails.map((m) => m.headers.subject);

    stack.agent.db.$client.run("PRAGMA query_only = 1");
    expect((await fetch(`${stack.agent.url}/readyz`)).status).toBe(503);
    const mail = (await waitFor("the mail", () => smtp.mails[0]))!;
    expect(mail.headers.subject).toBe("[kontobro] the database cannot be written: nothing is delivered");
    expect(mail.envelopeTo.sort()).toEqual(["it@example.com", "regnskap@example.com"]);
    expect(mail.body).toContain("cannot use its database: attempt to write a readonly database");
    expect(mail.body).toContain("check the free disk space");
    await Bun.sleep(500); // ten more failed rounds: told once
    expect(subjects()).toHaveLength(1);

    stack.agent.db.$client.run("PRAGMA query_only = 0");
    await waitFor("the second mail", () => smtp.mails[1]);
    expect(subjects()).toEqual([
      "[kontobro] the database cannot be written: nothing is delivered",
      "[kontobro] kontobro writes its database again",
    ]);
  }, 60_000);
});
