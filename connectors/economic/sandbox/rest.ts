// REST resources of the agreement: /self, the lookups (groups, zones, terms, layouts, units, journals),
// /customers and /products.
import type { Context, Hono } from "hono";
import customersGet from "./schemas/customers.get.schema.json";
import customersPost from "./schemas/customers.post.schema.json";
import customersPut from "./schemas/customers.customerNo.put.schema.json";
import productsGet from "./schemas/products.get.schema.json";
import productsPost from "./schemas/products.post.schema.json";
import productsPut from "./schemas/products.productNumber.put.schema.json";
import type { JsonSchema } from "../schema-validate.ts";
import {
  checkRef,
  decodeSelfId,
  encodeSelfId,
  filterableFields,
  readRestDocument,
  restCollection,
  restError,
  restJson,
  validationError,
  withSelf,
  type FieldError,
} from "./http.ts";
import type { Json, SandboxState } from "./state.ts";

export interface SandboxCore {
  readonly state: SandboxState;
  /** VAT rate for the domestic VAT zone (1), e.g. 0.25. */
  readonly vatRate: number;
  /** The largest draft attachment in bytes: "9.0 MB" in the notes, 9 × 1024 × 1024 or 9,000,000 (unverified which). */
  readonly attachmentMaxBytes: number;
}

const schema = (s: unknown) => s as JsonSchema;
const CUSTOMER_FILTERS = filterableFields(schema(customersGet));
const PRODUCT_FILTERS = filterableFields(schema(productsGet));

export function origin(c: Context): string {
  return new URL(c.req.url).origin;
}

export function methodNotAllowed(c: Context): Response {
  return restError(405, `The method ${c.req.method} is not allowed on ${c.req.path}.`);
}

export function notFound(what: string): Response {
  return restError(404, `${what} not found.`, {
    developerHint: "Check the number in the URL; find a list of resources at the collection URL.",
  });
}

/** Positive integer from a URL segment, or undefined. */
export function intSegment(s: string | undefined): number | undefined {
  return s !== undefined && /^-?\d{1,10}$/.test(s) ? Number(s) : undefined;
}

function sortedValues<K extends number | string>(m: Map<K, Json>): Json[] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
}

interface LookupSpec {
  path: string;
  key: string;
  map: (s: SandboxState) => Map<number, Json>;
  label: string;
}

const LOOKUPS: LookupSpec[] = [
  { path: "/customer-groups", key: "customerGroupNumber", map: (s) => s.customerGroups, label: "Customer group" },
  { path: "/vat-zones", key: "vatZoneNumber", map: (s) => s.vatZones, label: "VAT zone" },
  { path: "/payment-terms", key: "paymentTermsNumber", map: (s) => s.paymentTerms, label: "Payment terms" },
  { path: "/layouts", key: "layoutNumber", map: (s) => s.layouts, label: "Layout" },
  { path: "/units", key: "unitNumber", map: (s) => s.units, label: "Unit" },
  { path: "/product-groups", key: "productGroupNumber", map: (s) => s.productGroups, label: "Product group" },
  { path: "/journals", key: "journalNumber", map: (s) => s.journals, label: "Journal" },
];

export function registerRestRoutes(app: Hono, core: SandboxCore): void {
  app.get("/self", (c) => restJson(200, { ...core.state.self, self: `${origin(c)}/self` }));
  app.all("/self", methodNotAllowed);
  for (const spec of LOOKUPS) registerLookup(app, core, spec);
  registerCustomers(app, core);
  registerProducts(app, core);
  registerSalesAccounts(app, core);
}

/** A product group's sales account for each VAT zone, with the account's VAT code: what a line on its products books. */
function registerSalesAccounts(app: Hono, core: SandboxCore): void {
  app.get("/product-groups/:n/sales-accounts", (c) => {
    const group = intSegment(c.req.param("n")) ?? NaN;
    if (!core.state.productGroups.has(group)) return notFound("Product group");
    const base = origin(c);
    const byZone = core.state.salesAccounts.get(group) ?? {};
    const items = Object.entries(byZone).flatMap(([zone, account]) => {
      const a = core.state.ledger.accounts.get(account);
      const z = core.state.vatZones.get(Number(zone));
      if (!a || !z) return [];
      return [
        {
          salesAccount: { ...a, self: `${base}/accounts/${account}` },
          vatZone: { ...z, self: `${base}/vat-zones/${zone}` },
        },
      ];
    });
    return restCollection(c, items, { filterable: new Set() });
  });
  app.all("/product-groups/:n/sales-accounts", methodNotAllowed);
}

