// Child process for exports-deliver.test.ts: writes one file of the given size into a folder with deliver.ts's
// atomic write, run under a file size limit (ulimit -f) that cuts the write short, as a full disk can. Prints the
// outcome as JSON.
import { writeAtomically } from "../agent/exports/deliver.ts";

const [path, size] = process.argv.slice(2) as [string, string];
try {
  writeAtomically(path, new Uint8Array(Number(size)).fill(0x41));
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: (e as Error).message }));
}
