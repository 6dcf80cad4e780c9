// Fake pull targets: pullOnlyConnector (the pull-runs tests), and pagedTarget for the dead-worker tests (test/pull-dead-worker.test.ts and its worker process
// test/pg-pull-child.ts): `pages` pages of one expense each, the cursor being the number of pages read. A pull from
// the cursor given to holdAt() waits until release() (forever, if nobody calls it: a worker stuck mid-run).
import type { Connector, PullResult } from "../connectors/contract.ts";

/** A connector named "eco" that only pulls, with `pull`; it pushes nothing and checks nothing. */
export function pullOnlyConnector(pull: (stream: string, cursor: string | null) => Promise<PullResult>) {
  return {
    name: "eco",
    kind: "fake",
    supports: () => false,
    check: async () => [],
    validate: () => [],
    push: async () => {
      throw new Error("this target only pulls");
    },
    find: async () => null,
    pull,
  } satisfies Connector;
}

export function pagedTarget(opts: { pages: number; prefix?: string; holdAt?: string }) {
  const calls: (string | null)[] = [];
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const connector = pullOnlyConnector(async (_stream, cursor) => {
    calls.push(cursor);
    if (opts.holdAt !== undefined && cursor === opts.holdAt) await held;
    const n = Number(cursor ?? 0) + 1;
    return {
      items: [{ remoteId: `${opts.prefix ?? "entry:"}${n}`, type: "expense.posted", data: { n } }],
      cursor: String(n),
      more: n < opts.pages,
    };
  });
  return { connector, calls, release };
}
