// How prepared requests cross from the main thread to the intake writer's thread (issue 16): as one text, which
// worker.postMessage copies far more cheaply than the same objects. The payloads are JSON already; inside a JSON
// text they would be escaped and unescaped once more, which cost the main thread more than making them did. So
// the text is a JSON header, in which each payload stands as its length, a line break (JSON.stringify writes none),
// then the payloads one after another in the header's order. Pure.
import type { PreparedEvent } from "./intake-store.ts";

/** One request's events, as the main thread prepared them. */
export interface WriterRequest {
  id: number;
  events: PreparedEvent[];
}

type Doc = NonNullable<PreparedEvent["doc"]>;
/** An event in the header: its payloads are lengths. */
type EventHeader = Omit<PreparedEvent, "payload" | "doc"> & {
  payload: number;
  doc?: Omit<Doc, "recordPayload"> & { recordPayload: number };
};

export function encodeRequests(requests: WriterRequest[]): string {
  const payloads: string[] = [];
  const header = requests.map((r) => ({
    id: r.id,
    events: r.events.map((e): EventHeader => {
      payloads.push(e.payload);
      if (!e.doc) return { ...e, payload: e.payload.length, doc: undefined };
      payloads.push(e.doc.recordPayload);
      return { ...e, payload: e.payload.length, doc: { ...e.doc, recordPayload: e.doc.recordPayload.length } };
    }),
  }));
  return `${JSON.stringify(header)}\n${payloads.join("")}`;
}

export function decodeRequests(text: string): WriterRequest[] {
  const end = text.indexOf("\n");
  const header = JSON.parse(text.slice(0, end)) as { id: number; events: EventHeader[] }[];
  let at = end + 1;
  const next = (length: number) => text.slice(at, (at += length));
  // The header's objects are this call's own: each length is replaced by its payload in place (copying each event
  // with a rest and a spread cost the writer's thread more than parsing the header, issue 16).
  for (const r of header) {
    for (const e of r.events as unknown as PreparedEvent[]) {
      e.payload = next(e.payload as unknown as number);
      if (e.doc) e.doc.recordPayload = next(e.doc.recordPayload as unknown as number);
    }
  }
  return header as unknown as WriterRequest[];
}
