// `kontobro version`.
import { VERSION } from "../version.ts";
import { defineCommand } from "./command.ts";
import { listed } from "./listing.ts";

export const version = defineCommand({
  ...listed("version"),
  options: {},
  examples: ["kontobro version"],
  run() {
    console.log(`kontobro ${VERSION} (bun ${Bun.version})`);
    return 0;
  },
});