function registerLookup(app: Hono, core: SandboxCore, spec: LookupSpec): void {
  const render = (c: Context, item: Json) => ({ ...item, self: `${origin(c)}${spec.path}/${item[spec.key]}` });
  app.get(spec.path, (c) =>
    restCollection(
      c,
      sortedValues(spec.map(core.state)).map((i) => render(c, i)),
      { filterable: new Set([spec.key, "name"]) },
    ),
  );
  app.get(`${spec.path}/:n`, (c) => {
    const item = spec.map(core.state).get(intSegment(c.req.param("n")) ?? NaN);
    return item ? restJson(200, render(c, item)) : notFound(spec.label);
  });
  app.all(spec.path, methodNotAllowed);
  app.all(`${spec.path}/:n`, methodNotAllowed);
}

// --- customers -------------------------------------------------------------------------------------

function renderCustomer(base: string, doc: Json): Json {
  return {
    ...doc,
    customerGroup: withSelf(doc.customerGroup, "customerGroupNumber", `${base}/customer-groups`),
    vatZone: withSelf(doc.vatZone, "vatZoneNumber", `${base}/vat-zones`),
    paymentTerms: withSelf(doc.paymentTerms, "paymentTermsNumber", `${base}/payment-terms`),
    layout: withSelf(doc.layout, "layoutNumber", `${base}/layouts`),
    self: `${base}/customers/${doc.customerNumber}`,
  };
}

/** Checks references and normalizes them to `{ xNumber }`; returns the field errors. */
function resolveCustomerRefs(state: SandboxState, base: string, body: Json): FieldError[] {
  const errors: FieldError[] = [];
  const refs: [string, string, Map<number, Json>, string][] = [
    ["customerGroup", "customerGroupNumber", state.customerGroups, "/customer-groups"],
    ["vatZone", "vatZoneNumber", state.vatZones, "/vat-zones"],
    ["paymentTerms", "paymentTermsNumber", state.paymentTerms, "/payment-terms"],
    ["layout", "layoutNumber", state.layouts, "/layouts"],
  ];
  for (const [prop, key, map, path] of refs) {
    const n = checkRef(errors, [prop], body[prop], key, (x) => map.has(x), base + path);
    if (n !== undefined) body[prop] = { [key]: n };
  }
  checkCurrency(errors, ["currency"], body.currency, base);
  return errors;
}

const CURRENCIES = new Set(Intl.supportedValuesOf("currency"));

export function checkCurrency(errors: FieldError[], at: string[], currency: unknown, base: string): void {
  if (typeof currency === "string" && !CURRENCIES.has(currency.toUpperCase())) {
    errors.push({
      segments: at,
      errorCode: "E06000",
      message: "currency does not exist.",
      value: currency,
      developerHint: `Find a list of currencies at ${base}/currencies.`,
    });
  }
}

function duplicate(prop: string, value: unknown, what: string): FieldError {
  return {
    segments: [prop],
    errorCode: "SANDBOX_DUPLICATE",
    message: `${what} ${value} is already in use.`,
    value,
    developerHint: "Use another number, or update the existing resource with PUT.",
  };
}

function registerCustomers(app: Hono, core: SandboxCore): void {
  app.get("/customers", (c) =>
    restCollection(
      c,
      sortedValues(core.state.customers).map((d) => renderCustomer(origin(c), d)),
      {
        filterable: CUSTOMER_FILTERS,
        metaData: { create: { description: "Create a new customer.", href: `${origin(c)}/customers`, httpMethod: "post" } },
      },
    ),
  );
  app.post("/customers", async (c) => {
    const body = await readRestDocument(c, schema(customersPost));
    if (body instanceof Response) return body;
    const { customers } = core.state;
    const errors = resolveCustomerRefs(core.state, origin(c), body);
    if (body.customerNumber !== undefined && customers.has(body.customerNumber))
      errors.push(duplicate("customerNumber", body.customerNumber, "Customer number"));
    if (errors.length > 0) return validationError(errors);
    const customerNumber = body.customerNumber ?? Math.max(0, ...customers.keys()) + 1;
    const doc = { ...body, customerNumber, balance: 0, lastUpdated: new Date().toISOString() };
    customers.set(customerNumber, doc);
    const out = renderCustomer(origin(c), doc);
    return restJson(201, out, { location: out.self });
  });
  app.all("/customers", methodNotAllowed);
  app.get("/customers/:n", (c) => {
    const doc = core.state.customers.get(intSegment(c.req.param("n")) ?? NaN);
    return doc ? restJson(200, renderCustomer(origin(c), doc)) : notFound("Customer");
  });
  app.put("/customers/:n", async (c) => {
    const n = intSegment(c.req.param("n"));
    const existing = core.state.customers.get(n ?? NaN);
    if (!existing) return notFound("Customer");
    const body = await readRestDocument(c, schema(customersPut));
    if (body instanceof Response) return body;
    const errors = resolveCustomerRefs(core.state, origin(c), body);
    if (body.customerNumber !== undefined && body.customerNumber !== n) {
      errors.push({
        segments: ["customerNumber"],
        errorCode: "SANDBOX_MISMATCH",
        message: "customerNumber must match the number in the URL.",
        value: body.customerNumber,
        developerHint: "PUT replaces the customer at the URL.",
      });
    }
    if (errors.length > 0) return validationError(errors);
    // PUT replaces the document; the balance is the server's.
    const doc = { ...body, customerNumber: n, balance: existing.balance ?? 0, lastUpdated: new Date().toISOString() };
    core.state.customers.set(n!, doc);
    return restJson(200, renderCustomer(origin(c), doc));
  });
  app.delete("/customers/:n", (c) =>
    core.state.customers.delete(intSegment(c.req.param("n")) ?? NaN) ? new Response(null, { status: 204 }) : notFound("Customer"),
  );
  app.all("/customers/:n", methodNotAllowed);
}

