// `kontobro version`.
import { VERSION } from "../version.ts";
import { defineCommand } from "./command.ts";

export const version = defineCommand({
  name: "version",
  summary: "print the version",
  options: {},
  examples: ["kontobro version"],
  run() {
    console.log(`kontobro ${VERSION} (bun ${Bun.version})`);
    return 0;
  },
});
