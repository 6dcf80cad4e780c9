// `kontobro run`: the agent, until SIGTERM or Ctrl-C.
import { startRun } from "../agent.ts";
import { MAIN_GROWTH_BYTES, startHeapPacer } from "../heap-pacer.ts";
import { storageOf } from "../storage.ts";
import { choiceList } from "../target-account.ts";
import { createLogger } from "../log.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { keepRunning, loadConfig, nextSignal } from "./runtime.ts";

export const run = defineCommand({
  ...listed("run"),
  description:
    "Serves the status page, the API and the webhooks, delivers events to the targets and runs the scheduled\n" +
    "pulls, until SIGTERM or Ctrl-C (then it finishes what is in flight and stops cleanly). Logs are JSON lines\n" +
    'on standard error. With [storage] url = "postgres://…" it is one worker of a hosted installation: it serves\n' +
    "every active tenant (kontobro tenant) beside any number of other workers (README.md, Hosted mode).\n" +
    "A target that keeps its name in kontobro.toml but points at another account (its kind, agreement, company or\n" +
    "API host changed) while kontobro holds ids of records in the old one stops the start: rename the target, or\n" +
    "start once with --forget-links (its records are created anew there) or --keep-links (the same account).",
  options: {
    "forget-links": {
      type: "string",
      value: "TARGET[,TARGET]",
      help: "targets pointed at another account: forget their ids of records in the old one (created anew)",
    },
    "keep-links": {
      type: "string",
      value: "TARGET[,TARGET]",
      help: "targets whose account settings changed but that are the same account (a new token): keep their ids",
    },
    ...CONFIG_OPTION,
  },
  examples: [
    ["kontobro run", "with ./kontobro.toml"],
    "kontobro run --config /etc/kontobro/kontobro.toml",
    ["KONTOBRO_CONFIG=/etc/kontobro/kontobro.toml kontobro run", "the same, as a service unit would"],
  ],
  async run({ values }) {
    const { config, targets, warnings } = loadConfig(values.config, { required: true, postgres: true });
    const log = createLogger(config.agent.log_level);
    // Idle memory (issue 16): kontobro.toml's schemas (agent/lazy-schema.ts) are garbage once it is read. Collected
    // now, before the agent makes the objects it keeps, those fill the freed room instead of new heap blocks beside
    // half-empty ones (idle anonymous memory 0.3-0.5 MB lower than with the collection after the start alone).
    Bun.gc(true);
    for (const w of warnings) log.warn(w);
    const sqlite = storageOf(config).engine === "sqlite";
    if (sqlite && targets.length === 0)
      log.warn("no targets are configured; events are stored but go nowhere until you add a [[targets]] table");
    // Listening from here: a SIGTERM while the agent starts (its server may already answer) stops it once it is up.
    const signal = nextSignal();
    // An upgrade on PostgreSQL retries for as long as a long transaction holds a table it alters: a SIGTERM meanwhile
    // stops it at once (between two attempts, nothing of the migration applied), not only once the worker is up.
    const starting = new AbortController();
    void signal.then((name) => starting.abort(name));
    let running: Awaited<ReturnType<typeof startRun>>;
    try {
      // On PostgreSQL a worker of the hosted installation, which also ends by itself (exit 1) if the others declared it dead.
      running = await startRun(
        config,
        targets,
        log,
        { forget: choiceList(values["forget-links"]), keep: choiceList(values["keep-links"]) },
        starting.signal,
      );
    } catch (e) {
      // By name: agent/db/pg/migrate.ts loads only on PostgreSQL (issue 16: idle memory).
      if (starting.signal.aborted && e instanceof Error && e.name === "MigrationStopped") {
        log.info(e.message);
        return 0;
      }
      throw e;
    }
    if (sqlite && !config.http.api_token) log.info("API token generated for this data directory; `kontobro status` shows it");
    // And what only the start used is garbage now; nothing at idle allocates enough for the engine to collect it.
    Bun.gc(true);
    // Peak memory through a burst (issue 16): the heap is collected as it grows, not only once it has doubled.
    const pacer = startHeapPacer({ growthBytes: MAIN_GROWTH_BYTES });
    try {
      return await Promise.race([keepRunning(running, undefined, signal), running.ended ?? new Promise<number>(() => {})]);
    } finally {
      pacer.stop();
    }
  },
});
