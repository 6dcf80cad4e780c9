// A small forward proxy on loopback for the proxy tests, written on raw sockets so that it speaks exactly
// what a corporate proxy does: CONNECT host:port (a tunnel, for https) and absolute-form requests
// (GET http://host/path, for http), one request per client connection. Every request is logged.
import { connect, createServer, type Socket } from "node:net";
import { Transform } from "node:stream";

export interface TestProxy {
  url: string;
  port: number;
  /** "CONNECT 127.0.0.1:4431", "POST http://127.0.0.1:4430/customers", … */
  log: string[];
  stop(): Promise<void>;
}

export async function startProxy(): Promise<TestProxy> {
  const log: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const [requestLine, ...headerLines] = head.subarray(0, end).toString("latin1").split("\r\n");
      const rest = head.subarray(end + 4);
      const [method, target, version] = requestLine!.split(" ");
      log.push(`${method} ${target}`);
      if (method === "CONNECT") {
        const [host, port] = target!.split(":");
        const upstream = connect(Number(port), host!, () => {
          client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
          if (rest.length) upstream.write(rest);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        upstream.on("error", () => {
          client.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        });
        sockets.add(upstream);
        upstream.on("close", () => sockets.delete(upstream));
        return;
      }
      // Absolute form: forward to the origin in origin form, one request per connection.
      let url: URL;
      try {
        url = new URL(target!);
      } catch {
        client.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const headers = headerLines.filter((h) => !/^(connection|proxy-connection|proxy-authorization|keep-alive):/i.test(h));
      const upstream = connect(Number(url.port || 80), url.hostname, () => {
        upstream.write(`${method} ${url.pathname}${url.search} ${version}\r\n${[...headers, "Connection: close"].join("\r\n")}\r\n\r\n`);
        if (rest.length) upstream.write(rest);
        // This proxy closes the client's connection after one answer, so it says so (as an HTTP/1.1 proxy must): a
        // client that took the connection for a kept-alive one sent its next request into the closing socket.
        upstream.pipe(closingAfterAnswer()).pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => {
        client.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      });
      sockets.add(upstream);
      upstream.on("close", () => sockets.delete(upstream));
    };
    client.on("data", onData);
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Passes an HTTP answer through with its head's Connection header set to close. */
function closingAfterAnswer(): Transform {
  let head: Buffer | null = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (head === null) return done(null, chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return done();
      const lines = head
        .subarray(0, end)
        .toString("latin1")
        .split("\r\n")
        .filter((l) => !/^connection:/i.test(l));
      const out = Buffer.concat([Buffer.from(`${[...lines, "Connection: close"].join("\r\n")}\r\n\r\n`, "latin1"), head.subarray(end + 4)]);
      head = null;
      done(null, out);
    },
    flush(done) {
      done(null, head && head.length > 0 ? head : undefined);
    },
  });
}
