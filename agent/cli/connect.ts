// `kontobro connect TARGET`: sign in to a target that uses OAuth 2 (its factory has `oauth`) and store its tokens in the
// data directory. Prints the authorisation URL; the browser comes back to the redirect URI, where this command
// listens when it is a loopback address; or paste the code (or the whole address the browser came back to).
// Then it checks the connection, so onboarding problems (start-up guide, licence, scopes) show at once.
// A hosted installation's tenant is connected the same way by `kontobro tenant connect SLUG TARGET` (agent/cli/tenant.ts),
// which gives runConnect the tenant's credential store instead of the data directory's.
import { randomBytes } from "node:crypto";
import type { Connector, CredentialStore } from "../../connectors/contract.ts";
import { connectorKinds } from "../../connectors/registry.ts";
import { createConnectors, databasePath } from "../agent.ts";
import type { AgentConfig, TargetConfig } from "../config.ts";
import { credentialStore } from "../credentials.ts";
import { openDatabase } from "../db/index.ts";
import { createLogger } from "../log.ts";
import { storageOf } from "../storage.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed, OAUTH_KINDS } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);
const WAIT_MS = 10 * 60_000;

/** Where the tokens go, and the connector that checks the connection with them. */
export interface TokenHome {
  store: CredentialStore;
  /** The target's connector, reading its tokens from `store`. */
  connector(): Connector | undefined;
  /** Where the tokens are kept, for the message. */
  where: string;
  /** The command that connects the target again. */
  command: string;
  close(): void;
}

/** The data directory's SQLite file (a single installation). */
function dataDirHome(config: AgentConfig, target: TargetConfig): TokenHome {
  const db = openDatabase(databasePath(config.agent.data_dir), { busyTimeoutMs: config.agent.busy_timeout_ms });
  return {
    store: credentialStore(db, config.agent.data_dir, target.name),
    connector: () => createConnectors([target], createLogger("error"), db, { dataDir: config.agent.data_dir }).get(target.name),
    where: databasePath(config.agent.data_dir),
    command: `kontobro connect ${target.name}`,
    close: () => db.$client.close(),
  };
}

export interface ConnectOptions {
  config: AgentConfig;
  target: TargetConfig;
  /** Where the tokens go (default: the data directory of `config`). */
  home?: TokenHome;
  /** The code (or the address the browser came back to), given on the command line. */
  code?: string;
  /** Listen on a loopback redirect URI (default true). */
  listen?: boolean;
  /** Pasted lines (stdin); absent: none. */
  input?: AsyncIterable<string>;
  out?: (line: string) => void;
  waitMs?: number;
}

/** The code (and state) in a pasted line: a bare code, or the address the browser came back to. */
export function parsePasted(line: string): { code?: string; state?: string; error?: string } {
  const s = line.trim();
  if (!s) return {};
  if (/^https?:\/\//i.test(s) || s.startsWith("?") || s.includes("code=")) {
    const q = new URL(s.startsWith("?") ? `http://x/${s}` : /^https?:/i.test(s) ? s : `http://x/?${s}`).searchParams;
    return {
      code: q.get("code") ?? undefined,
      state: q.get("state") ?? undefined,
      error: q.get("error") ? `${q.get("error")}${q.get("error_description") ? `: ${q.get("error_description")}` : ""}` : undefined,
    };
  }
  return { code: s };
}

export async function runConnect(o: ConnectOptions): Promise<number> {
  const out = o.out ?? ((l: string) => console.log(l));
  const oauth = connectorKinds[o.target.kind]?.oauth;
  if (!oauth) {
    out(`${o.target.name} (${o.target.kind}) does not sign in with OAuth; its credentials are in kontobro.toml.`);
    return 2;
  }
  const settings = o.target.settings;
  const state = randomBytes(16).toString("base64url");
  const redirect = new URL(oauth.redirectUri(settings));
  let code: string;
  if (o.code) {
    const p = parsePasted(o.code);
    if (!p.code) {
      out(`No authorization code in "${o.code.slice(0, 80)}"${p.error ? ` (the target said ${p.error})` : ""}.`);
      return 1;
    }
    code = p.code;
  } else {
    out(
      `Open this address in a browser, sign in to ${connectorKinds[o.target.kind]!.title} and accept:\n\n  ${oauth.authorizationUrl(settings, state)}\n`,
    );
    const got = await waitForCode(redirect, state, o.listen !== false, o.input, out, o.waitMs ?? WAIT_MS);
    if ("error" in got) {
      out(got.error);
      return 1;
    }
    code = got.code;
  }
  const home = o.home ?? dataDirHome(o.config, o.target);
  try {
    const store = home.store;
    let result: { scope: string; missing: string[] };
    try {
      result = await store.exclusive(() => oauth.exchange(settings, code, store));
    } catch (e) {
      const err = e as { message?: string; hint?: string };
      out(`Not connected: ${err.message ?? String(e)}${err.hint ? `\n  fix: ${err.hint}` : ""}`);
      return 1;
    }
    out(`Connected ${o.target.name}; the tokens are stored in ${home.where} (granted: ${result.scope || "no scopes listed"}).`);
    if (result.missing.length > 0)
      out(
        `warning: not granted: ${result.missing.join(", ")}. Run \`${home.command}\` again and accept every permission; the user needs access to sales, accounting and purchasing.`,
      );
    // The connection at once: onboarding problems (start-up guide, licence, access) say what to do.
    let ok = result.missing.length === 0;
    const connector = home.connector();
    for (const item of connector ? await connector.check() : []) {
      ok &&= item.ok;
      out(`  ${item.ok ? "ok  " : "FAIL"} ${item.name}: ${item.message}${!item.ok && item.hint ? `\n       fix: ${item.hint}` : ""}`);
    }
    out(
      ok
        ? "A running agent goes on by itself with the new tokens."
        : "Connected, but fix the points above; a running agent goes on by itself with the new tokens.",
    );
    return ok ? 0 : 1;
  } finally {
    home.close();
  }
}

