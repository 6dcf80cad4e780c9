// The shipped example must stay valid and document every key the schema knows.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AgentConfig, validateConfig } from "../agent/config.ts";
import { ExportsConfig, PostingConfig, Sie4FileConfig } from "../agent/exports/config.ts";
import { connectorKinds } from "../connectors/registry.ts";
import { AlertWebhookConfig, NotificationsConfig, SmtpConfig } from "../agent/notify/config.ts";

const path = join(import.meta.dir, "../config/kontobro.example.toml");
const text = readFileSync(path, "utf8");

function keysOf(schema: any): string[] {
  const shape = schema?.shape ?? schema?._zod?.def?.innerType?.shape ?? schema?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

describe("config/kontobro.example.toml", () => {
  test("is valid when its environment variables are set", () => {
    const env = { ECONOMIC_APP_SECRET_TOKEN: "x", ECONOMIC_AGREEMENT_GRANT_TOKEN: "y" };
    const { targets } = validateConfig(Bun.TOML.parse(text), env);
    expect(targets.map((t) => t.kind)).toEqual(["economic"]);
  });

  test("mentions every key of every section and connector", () => {
    const sections = AgentConfig.shape;
    const missing: string[] = [];
    for (const section of ["agent", "storage", "http", "dispatch", "proxy", "admin", "workers", "psa", "pulls"] as const) {
      for (const key of keysOf((sections[section] as any)._zod.def.innerType))
        if (!new RegExp(`^#? ?${key} =`, "m").test(text)) missing.push(`${section}.${key}`);
    }
    for (const factory of Object.values(connectorKinds)) {
      for (const key of keysOf(factory.configSchema))
        if (!new RegExp(`^(#? ?${key} =|\\[targets\\.${key}\\])`, "m").test(text)) missing.push(`${factory.kind}.${key}`);
    }
    expect(missing).toEqual([]);
  });

  test("documents the pull schedules and the e-conomic expense settings", () => {
    const parsed = Bun.TOML.parse(text) as any;
    const economic = parsed.targets.find((t: any) => t.kind === "economic");
    for (const [stream, spec] of Object.entries(connectorKinds.economic!.pulls!)) {
      expect(economic.pulls[stream]).toEqual({ cron: spec.cron, timezone: spec.timezone });
    }
    const expenses = (connectorKinds.economic!.configSchema as any).shape.expenses._zod.def.innerType;
    expect(keysOf(expenses).filter((k) => !(k in economic.expenses))).toEqual([]);
    expect(text).toMatch(/^# enabled = true$/m);
  });

  test("documents every key of [notifications], its smtp and webhook; uncommented, the example is valid", () => {
    const missing: string[] = [];
    const sections: [string, string[]][] = [
      ["notifications", keysOf(NotificationsConfig).filter((k) => k !== "smtp" && k !== "webhook")],
      ["notifications.smtp", keysOf(SmtpConfig)],
      ["notifications.webhook", keysOf(AlertWebhookConfig)],
    ];
    for (const [section, keys] of sections) {
      expect(keys.length).toBeGreaterThan(2);
      const start = text.search(new RegExp(`^(# )?\\[${section.replace(".", "\\.")}\\]$`, "m"));
      expect(start).toBeGreaterThan(0);
      const body = text.slice(start + 1).split(/\n(# )?\[/)[0]!;
      for (const key of keys) if (!new RegExp(`^#? ?${key} =`, "m").test(body)) missing.push(`${section}.${key}`);
    }
    expect(missing).toEqual([]);
    const block = text.slice(text.indexOf("[notifications]"), text.indexOf("# File exports"));
    const uncommented = text.replace(block, block.replace(/^# (\[notifications\.[a-z]+\]|[a-z_]+ = .*)$/gm, "$1"));
    const env = {
      ECONOMIC_APP_SECRET_TOKEN: "x",
      ECONOMIC_AGREEMENT_GRANT_TOKEN: "y",
      KONTOBRO_SMTP_PASSWORD: "p",
      KONTOBRO_ALERT_WEBHOOK_SECRET: "s".repeat(16),
    };
    const { config } = validateConfig(Bun.TOML.parse(uncommented), env);
    expect(config.notifications).toMatchObject({
      recipients: ["it@example.com"],
      target_recipients: { economic: ["regnskap@example.com"] },
      smtp: { host: "smtp.example.com", security: "starttls", password: "p" },
      webhook: { timeout_ms: 10000 },
    });
  });

  test("documents every key of [exports], [exports.posting] and [exports.sie4]; the commented examples are valid too", () => {
    const exportsShape = (ExportsConfig as any)._zod.def.shape ?? (ExportsConfig as any).shape;
    const sections: [string, string[]][] = [
      ["exports", Object.keys(exportsShape).filter((k) => k !== "posting" && k !== "sie4")],
      ["exports.posting", keysOf(PostingConfig)],
      ["exports.sie4", keysOf(Sie4FileConfig)],
    ];
    const missing: string[] = [];
    for (const [section, keys] of sections) {
      const start = text.indexOf(`[${section}]`);
      expect(start).toBeGreaterThan(0);
      const body = text.slice(start).split(/\n\[/)[0]!;
      for (const key of keys) if (!new RegExp(`^#? ?${key} =`, "m").test(body)) missing.push(`${section}.${key}`);
    }
    expect(missing).toEqual([]);
    const block = text.slice(text.indexOf("[exports]"), text.indexOf("# One [[targets]]"));
    const uncommented = text.replace(block, block.replace(/^# ([a-z_]+ = .*)$/gm, "$1"));
    const env = { ECONOMIC_APP_SECRET_TOKEN: "x", ECONOMIC_AGREEMENT_GRANT_TOKEN: "y" };
    const { config } = validateConfig(Bun.TOML.parse(uncommented), env);
    expect(config.exports).toMatchObject({
      company_name: "Exempel Konsult AB",
      output_dir: "/srv/kontobro/exports",
      posting: { cost_centre_id: "200" },
    });
    expect(config.exports.posting.vat_codes!["25"]).toEqual({ rate: 25, account: "2611", revenue_accounts: { hours: "3041" } });
  });
});
