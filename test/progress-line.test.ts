// The CLI's progress line (agent/cli/progress-line.ts) on a terminal and on a pipe, with a clock of its own.
import { describe, expect, test } from "bun:test";
import { plainEveryMs, PLAIN_EVERY_MS, ProgressLine, writeAllSync, type ProgressOutput } from "../agent/cli/progress-line.ts";

function output(isTTY: boolean, columns?: number): ProgressOutput & { text: string } {
  const o = { isTTY, columns, text: "", write: (t: string) => void (o.text += t) };
  return o;
}

describe("ProgressLine", () => {
  test("terminal: one line rewritten in place, at most every 200 ms, ended by a newline", () => {
    const out = output(true);
    let now = 0;
    const line = new ProgressLine(out, { now: () => now });
    line.update("1 of 3");
    now += 50;
    line.update("2 of 3"); // too soon: skipped
    now += 200;
    line.update("3 of 3");
    line.finish("done");
    expect(out.text).toBe("\r1 of 3\x1b[K\r3 of 3\x1b[K\rdone\x1b[K\n");
  });

  test("terminal: a line wider than the terminal is cut, so rewriting it leaves nothing behind", () => {
    const out = output(true, 12);
    new ProgressLine(out).update("export: 1,200 of 5,000 invoices");
    expect(out.text).toBe("\rexport: 1,…\x1b[K");
  });

  test("not a terminal: a plain line every few seconds and the final one, no carriage returns", () => {
    const out = output(false);
    let now = 0;
    const line = new ProgressLine(out, { now: () => now, plainEveryMs: 5000 });
    for (let i = 1; i <= 12; i++) {
      line.update(`${i} of 12`);
      now += 1000;
    }
    line.finish("finished: 12");
    expect(out.text).toBe("1 of 12\n6 of 12\n11 of 12\nfinished: 12\n");
  });

  test("not a terminal: the final text is not repeated when it was just printed", () => {
    const out = output(false);
    const line = new ProgressLine(out, { plainEveryMs: 0 });
    line.update("a");
    line.update("b");
    line.finish();
    expect(out.text).toBe("a\nb\n");
  });

  test("KONTOBRO_PROGRESS_EVERY_MS sets the interval of plain lines; nonsense keeps the default", () => {
    expect(plainEveryMs({})).toBe(PLAIN_EVERY_MS);
    expect(plainEveryMs({ KONTOBRO_PROGRESS_EVERY_MS: "0" })).toBe(0);
    expect(plainEveryMs({ KONTOBRO_PROGRESS_EVERY_MS: "1500" })).toBe(1500);
    expect(plainEveryMs({ KONTOBRO_PROGRESS_EVERY_MS: "soon" })).toBe(PLAIN_EVERY_MS);
    expect(plainEveryMs({ KONTOBRO_PROGRESS_EVERY_MS: "-1" })).toBe(PLAIN_EVERY_MS);
  });

  test("a full pipe (EAGAIN) is waited for and partial writes are finished; a reader that has gone (EPIPE) ends the output", () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    const got: string[] = [];
    let busy = 3;
    let slept = 0;
    const slowPipe = (_fd: number, b: Uint8Array) => {
      if (busy-- > 0) throw errno("EAGAIN");
      const n = Math.min(4, b.length);
      got.push(Buffer.from(b.subarray(0, n)).toString());
      return n;
    };
    expect(writeAllSync(1, "0123456789\n", slowPipe as never, () => slept++)).toBe(true);
    expect(got.join("")).toBe("0123456789\n");
    expect(slept).toBe(3);
    const gone = () => {
      throw errno("EPIPE");
    };
    expect(writeAllSync(1, "x\n", gone as never, () => undefined)).toBe(false);
    // A pipe that stays full skips the line after a while, but the output stays open.
    const full = () => {
      throw errno("EAGAIN");
    };
    expect(writeAllSync(1, "x\n", full as never, () => undefined)).toBe(true);
  });
});
