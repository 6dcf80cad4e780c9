// What several commands share: finding and loading kontobro.toml, and running until a signal.
import { existsSync } from "node:fs";
import type { RunningAgent } from "../agent.ts";
import { ConfigError, loadConfigFile, validateConfig, type LoadedConfig } from "../config.ts";
import { proxySettings, useProxy } from "../../connectors/http.ts";
import { refuseUntilOnPostgres } from "../storage.ts";

/** --config, else $KONTOBRO_CONFIG, else ./kontobro.toml if there is one. */
export function configPath(explicit: string | undefined): string | null {
  const path = explicit || process.env.KONTOBRO_CONFIG;
  if (path) return path;
  return existsSync("kontobro.toml") ? "kontobro.toml" : null;
}

/**
 * The configuration. Without a file, `required` (kontobro run) is an error that says what to do; the other
 * commands run on the defaults (the data directory ./data). A command works on the SQLite file only unless it says
 * `postgres` (it runs on PostgreSQL storage too): with a PostgreSQL url the others refuse before opening anything,
 * rather than quietly open a SQLite file the hosted installation does not use.
 */
export function loadConfig(explicit: string | undefined, opts: { required?: boolean; postgres?: boolean } = {}): LoadedConfig {
  const path = configPath(explicit);
  if (!path) {
    if (opts.required) {
      throw new ConfigError([
        "no kontobro.toml found in this folder; copy config/kontobro.example.toml to kontobro.toml and edit it, pass --config FILE, or try `kontobro demo`",
      ]);
    }
    return withProxy(validateConfig({}));
  }
  const loaded = loadConfigFile(path);
  if (!opts.postgres) refuseUntilOnPostgres(loaded.config, "this command");
  return withProxy(loaded);
}

/** Every command that reads kontobro.toml sends its requests to the targets through the configured proxy. */
function withProxy(loaded: LoadedConfig): LoadedConfig {
  useProxy(proxySettings(loaded.config.proxy));
  return loaded;
}

/**
 * Resolves with the first SIGTERM or SIGINT from now on. Listen before starting anything: a signal that comes
 * while the agent is still starting (its server already answers) is kept, and the agent stops once it is up,
 * instead of the process dying mid-start (exit 143).
 */
export function nextSignal(announce = true): Promise<string> {
  return new Promise((resolve) => {
    const received = (signal: string) => {
      if (announce) process.stderr.write(`\nkontobro: ${signal} received, shutting down cleanly…\n`);
      resolve(signal);
    };
    process.once("SIGTERM", () => received("SIGTERM"));
    process.once("SIGINT", () => received("SIGINT"));
  });
}

/** Resolves on SIGTERM or SIGINT (`signal`), after `stop`: 0 if it stopped cleanly, else 1. */
export function untilSignal(stop: () => Promise<void>, announce = true, signal: Promise<string> = nextSignal(announce)): Promise<number> {
  return signal.then(() =>
    stop().then(
      () => 0,
      () => 1,
    ),
  );
}

/**
 * Keeps the agent running until a signal, then stops it (and `onStop`, e.g. the demo's sandbox). `signal`: from
 * nextSignal() called before the agent was started.
 */
export function keepRunning(
  agent: Pick<RunningAgent, "stop">,
  onStop: () => Promise<void> = async () => {},
  signal: Promise<string> = nextSignal(),
): Promise<number> {
  return untilSignal(() => agent.stop().then(onStop), true, signal);
}
