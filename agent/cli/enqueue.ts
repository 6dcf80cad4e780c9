// `kontobro enqueue FILE|-`: stores events as the API would, without the agent running.
import { readFileSync } from "node:fs";
import { createConnectors, databasePath } from "../agent.ts";
import { openDatabase } from "../db/index.ts";
import { sqliteRunner } from "../db/pg/runner.ts";
import { EventConflict, IntakeWriter, parseEvents, type StoredResult } from "../intake.ts";
import { duplicateKeys } from "../json-keys.ts";
import { createLogger } from "../log.ts";
import type { Entity } from "../model.ts";
import { Outbox } from "../outbox.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

export const enqueue = defineCommand({
  ...listed("enqueue"),
  description:
    "The events are validated and stored exactly as POST /api/v1/events would; a running agent delivers them\n" +
    "within its poll interval. Exits 1, storing nothing, if any event is invalid.",
  options: { ...CONFIG_OPTION },
  positionals: [1, 1],
  examples: ["kontobro enqueue events.json", ["curl -s https://psa.example/export | kontobro enqueue -", "from standard input"]],
  async run({ values, positionals: [source] }) {
    const text = source === "-" ? await Bun.stdin.text() : readFileSync(source!, "utf8");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      console.error(`${source}: not valid JSON: ${(e as Error).message}`);
      return 1;
    }
    const parsed = parseEvents(body, duplicateKeys(text));
    if (!parsed.ok) {
      console.error(`${parsed.message}\n${parsed.hint}`);
      for (const ev of parsed.events)
        for (const p of ev.problems)
          console.error(`  event ${ev.index}${ev.id ? ` (${ev.id})` : ""}: ${p.message}${p.hint ? ` — ${p.hint}` : ""}`);
      return 1;
    }
    const { config, targets } = loadConfig(values.config);
    const connectors = createConnectors(targets, createLogger("error"));
    const db = openDatabase(databasePath(config.agent.data_dir));
    try {
      const targetsFor = (e: Entity) => [...connectors].filter(([, c]) => c.supports(e)).map(([n]) => n);
      let results: StoredResult[];
      try {
        results = await new IntakeWriter(new Outbox(sqliteRunner(db.$client)), targetsFor).submit(parsed.events);
      } catch (e) {
        if (!(e instanceof EventConflict)) throw e;
        console.error(`${e.message}\n${e.hint}`);
        for (const ev of e.events) for (const p of ev.problems) console.error(`  event ${ev.index} (${ev.id}): ${p.message}`);
        return 1;
      }
      const count = (status: string) => results.filter((r) => r.status === status).length;
      console.log(
        `stored ${count("accepted")} event(s), ${count("duplicate")} already known, ${count("stale")} older than the stored version (kept, not sent); a running agent delivers them within its poll interval`,
      );
      return 0;
    } finally {
      db.$client.close();
    }
  },
});