// --- products --------------------------------------------------------------------------------------

function renderProduct(base: string, doc: Json): Json {
  return {
    ...doc,
    productGroup: withSelf(doc.productGroup, "productGroupNumber", `${base}/product-groups`),
    unit: withSelf(doc.unit, "unitNumber", `${base}/units`),
    self: `${base}/products/${encodeSelfId(doc.productNumber)}`,
  };
}

function resolveProductRefs(state: SandboxState, base: string, body: Json): FieldError[] {
  const errors: FieldError[] = [];
  const group = checkRef(
    errors,
    ["productGroup"],
    body.productGroup,
    "productGroupNumber",
    (n) => state.productGroups.has(n),
    `${base}/product-groups`,
  );
  if (group !== undefined) body.productGroup = { productGroupNumber: group };
  const unit = checkRef(errors, ["unit"], body.unit, "unitNumber", (n) => state.units.has(n), `${base}/units`);
  if (unit !== undefined) body.unit = { unitNumber: unit };
  return errors;
}

function productParam(c: Context): string {
  return decodeSelfId(c.req.param("n") ?? "");
}

function registerProducts(app: Hono, core: SandboxCore): void {
  app.get("/products", (c) =>
    restCollection(
      c,
      sortedValues(core.state.products).map((d) => renderProduct(origin(c), d)),
      { filterable: PRODUCT_FILTERS },
    ),
  );
  app.post("/products", async (c) => {
    const body = await readRestDocument(c, schema(productsPost));
    if (body instanceof Response) return body;
    const errors = resolveProductRefs(core.state, origin(c), body);
    if (core.state.products.has(body.productNumber)) errors.push(duplicate("productNumber", body.productNumber, "Product number"));
    if (errors.length > 0) return validationError(errors);
    const doc: Json = { ...body, lastUpdated: new Date().toISOString() };
    core.state.products.set(doc.productNumber, doc);
    const out = renderProduct(origin(c), doc);
    return restJson(201, out, { location: out.self });
  });
  app.all("/products", methodNotAllowed);
  app.get("/products/:n", (c) => {
    const doc = core.state.products.get(productParam(c));
    return doc ? restJson(200, renderProduct(origin(c), doc)) : notFound("Product");
  });
  app.put("/products/:n", async (c) => {
    const n = productParam(c);
    if (!core.state.products.has(n)) return notFound("Product");
    const body = await readRestDocument(c, schema(productsPut));
    if (body instanceof Response) return body;
    const errors = resolveProductRefs(core.state, origin(c), body);
    if (body.productNumber !== n) {
      errors.push({
        segments: ["productNumber"],
        errorCode: "SANDBOX_MISMATCH",
        message: "productNumber must match the number in the URL.",
        value: body.productNumber,
        developerHint: "PUT replaces the product at the URL.",
      });
    }
    if (errors.length > 0) return validationError(errors);
    const doc = { ...body, lastUpdated: new Date().toISOString() };
    core.state.products.set(n, doc);
    return restJson(200, renderProduct(origin(c), doc));
  });
  app.delete("/products/:n", (c) =>
    core.state.products.delete(productParam(c)) ? new Response(null, { status: 204 }) : notFound("Product"),
  );
  app.all("/products/:n", methodNotAllowed);
}
