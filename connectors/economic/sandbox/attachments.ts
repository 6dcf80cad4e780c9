// The draft invoice attachment: POST …/attachment/file (multipart, PDF only, 9.0 MB), GET …/attachment,
// GET and DELETE …/attachment/file.
import type { Context, Hono } from "hono";
import { restError, restJson } from "./http.ts";
import { methodNotAllowed, notFound, origin } from "./rest.ts";
import type { Attachment } from "./state.ts";

/** The default: the larger reading of the notes' "9.0 MB" (the option attachmentMaxBytes takes the other, 9,000,000). */
export const MAX_ATTACHMENT_BYTES = 9 * 1024 * 1024;

export interface MultipartFile {
  fieldName: string;
  fileName: string;
  bytes: Uint8Array;
}

/**
 * The first file part of a multipart/form-data body. Parsed by hand because e-conomic's own example
 * sends the file under an empty field name, which Bun's FormData parser drops.
 */
export function firstMultipartFile(body: Uint8Array, contentType: string): MultipartFile | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!boundary) return undefined;
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  let start = buf.indexOf(delimiter);
  const parts: MultipartFile[] = [];
  while (start >= 0) {
    const from = start + delimiter.length;
    if (buf.subarray(from, from + 2).toString() === "--") break; // closing delimiter
    const end = buf.indexOf(delimiter, from);
    if (end < 0) break;
    const part = buf.subarray(from, end);
    const split = part.indexOf("\r\n\r\n");
    if (split >= 0) {
      const head = part.subarray(0, split).toString("latin1");
      const disposition = /content-disposition:[^\r\n]*/i.exec(head)?.[0] ?? "";
      const content = part.subarray(split + 4, part.length - 2); // drop the CRLF before the next delimiter
      parts.push({
        fieldName: /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? "",
        fileName: /filename="([^"]*)"/i.exec(disposition)?.[1] ?? "",
        bytes: new Uint8Array(content),
      });
      if (/filename=/i.test(disposition)) return parts[parts.length - 1];
    }
    start = end;
  }
  return parts[0];
}

function tooLarge(): Response {
  return restError(413, "The file is too large. The maximum is 9.0 MB.", { developerHint: "Attach a smaller PDF." });
}

function countPages(bytes: Uint8Array): number {
  const text = new TextDecoder("latin1").decode(bytes);
  return Math.max(1, (text.match(/\/Type\s*\/Page(?!s)/g) ?? []).length);
}

export function registerAttachmentRoutes(
  app: Hono,
  draftOf: (c: Context) => { attachment?: Attachment } | undefined,
  maxBytes: number,
): void {
  const attachmentInfo = (c: Context, a: Attachment) => {
    const self = `${origin(c)}/invoices/drafts/${c.req.param("n")}/attachment`;
    return { file: `${self}/file`, pages: a.pages, self };
  };
  app.get("/invoices/drafts/:n/attachment", (c) => {
    const rec = draftOf(c);
    if (!rec) return notFound("Draft invoice");
    return rec.attachment ? restJson(200, attachmentInfo(c, rec.attachment)) : notFound("Attachment");
  });
  app.all("/invoices/drafts/:n/attachment", methodNotAllowed);
  app.post("/invoices/drafts/:n/attachment/file", async (c) => {
    const rec = draftOf(c);
    if (!rec) return notFound("Draft invoice");
    const type = c.req.header("content-type") ?? "";
    if (!/^multipart\/form-data/i.test(type))
      return restError(415, "Upload the file as multipart/form-data; application/json is not accepted here.");
    if (Number(c.req.header("content-length") ?? 0) > maxBytes + 64 * 1024) return tooLarge();
    const file = firstMultipartFile(new Uint8Array(await c.req.arrayBuffer()), type);
    if (!file)
      return restError(400, "No file was found in the request.", {
        developerHint: "Send the PDF as a part of multipart/form-data with a boundary.",
      });
    if (file.bytes.byteLength > maxBytes) return tooLarge();
    if (new TextDecoder().decode(file.bytes.subarray(0, 5)) !== "%PDF-") {
      return restError(400, "Only valid PDF files can be attached to a draft invoice.", {
        developerHint: "The file must be a PDF (it must start with %PDF-).",
      });
    }
    rec.attachment = {
      fileName: file.fileName || "attachment.pdf",
      size: file.bytes.byteLength,
      pages: countPages(file.bytes),
      bytes: file.bytes,
    };
    const info = attachmentInfo(c, rec.attachment);
    return restJson(201, info, { location: info.self });
  });
  app.get("/invoices/drafts/:n/attachment/file", (c) => {
    const a = draftOf(c)?.attachment;
    return a ? new Response(a.bytes, { headers: { "content-type": "application/pdf" } }) : notFound("Attachment");
  });
  app.delete("/invoices/drafts/:n/attachment/file", (c) => {
    const rec = draftOf(c);
    if (!rec?.attachment) return notFound("Attachment"); // DELETE is not idempotent in e-conomic: a repeat is 404
    delete rec.attachment;
    return new Response(null, { status: 204 });
  });
  app.all("/invoices/drafts/:n/attachment/file", methodNotAllowed);
}
