// Every command of the kontobro binary, in the order the usage lists them, and the top-level usage made
// from their summaries. A new command is one file in this folder and one line here.
import { VERSION } from "../version.ts";
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { connect } from "./connect.ts";
import { commandList, type Command } from "./command.ts";
import { demo } from "./demo.ts";
import { enqueue } from "./enqueue.ts";
import { match } from "./match.ts";
import { exportCommand } from "./export.ts";
import { prune } from "./prune.ts";
import { pull } from "./pull.ts";
import { restore } from "./restore.ts";
import { retry } from "./retry.ts";
import { run } from "./run.ts";
import { sandbox } from "./sandbox.ts";
import { service } from "./service.ts";
import { status } from "./status.ts";
import { storage } from "./storage.ts";
import { tenant } from "./tenant.ts";
import { version } from "./version.ts";

export const commands: Command[] = [
  run,
  demo,
  check,
  connect,
  status,
  enqueue,
  retry,
  prune,
  pull,
  match,
  sandbox,
  exportCommand,
  backup,
  restore,
  tenant,
  storage,
  service,
  version,
];

export function topLevelUsage(): string {
  return `kontobro ${VERSION}: sync agent between your PSA and your accounting system

Usage: kontobro <command> [options]

${commandList(commands)}

Run \`kontobro <command> --help\` (or \`kontobro help <command>\`) for its options and examples.
Exit codes: 0 ok, 1 a check or command failed, 2 bad configuration or usage.`;
}
