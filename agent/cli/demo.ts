// `kontobro demo`: the agent against a built-in sandbox, with sample PSA data arriving on its own.
import { connectorKinds } from "../../connectors/registry.ts";
import { databasePath, startAgent } from "../agent.ts";
import { DEMO_TARGETS, demoConfig, startDemoTarget, startSampleFeed } from "../demo.ts";
import { createLogger } from "../log.ts";
import { DemoMailbox } from "../notify/demo-mailbox.ts";
import { defineCommand } from "./command.ts";
import { listed } from "./listing.ts";
import { keepRunning } from "./runtime.ts";

/** The registry's kinds that have a sandbox and so a demo target, in its order. */
const kinds = DEMO_TARGETS;

export const demo = defineCommand({
  ...listed("demo"),
  description:
    "Needs no kontobro.toml and no account anywhere: it starts the target's sandbox in this process, points an\n" +
    "agent at it, and sends a sample customer, project and invoice every few seconds (and one broken record,\n" +
    'to show what "needs action" looks like). In the sandbox a person books supplier costs and payments, which\n' +
    "the pulls bring back; alert mails are kept in a demo mailbox on the status page. Stop it with Ctrl-C.",
  options: {
    target: { type: "string", value: "KIND", help: `the sandbox to deliver to: ${kinds.join(", ")} (default ${kinds[0]})` },
    port: { type: "string", value: "N", help: "the status page's port (default 8787)" },
    data: { type: "string", value: "DIR", help: "the data directory (default ./data)" },
    interval: { type: "string", value: "SECONDS", help: "seconds between sample rounds (default 15)" },
  },
  examples: [
    "kontobro demo",
    [`kontobro demo --target ${kinds.at(-1)} --port 8788 --data ./demo-data --interval 5`, "faster, beside a running agent"],
  ],
  async run({ values, path }) {
    const port = values.port === undefined ? undefined : Number(values.port);
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      console.error(`${path}: --port must be a port number, not "${values.port}" (see ${path} --help)`);
      return 2;
    }
    const seconds = Number(values.interval ?? 15);
    if (!(seconds > 0)) {
      console.error(`${path}: --interval must be a number of seconds above 0, not "${values.interval}" (see ${path} --help)`);
      return 2;
    }
    const kind = values.target ?? kinds[0]!;
    if (!kinds.includes(kind)) {
      console.error(`${path}: --target must be one of ${kinds.join(", ")}, not "${kind}" (see ${path} --help)`);
      return 2;
    }
    const demoTarget = await startDemoTarget(kind);
    const interval = seconds * 1000;
    const { config, targets } = demoConfig({ dataDir: values.data, port, target: demoTarget.target, pullEveryMs: interval, mail: true });
    const log = createLogger(config.agent.log_level);
    // Each run's sandbox is a new one (another port, none of the last one's records): the ids of those are forgotten.
    const agent = await startAgent(config, targets, log, {
      mailbox: new DemoMailbox(),
      accounts: { forgetIfMoved: targets.map((t) => t.name) },
    });
    const stopFeed = startSampleFeed(agent.db, agent.intake, interval, (m) => log.info(m));
    const factory = connectorKinds[kind]!;
    const stopActivity = factory.startDemoActivity?.(demoTarget.sandboxUrl, interval, (m) => log.info(m)) ?? (() => {});
    const activity = factory.startDemoActivity
      ? `in the sandbox, a person books supplier costs and payments, which the pulls bring back every ${interval / 1000} s`
      : "nothing is pulled back from this target";
    process.stdout.write(`
  kontobro demo is running.

    Status page      ${agent.url}
    Health           ${agent.url}/healthz
    Metrics          ${agent.url}/metrics
    API token        ${agent.apiToken}
    Demo mailbox     ${agent.url}/ui/demo/mail (the alert mails, kept instead of sent)
    Target           ${targets[0]!.kind} sandbox at ${demoTarget.sandboxUrl} (state: ${demoTarget.sandboxUrl}/__sandbox/state)
    Data             ${databasePath(config.agent.data_dir)}

  Sample customers, projects and invoices arrive every ${interval / 1000} s; ${activity}. Send your own:
    curl -X POST ${agent.url}/api/v1/events -H 'Authorization: Bearer ${agent.apiToken}' \\
         -H 'Content-Type: application/json' -d @event.json
  Stop with Ctrl-C.

`);
    return keepRunning(agent, async () => {
      stopFeed();
      stopActivity();
      await demoTarget.stop();
    });
  },
});
