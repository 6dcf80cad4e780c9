// The API reference page (/ui/api): the OpenAPI description rendered on the server as plain HTML, no
// front-end build, no script, nothing from a CDN. Operations by tag (parameters, body, answers), then every
// schema as a table of its fields. hono/html escapes every interpolated value.
import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

type Json = Record<string, any>;
type Out = HtmlEscapedString | Promise<HtmlEscapedString> | string;
const METHODS = ["get", "post", "put", "delete", "patch"] as const;
const refName = (r: string) => r.replace("#/components/schemas/", "");

/** A schema in one short line: a link for a reference, the type with its constraints otherwise. */
function typeOf(s: Json | undefined): Out {
  if (!s) return "any";
  if (s.$ref) return html`<a href="#schema-${refName(s.$ref)}">${refName(s.$ref)}</a>`;
  const alts = s.oneOf ?? s.anyOf;
  if (alts) return html`${(alts as Json[]).map((a, i) => html`${i > 0 ? " | " : ""}${typeOf(a)}`)}`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return (s.enum as unknown[]).map((v) => JSON.stringify(v)).join(" | ");
  if (s.type === "array") return html`array of ${typeOf(s.items)}`;
  if (s.type === "object" && !s.properties && s.additionalProperties && typeof s.additionalProperties === "object")
    return html`map of ${typeOf(s.additionalProperties)}`;
  const t = Array.isArray(s.type) ? s.type.join(" | ") : (s.type ?? "any");
  return s.format ? `${t} (${s.format})` : t;
}

/** Bounds, patterns and defaults of a schema, in words. */
function constraints(s: Json): string {
  const out: string[] = [];
  if (s.minLength !== undefined || s.maxLength !== undefined)
    out.push(s.minLength ? `${s.minLength}–${s.maxLength ?? "∞"} characters` : `at most ${s.maxLength} characters`);
  if (s.minimum !== undefined && s.maximum !== undefined && s.maximum < 9_007_199_254_740_991) out.push(`${s.minimum}–${s.maximum}`);
  else if (s.minimum !== undefined && s.minimum !== 0) out.push(`at least ${s.minimum}`);
  if (s.minItems !== undefined || s.maxItems !== undefined) out.push(`${s.minItems ?? 0}–${s.maxItems ?? "∞"} items`);
  if (s.pattern && !s.format) out.push(`pattern ${s.pattern}`);
  if (s.default !== undefined) out.push(`default ${JSON.stringify(s.default)}`);
  return out.join("; ");
}

/** The fields of an object written inline (an invoice's lines, its PDF), as a table inside the row. */
function nested(p: Json): Out {
  const inner = p.type === "array" ? p.items : p;
  return inner?.type === "object" && inner.properties ? fieldsTable(inner) : "";
}

function fieldsTable(s: Json): Out {
  if (!s.properties) return "";
  const required = new Set<string>(s.required ?? []);
  return html`<table><thead><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>
${Object.entries(s.properties as Record<string, Json>).map(([name, p]) => html`<tr><td><code>${name}</code></td><td>${typeOf(p)}</td><td>${required.has(name) ? "yes" : ""}</td><td>${p.description ?? ""}${constraints(p) ? html` <span class="muted">${constraints(p)}</span>` : ""}${nested(p)}</td></tr>`)}
</tbody></table>`;
}

function operationBlock(path: string, method: string, op: Json) {
  const params = (op.parameters ?? []) as Json[];
  const body = op.requestBody?.content?.["application/json"]?.schema;
  return html`<article class="card op" id="op-${op.operationId}">
<h3><span class="method m-${method}">${method.toUpperCase()}</span> <code>/api/v1${path}</code></h3>
<p><strong>${op.summary}</strong>${op.description ? html` ${op.description}` : ""}</p>
${
  params.length > 0
    ? html`<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>
${params.map((p) => html`<tr><td><code>${p.name}</code></td><td>${p.in}</td><td>${typeOf(p.schema)}</td><td>${p.required ? "yes" : ""}</td><td>${p.description ?? ""}${constraints(p.schema ?? {}) ? html` <span class="muted">${constraints(p.schema)}</span>` : ""}</td></tr>`)}
</tbody></table>`
    : ""
}
${body ? html`<h4>Request body</h4><p>JSON: ${typeOf(body)}</p>` : ""}
<h4>Answers</h4><table><tbody>
${Object.entries(op.responses as Record<string, Json>).map(([status, r]) => {
  const [type, media] = Object.entries((r.content ?? {}) as Record<string, Json>)[0] ?? [];
  return html`<tr><td><code>${status}</code></td><td>${r.description}</td><td>${media ? html`${type === "application/json" ? typeOf(media.schema) : type}` : ""}</td></tr>`;
})}
</tbody></table></article>`;
}

export function renderApiReference(doc: Json): HtmlEscapedString | Promise<HtmlEscapedString> {
  const ops = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => ({ path, method: m, op: item[m] as Json })),
  );
  const schemas = Object.entries(doc.components.schemas as Record<string, Json>);
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${doc.info.title} ${doc.info.version}</title><style>${raw(CSS)}</style></head>
<body>
<header><h1>${doc.info.title}</h1><span class="muted">version ${doc.info.version} · OpenAPI ${doc.openapi} · <a href="/api/v1/openapi.json">openapi.json</a> · <a href="/">status page</a></span></header>
<main>
<section class="card"><p>${doc.info.description}</p>
<p>Base URL: <code>${doc.servers[0].url}</code>. Authentication: <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<nav>${(doc.tags as Json[]).map((t) => html`<h4>${t.name} <span class="muted">${t.description}</span></h4><ul>${ops.filter((o) => o.op.tags[0] === t.name).map((o) => html`<li><a href="#op-${o.op.operationId}"><span class="method m-${o.method}">${o.method.toUpperCase()}</span> ${o.path}</a> ${o.op.summary}</li>`)}</ul>`)}</nav>
</section>
${(doc.tags as Json[]).map((t) => html`<h2>${t.name}</h2>${ops.filter((o) => o.op.tags[0] === t.name).map((o) => operationBlock(o.path, o.method, o.op))}`)}
<h2>Schemas</h2>
${schemas.map(
  ([name, s]) => html`<article class="card schema" id="schema-${name}"><h3>${name}</h3>
${s.description ? html`<p>${s.description}</p>` : ""}
${s.properties ? fieldsTable(s) : html`<p>${typeOf(s)}${constraints(s) ? html` <span class="muted">${constraints(s)}</span>` : ""}</p>`}
</article>`,
)}
</main></body></html>`;
}

const CSS = `
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;gap:16px;align-items:baseline;flex-wrap:wrap}
header h1{margin:0;font-size:20px} header .muted,header a{color:#b8c0cc}
main{max-width:1100px;margin:0 auto;padding:16px} h2{margin:24px 0 8px}
.card{background:#fff;border-radius:8px;padding:12px 20px;margin-bottom:12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h3{margin:4px 0 8px;font-size:16px} h4{margin:12px 0 4px;font-size:14px}
.muted{color:#6b7280;font-weight:normal;font-size:13px}
.method{display:inline-block;min-width:52px;text-align:center;border-radius:4px;padding:1px 6px;font-size:12px;font-weight:bold;color:#fff;background:#475467}
.m-get{background:#067647} .m-post{background:#175cd3} .m-put{background:#b54708} .m-delete{background:#b42318}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaecf0;vertical-align:top}
nav ul{margin:4px 0 8px;padding-left:18px} code{font-size:13px}`;
