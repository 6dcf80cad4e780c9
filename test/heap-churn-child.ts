// Child of heap-pacer.test.ts: makes 300,000 objects of about 1 KB, each kept in a window of 20,000 for a while (as a
// push or a request keeps its objects while it is under way, so young collections promote them), and prints the
// largest heap seen. `pace`: with the main thread's pacer checked every 500 objects.
import { heapSize } from "bun:jsc";
import { heapPacer, MAIN_GROWTH_BYTES } from "../agent/heap-pacer.ts";

const pacer = process.argv[2] === "pace" ? heapPacer({ growthBytes: MAIN_GROWTH_BYTES }) : null;
const window: unknown[] = new Array(20_000);
let max = 0;
for (let i = 0; i < 300_000; i++) {
  window[i % window.length] = { id: i, body: `payload ${i} `.repeat(40), parts: [i, String(i), { at: Date.now() }] };
  if (i % 500 === 0) {
    pacer?.check();
    max = Math.max(max, heapSize());
  }
}
console.log(JSON.stringify({ maxBytes: max, collections: pacer?.collections ?? 0 }));