/** The code from the loopback redirect (when it is one and free) or from a pasted line, whichever comes first. */
async function waitForCode(
  redirect: URL,
  state: string,
  listen: boolean,
  input: AsyncIterable<string> | undefined,
  out: (l: string) => void,
  waitMs: number,
): Promise<{ code: string } | { error: string }> {
  let server: ReturnType<typeof Bun.serve> | undefined;
  let settle!: (r: { code: string } | { error: string }) => void;
  const done = new Promise<{ code: string } | { error: string }>((resolve) => {
    settle = resolve;
  });
  if (listen && LOOPBACK.has(redirect.hostname) && redirect.protocol === "http:") {
    const port = Number(redirect.port || 80);
    try {
      server = Bun.serve({
        hostname: redirect.hostname === "localhost" ? "127.0.0.1" : redirect.hostname.replace(/^\[|\]$/g, ""),
        port,
        fetch(req) {
          const url = new URL(req.url);
          if (url.pathname !== redirect.pathname) return new Response("Not found", { status: 404 });
          const p = parsePasted(url.toString());
          if (p.error) {
            settle({ error: `The sign-in was refused: ${p.error}.` });
            return page("kontobro was not connected", `The sign-in was refused (${p.error}). Run kontobro connect again.`);
          }
          if (!p.code) return page("No code", "This address carries no authorization code.", 400);
          if (p.state !== state)
            return page(
              "Not this sign-in",
              "The state does not match this run of kontobro connect; start the sign-in from the address it printed.",
              400,
            );
          settle({ code: p.code });
          return page("kontobro", "Signed in. You can close this window; kontobro connect finishes in the terminal.");
        },
      });
      out(
        `Waiting for the browser on ${redirect.origin}${redirect.pathname} (or paste the code, or the address the browser came back to).`,
      );
    } catch (e) {
      out(
        `Cannot listen on ${redirect.origin} (${(e as Error).message}; is the agent or another program using the port?). Paste the code, or the whole address the browser came back to.`,
      );
    }
  } else {
    out("Paste the code, or the whole address the browser came back to:");
  }
  if (input) {
    void (async () => {
      for await (const line of input) {
        const p = parsePasted(line);
        if (p.error) return settle({ error: `The sign-in was refused: ${p.error}.` });
        if (p.state !== undefined && p.state !== state) {
          out("That address belongs to another sign-in (state differs); start from the address printed above.");
          continue;
        }
        if (p.code) return settle({ code: p.code });
      }
    })();
  }
  const timer = setTimeout(
    () => settle({ error: `No code within ${Math.round(waitMs / 60_000)} minutes; run kontobro connect again.` }),
    waitMs,
  );
  try {
    return await done;
  } finally {
    clearTimeout(timer);
    // Not forced: the browser's request that brought the code still gets its page.
    void server?.stop(false);
  }
}

const page = (title: string, text: string, status = 200) =>
  new Response(
    `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:system-ui;margin:3em"><h1>${title}</h1><p>${text}</p>`,
    { status, headers: { "content-type": "text/html; charset=utf-8" } },
  );

const example = OAUTH_KINDS[0] ?? "books";

export const connect = defineCommand({
  ...listed("connect"),
  description:
    "Prints the authorisation address of the target's identity server. Sign in there and accept; the browser\n" +
    "comes back to the app's redirect URI (redirect_uri in kontobro.toml), where this command listens when it is a\n" +
    "loopback address. If it cannot (the port is taken, or the redirect is elsewhere), paste the code or the whole\n" +
    "address the browser came back to. The tokens go to the data directory (never kontobro.toml); refresh tokens\n" +
    'rotate and are kept there. Run it again whenever `kontobro check` or the status page says "reconnect".',
  options: {
    code: { type: "string", value: "CODE", help: "the authorization code (or the address the browser came back to), without waiting" },
    "no-listen": { type: "boolean", help: "do not listen on the redirect URI; wait for a pasted code" },
    ...CONFIG_OPTION,
  },
  positionals: [1, 1],
  examples: [
    [`kontobro connect ${example}`, "prints the address to open, waits for the browser"],
    [
      `kontobro connect ${example} --code 'http://localhost:8790/callback?code=…&state=…'`,
      "the address the browser came back to, from another machine",
    ],
  ],
  async run({ values, positionals: [name], path }) {
    const { config, targets } = loadConfig(values.config, { postgres: true });
    if (storageOf(config).engine === "postgres") {
      console.error(
        `${path}: [storage] url names PostgreSQL: a hosted installation keeps each tenant's tokens with the tenant; run \`kontobro tenant connect SLUG ${name}\` (kontobro tenant list shows the slugs)`,
      );
      return 2;
    }
    const target = targets.find((t) => t.name === name && t.enabled);
    const oauthTargets = targets.filter((t) => t.enabled && connectorKinds[t.kind]?.oauth).map((t) => t.name);
    if (!target || !connectorKinds[target.kind]?.oauth) {
      console.error(
        `${path}: no target "${name}" that signs in with OAuth; those that do: ${oauthTargets.join(", ") || `none (add a target of kind ${OAUTH_KINDS.join(" or ")} to kontobro.toml)`}`,
      );
      return 2;
    }
    return runConnect({ config, target, code: values.code, listen: !values["no-listen"], input: console });
  },
});
