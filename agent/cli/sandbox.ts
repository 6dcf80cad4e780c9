// `kontobro sandbox KIND`: a target's sandbox on its own, for trying a PSA integration or a benchmark.
import { connectorKinds } from "../../connectors/registry.ts";
import { defineCommand } from "./command.ts";
import { listed, SANDBOX_KINDS } from "./listing.ts";
import { untilSignal } from "./runtime.ts";

/** The registry's kinds that have a sandbox, in its order. */
const kinds = SANDBOX_KINDS;

export const sandbox = defineCommand({
  ...listed("sandbox"),
  description:
    "The same faithful test double `kontobro demo` and the tests use, on loopback, until Ctrl-C. Its state is at\n" + "/__sandbox/state.",
  options: {
    port: { type: "string", value: "N", help: "the port to listen on (default: any free port)" },
  },
  positionals: [1, 1],
  examples: kinds.map((k, i) => (i === 0 ? `kontobro sandbox ${k} --port 9100` : `kontobro sandbox ${k}`)),
  async run({ values, positionals: [kind], path, usage }) {
    const start = kinds.includes(kind!) ? connectorKinds[kind!]!.startSandbox : undefined;
    if (!start) {
      console.error(`${path}: no sandbox "${kind}"; KIND is one of ${kinds.join(", ")}\n\n${usage()}`);
      return 2;
    }
    const port = Number(values.port ?? 0);
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) {
      console.error(`${path}: --port must be a port number, not "${values.port}" (see ${path} --help)`);
      return 2;
    }
    const s = await start({ port });
    // Started: the normal JIT from here on (the binary starts with a reluctant one, scripts/build.ts).
    Bun.unsafe.setJITPolicy(1);
    console.log(`${kind} sandbox on ${s.url}`);
    return untilSignal(async () => {
      await s.stop();
    }, false);
  },
});
