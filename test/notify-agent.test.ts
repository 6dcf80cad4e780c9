// [notifications] in kontobro.toml, end to end: the agent started with it mails a problem by itself over
// loopback SMTP and shows the channel on its status page; and a wrong [notifications] stops the agent
// with one line per problem.
import { afterAll, describe, expect, test } from "bun:test";
import { startAgent } from "../agent/agent.ts";
import { type ConfigError, validateConfig } from "../agent/config.ts";
import { silentLogger } from "../agent/log.ts";
import { startStack, type Stack } from "./e2e-harness.ts";
import { customerEvent, projectEvent, tempDir, waitFor } from "./helpers.ts";
import { startSmtp, type TestSmtp } from "./notify-smtp.ts";

let stack: Stack | undefined;
let smtp: TestSmtp | undefined;
afterAll(async () => {
  await stack?.stop();
  await smtp?.stop();
});

const target = (url: string) => ({
  name: "eco",
  kind: "economic",
  rest_url: url,
  projects_url: `${url}/projectsapi/v1.1.0`,
  app_secret_token: "demo-app-secret",
  agreement_grant_token: "demo-agreement-grant",
  requests_per_second: 0,
});

describe("[notifications] in the agent", () => {
  test("a problem is mailed by the running agent; the status page names the channel", async () => {
    stack = await startStack();
    smtp = await startSmtp({ user: "kontobro", password: "from-the-environment" });
    const { config, targets } = validateConfig(
      {
        agent: { data_dir: tempDir("kontobro-notify-") },
        http: { port: 0, api_token: "test-token-0123456789" },
        notifications: {
          recipients: ["it@example.com"],
          check_interval_seconds: 0.05,
          smtp: {
            host: "127.0.0.1",
            port: smtp.port,
            user: "kontobro",
            password: "${KONTOBRO_SMTP_PASSWORD}",
            from: "kontobro@example.com",
            ca_file: smtp.caFile,
          },
        },
        targets: [target(stack.sandboxUrl)],
      },
      { KONTOBRO_SMTP_PASSWORD: "from-the-environment" },
    );
    await stack.agent.stop();
    stack.agent = await startAgent(config, targets, silentLogger);
    await stack.post([customerEvent(1), projectEvent("P-100" as any, 1)]);
    const mail = await waitFor("the mail", () => smtp!.mails[0]);
    expect(mail.headers.subject).toBe("[kontobro] eco: project P-100 needs action");
    expect(mail.user).toBe("kontobro");
    expect(mail.body).toContain(`Status page: ${stack.agent.url}/`);
    const page = await (await fetch(stack.agent.url)).text();
    expect(page).toContain(`Alerts go by e-mail via 127.0.0.1:${smtp.port} (STARTTLS) from kontobro@example.com. 1 notice(s) sent`);
  });

  test("a wrong [notifications] is one line per problem", () => {
    const problems = (raw: unknown) => {
      try {
        validateConfig(raw, {});
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    const t = target("http://127.0.0.1:1");
    expect(
      problems({ targets: [t], notifications: { recipients: ["it@example.com"], target_recipients: { economic: ["a@example.com"] } } }),
    ).toEqual([
      'notifications.target_recipients.economic: there is no target named "economic"; use one of eco',
      "notifications.smtp: recipients are set but there is no mail server; add [notifications.smtp] with host and from",
    ]);
    expect(problems({ targets: [t], notifications: { smtp: { host: "mail.example.com", from: "k@example.com" } } })).toEqual([
      "notifications.recipients: [notifications.smtp] is set but nobody gets mail; add recipients (or target_recipients)",
    ]);
    const bad = problems({
      notifications: {
        recipients: ["not-an-address"],
        smtp: { host: "m", from: "k@example.com", security: "ssl", password: "x" },
        webhook: { url: "ftp://x" },
      },
    });
    expect(bad.some((p) => p.startsWith("notifications.recipients[0]:"))).toBe(true);
    expect(bad.some((p) => p.startsWith("notifications.smtp.security:"))).toBe(true);
    expect(bad.some((p) => p.startsWith("notifications.webhook.url:"))).toBe(true);
  });
});
