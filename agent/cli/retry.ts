// `kontobro retry ID` and `kontobro retry --all [--target NAME]`: deliveries that need action go again.
import { databasePath } from "../agent.ts";
import { openDatabase } from "../db/index.ts";
import { sqliteRunner } from "../db/pg/runner.ts";
import { Outbox } from "../outbox.ts";
import { CONFIG_OPTION, defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { loadConfig } from "./runtime.ts";

export const retry = defineCommand({
  ...listed("retry"),
  description:
    "Marks the delivery (by the id `kontobro status` shows) to be tried again at once; a running agent picks it\n" +
    "up within its poll interval. Usually after fixing the record in the PSA or the set-up in the target.",
  options: {
    all: { type: "boolean", help: "every delivery that needs action" },
    target: { type: "string", value: "NAME", help: "with --all: only this target's" },
    ...CONFIG_OPTION,
  },
  positionals: [0, 1],
  examples: ["kontobro retry 42", "kontobro retry --all", ["kontobro retry --all --target books", "only one target's"]],
  async run({ values, positionals, usage }) {
    if (values.all ? positionals.length > 0 : positionals.length === 0 || values.target !== undefined) {
      console.error(usage());
      return 2;
    }
    const id = Number(positionals[0]);
    if (!values.all && !Number.isInteger(id)) {
      console.error(`delivery ids are whole numbers, not "${positionals[0]}"\n\n${usage()}`);
      return 2;
    }
    const { config } = loadConfig(values.config);
    const db = openDatabase(databasePath(config.agent.data_dir));
    try {
      const outbox = new Outbox(sqliteRunner(db.$client));
      if (values.all) {
        const retried = await outbox.retryAllNeedingAction(values.target);
        if (retried === 0 && values.target !== undefined && !(await outbox.anyDeliveryTo(values.target))) {
          const names = config.targets.map((t) => t.name).join(", ") || "none";
          console.error(
            `No delivery has gone to a target named "${values.target}"; nothing was retried.\n` +
              `Use the target's name as in kontobro.toml (configured: ${names}), or leave --target out to retry every one that needs action.`,
          );
          return 1;
        }
        console.log(`${retried} deliveries will be retried`);
        return 0;
      }
      const r = await outbox.retry(id);
      console.log(
        r.ok ? `delivery ${id} will be retried` : r.status ? `delivery ${id} is ${r.status} and cannot be retried` : `no delivery ${id}`,
      );
      return r.ok ? 0 : 1;
    } finally {
      db.$client.close();
    }
  },
});
