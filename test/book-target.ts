// A target for tests that count how often a record is booked (issue 17, double bookings): a book of customers served
// over real HTTP on a free loopback port, and a connector that pushes to it through the shared HttpClient
// (connectors/http.ts), as every real connector does: look up first when the delivery is uncertain, then create.
import type { Connector } from "../connectors/contract.ts";
import { HttpClient } from "../connectors/http.ts";

export interface BookTarget {
  url: string;
  /** Creates per customer number. */
  creates: Map<string, number>;
  /** Create requests that reached the book. */
  posts(): number;
  /** Creates from now on are booked at once but answered only when the returned function is called (a request on the wire). */
  holdAnswers(): () => void;
  stop(): void;
}

export function startBookTarget(): BookTarget {
  const creates = new Map<string, number>();
  let posts = 0;
  let answersHeld: Promise<void> | null = null;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const lookup = /^\/customers\/(.+)$/.exec(path);
      if (req.method === "GET" && lookup)
        return creates.has(lookup[1]!) ? Response.json({ number: lookup[1] }) : Response.json({ error: "not found" }, { status: 404 });
      if (req.method === "POST" && path === "/customers") {
        posts++;
        const { number } = (await req.json()) as { number: string };
        creates.set(number, (creates.get(number) ?? 0) + 1);
        if (answersHeld) await answersHeld;
        return Response.json({ number }, { status: 201 });
      }
      return Response.json({ error: "no such route" }, { status: 404 });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    creates,
    posts: () => posts,
    holdAnswers() {
      let answer = () => {};
      answersHeld = new Promise<void>((resolve) => (answer = resolve));
      return () => {
        answersHeld = null;
        answer();
      };
    },
    stop: () => server.stop(true),
  };
}

/**
 * A connector booking customers at `url`. `beforeCreate` runs between the lookup and the create: a push waiting
 * there stands for one waiting for the rate limiter's token or a slow step of its own.
 */
export function bookConnector(url: string, beforeCreate: () => Promise<void> = async () => {}): Connector {
  const http = new HttpClient({
    baseHeaders: () => ({}),
    timeoutMs: 10_000,
    describeError: (res) => ({ code: "book_error", message: `the book answered ${res.status}` }),
    targetTitle: "the book",
  });
  return {
    name: "book",
    kind: "test",
    supports: (e) => e === "customer",
    check: async () => [],
    validate: () => [],
    async push(_entity, payload, ctx) {
      const number = String(payload.number);
      if (ctx.uncertain) {
        const found = await http.request("GET", `${url}/customers/${number}`, { accept: [404] });
        if (found.status === 200) return { remoteId: number, note: "found by lookup" };
      }
      await beforeCreate();
      await http.request("POST", `${url}/customers`, { json: { number } });
      return { remoteId: number };
    },
    find: async () => null,
  };
}
