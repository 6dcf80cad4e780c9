// Items pulled for the PSA that nobody takes are told: the real agent with the e-conomic sandbox's expenses pull, a PSA
// that is to read the feed (no psa.webhook_url) and never does, and a real SMTP server over loopback. Before, nothing
// counted them: the PSA webhook's alert counts failed webhook attempts, and in feed mode there are none, so expenses
// piled up in the inbox for weeks in silence. Once the PSA reads the feed, the recovery is told too.
import { afterAll, describe, expect, test } from "bun:test";
import { waitFor } from "./helpers.ts";
import { startSmtp } from "./notify-smtp.ts";
import { day, seedPsa, startPullStack } from "./pull-harness.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("items for the PSA that nobody takes", () => {
  test("a PSA that never reads the feed: mailed with what to check, resolved once it reads", async () => {
    const smtp = await startSmtp();
    cleanups.push(() => smtp.stop());
    const stack = await startPullStack({
      economic: { expenses: { accounts: "2800", cost_types: "1" } },
      psa: { webhook_url: undefined },
      notifications: {
        recipients: ["it@example.com"],
        check_interval_seconds: 0.05,
        min_interval_minutes: 0,
        // 1.2 s: "an hour" of a real installation.
        psa_unread_after_minutes: 0.02,
        smtp: { host: "127.0.0.1", port: smtp.port, from: "kontobro@example.com", ca_file: smtp.caFile },
      },
    });
    cleanups.push(() => stack.stop());
    await seedPsa(stack);
    await stack.book([
      {
        date: day(-1),
        supplierNumber: 1,
        text: "Cement",
        lines: [{ account: 2800, amount: 1250, vatCode: "I25", projectNumber: 4711, costTypeNumber: 1 }],
      },
    ]);
    expect(await stack.runNow("expenses")).toMatchObject({ status: "ok", imported: 1 });

    const mail = (await waitFor("the unread-items mail", () => smtp.mails.find((m) => m.headers.subject?.includes("PSA")), 20_000))!;
    expect(mail.headers.subject).toBe("[kontobro] eco: the PSA has not taken 1 item pulled from eco");
    expect(mail.body).toMatch(/1 item pulled from eco \(the oldest ready since [^)]+\) is not taken by the PSA after 1 s/);
    expect(mail.body).toContain("GET /api/v1/inbox");
    expect(mail.body).toContain("psa.webhook_url");
    const metrics = await (await fetch(`${stack.agent.url}/metrics`)).text();
    expect(metrics).toContain('kontobro_alerts_open{target="eco",kind="psa"} 1');

    // The PSA reads the feed: the first page, then after its `next` (which acknowledges the page).
    const first = await stack.api("/api/v1/inbox?after=0");
    expect(first.body.items).toHaveLength(1);
    await stack.api(`/api/v1/inbox?after=${first.body.next}`);
    const resolved = (await waitFor("the resolved mail", () => smtp.mails.find((m) => m.headers.subject?.includes("resolved")), 20_000))!;
    expect(resolved.headers.subject).toBe("[kontobro] eco: resolved: the items pulled for the PSA (the PSA has taken them)");
  }, 60_000);
});
