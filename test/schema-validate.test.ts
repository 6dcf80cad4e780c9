import { describe, expect, test } from "bun:test";
import { decimals, formatPath, stripToSchema, validateSchema, type JsonSchema } from "../connectors/economic/schema-validate.ts";
import customersPost from "../connectors/economic/sandbox/schemas/customers.post.schema.json";
import draftsPost from "../connectors/economic/sandbox/schemas/invoices.drafts.post.schema.json";
import bookedPost from "../connectors/economic/sandbox/schemas/invoices.booked.post.schema.json";
import projectSchema from "../connectors/economic/sandbox/schemas/openapi-projects-Project.schema.json";

const s = (x: unknown) => x as JsonSchema;
const keywords = (schema: JsonSchema, value: unknown) => validateSchema(schema, value).map((e) => `${e.path}:${e.keyword}`);

describe("types", () => {
  test("integer, number, string, boolean, object, array", () => {
    expect(keywords({ type: "integer" }, 3)).toEqual([]);
    expect(keywords({ type: "integer" }, 3.5)).toEqual([":type"]);
    expect(keywords({ type: "number" }, 3.5)).toEqual([]);
    expect(keywords({ type: "number" }, "3.5")).toEqual([":type"]);
    expect(keywords({ type: "string" }, 1)).toEqual([":type"]);
    expect(keywords({ type: "boolean" }, "true")).toEqual([":type"]);
    expect(keywords({ type: "object" }, [])).toEqual([":type"]);
    expect(keywords({ type: "array" }, {})).toEqual([":type"]);
  });

  test("a list of types accepts any of them", () => {
    expect(keywords({ type: ["string", "integer"] }, 4)).toEqual([]);
    expect(keywords({ type: ["string", "integer"] }, "x")).toEqual([]);
    expect(keywords({ type: ["string", "integer"] }, true)).toEqual([":type"]);
  });

  test("a type error stops the checks below it", () => {
    const schema: JsonSchema = {
      type: "object",
      properties: { a: { type: "object", properties: { b: { type: "string", required: true } } } },
    };
    expect(keywords(schema, { a: 5 })).toEqual(["a:type"]);
  });

  test("null only where nullable (OpenAPI) or typed null", () => {
    expect(keywords({ type: "string", nullable: true }, null)).toEqual([]);
    expect(keywords({ type: ["string", "null"] }, null)).toEqual([]);
    expect(keywords({ type: "string" }, null)).toEqual([":type"]);
  });
});

describe("objects", () => {
  test("draft-03 required inside the property, with nested paths", () => {
    const schema: JsonSchema = {
      type: "object",
      properties: {
        name: { type: "string", required: true },
        recipient: { type: "object", properties: { vatZone: { type: "object", required: true } } },
      },
    };
    expect(keywords(schema, { recipient: {} })).toEqual(["name:required", "recipient.vatZone:required"]);
    expect(keywords(schema, { name: "x", recipient: { vatZone: {} } })).toEqual([]);
  });

  test("OpenAPI required list on the object", () => {
    const schema: JsonSchema = { type: "object", required: ["name", "projectGroupNumber"], properties: { name: { type: "string" } } };
    expect(keywords(schema, { name: "x" })).toEqual(["projectGroupNumber:required"]);
  });

  test("additionalProperties false names the unknown property", () => {
    const errors = validateSchema({ type: "object", additionalProperties: false, properties: { a: { type: "string" } } }, { a: "x", b: 1 });
    expect(errors.map((e) => [e.path, e.keyword, e.value])).toEqual([["b", "additionalProperties", 1]]);
  });

  test("additionalProperties as a schema validates the extra values", () => {
    expect(keywords({ type: "object", additionalProperties: { type: "integer" } }, { x: 1, y: "2" })).toEqual(["y:type"]);
  });

  test("read-only properties are ignored on input (readOnly and e-conomic's readonly)", () => {
    const schema: JsonSchema = {
      type: "object",
      properties: { a: { type: "number", readOnly: true, required: true }, b: { type: "integer", readonly: true } },
    };
    expect(keywords(schema, { a: "not a number", b: 1.5 })).toEqual([]);
    expect(keywords(schema, {})).toEqual([]);
  });
});

describe("strings and numbers", () => {
  test("minLength and maxLength", () => {
    expect(keywords({ type: "string", minLength: 1, maxLength: 3 }, "")).toEqual([":minLength"]);
    expect(keywords({ type: "string", minLength: 1, maxLength: 3 }, "abcd")).toEqual([":maxLength"]);
    expect(keywords({ type: "string", minLength: 1, maxLength: 3 }, "abc")).toEqual([]);
  });

  test("patterns are not anchored, as in JSON Schema", () => {
    expect(keywords({ type: "string", pattern: "[a-zA-Z]{3}" }, "12NOK")).toEqual([]);
    expect(keywords({ type: "string", pattern: "[a-zA-Z]{3}" }, "N1K")).toEqual([":pattern"]);
  });

  test("minimum, maximum and exclusiveMinimum (draft-03 boolean and numeric form)", () => {
    expect(keywords({ type: "integer", minimum: 1, maximum: 999999999 }, 0)).toEqual([":minimum"]);
    expect(keywords({ type: "integer", minimum: 1, maximum: 999999999 }, 1_000_000_000)).toEqual([":maximum"]);
    expect(keywords({ type: "number", minimum: 0, exclusiveMinimum: true }, 0)).toEqual([":minimum"]);
    expect(keywords({ type: "number", minimum: 0, exclusiveMinimum: true }, 0.01)).toEqual([]);
    expect(keywords({ type: "number", exclusiveMinimum: 5 }, 5)).toEqual([":exclusiveMinimum"]);
  });

  test("maxDecimal counts decimals as written", () => {
    expect(decimals(10)).toBe(0);
    expect(decimals(10.5)).toBe(1);
    expect(decimals(10.12345)).toBe(5);
    expect(decimals(1e-7)).toBe(7);
    expect(decimals(-1450.25)).toBe(2);
    const errors = validateSchema(
      { type: "object", properties: { unitNetPrice: { type: "number", maxDecimal: 2 } } },
      { unitNetPrice: 10.12345 },
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: "unitNetPrice", keyword: "maxDecimal", value: 10.12345 });
    expect(errors[0]!.message).toContain("unitNetPrice");
  });

  test("formats: date / full-date are calendar dates, date-time and uri loosely", () => {
    expect(keywords({ type: "string", format: "date" }, "2026-03-31")).toEqual([]);
    expect(keywords({ type: "string", format: "full-date" }, "2026-02-30")).toEqual([":format"]);
    expect(keywords({ type: "string", format: "full-date" }, "31.03.2026")).toEqual([":format"]);
    expect(keywords({ type: "string", format: "date-time" }, "2026-03-31T12:00:00Z")).toEqual([]);
    expect(keywords({ type: "string", format: "date-time" }, "yesterday")).toEqual([":format"]);
    expect(keywords({ type: "string", format: "uri" }, "https://restapi.e-conomic.com/customers/1")).toEqual([]);
    expect(keywords({ type: "string", format: "uri" }, "not a uri")).toEqual([":format"]);
    expect(keywords({ type: "string", format: "int32" }, "anything")).toEqual([]);
  });

  test("enum, optionally ignoring case", () => {
    const schema: JsonSchema = { type: "string", enum: ["none", "EAN", "Email"] };
    expect(keywords(schema, "EAN")).toEqual([]);
    expect(keywords(schema, "ean")).toEqual([":enum"]);
    expect(validateSchema(schema, "ean", { caseInsensitiveEnums: true })).toEqual([]);
  });
});

describe("arrays and paths", () => {
  test("items are checked with their index in the path", () => {
    const schema: JsonSchema = {
      type: "object",
      properties: { lines: { type: "array", items: { type: "object", properties: { quantity: { type: "number", maxDecimal: 2 } } } } },
    };
    const errors = validateSchema(schema, { lines: [{ quantity: 1 }, { quantity: 1.001 }] });
    expect(errors.map((e) => [e.path, e.segments])).toEqual([["lines[1].quantity", ["lines", 1, "quantity"]]]);
  });

  test("formatPath", () => {
    expect(formatPath([])).toBe("");
    expect(formatPath(["recipient", "vatZone"])).toBe("recipient.vatZone");
    expect(formatPath(["lines", 0, "unit", "unitNumber"])).toBe("lines[0].unit.unitNumber");
  });
});

describe("e-conomic's own schemas", () => {
  test("customers.post: a good customer passes, a bad one lists every problem", () => {
    const good = {
      customerNumber: 10042,
      name: "Fjordkraft Bygg AS",
      currency: "NOK",
      customerGroup: { customerGroupNumber: 1 },
      vatZone: { vatZoneNumber: 1 },
      paymentTerms: { paymentTermsNumber: 1 },
      email: "faktura@fjordkraftbygg.no",
    };
    expect(validateSchema(s(customersPost), good)).toEqual([]);
    const bad = { ...good, customerNumber: 0, currency: "NOKK", name: "", paymentTerms: undefined, pNumber: "123" };
    expect(keywords(s(customersPost), bad).sort()).toEqual([
      "currency:maxLength",
      "customerNumber:minimum",
      "name:minLength",
      "pNumber:minLength",
      "paymentTerms:required",
    ]);
  });

  test("invoices.drafts.post: the official example's read-only totals are ignored", () => {
    const draft = {
      date: "2014-08-08",
      currency: "DKK",
      exchangeRate: 10.25,
      netAmount: 10.0,
      grossAmount: 12.5,
      marginInBaseCurrency: -46.93,
      paymentTerms: { paymentTermsNumber: 1, daysOfCredit: 14, name: "Lobende maned 14 dage", paymentTermsType: "invoiceMonth" },
      customer: { customerNumber: 1 },
      recipient: {
        name: "Toj & Co Grossisten",
        vatZone: { name: "Domestic", vatZoneNumber: 1, enabledForCustomer: true, enabledForSupplier: true },
      },
      references: { other: "aaaa" },
      layout: { layoutNumber: 5 },
      lines: [
        {
          lineNumber: 1,
          sortKey: 1,
          unit: { unitNumber: 2, name: "Tim" },
          product: { productNumber: "50" },
          quantity: 1.0,
          unitNetPrice: 10.0,
          totalNetAmount: 10.0,
        },
      ],
    };
    expect(validateSchema(s(draftsPost), draft)).toEqual([]);
    const errors = validateSchema(s(draftsPost), { ...draft, date: "2014-8-8", lines: [{ unitNetPrice: 10.12345, lineNumber: 0 }] });
    expect(errors.map((e) => `${e.path}:${e.keyword}`).sort()).toEqual([
      "date:format",
      "date:pattern",
      "lines[0].lineNumber:minimum",
      "lines[0].unitNetPrice:maxDecimal",
    ]);
  });

  test("invoices.booked.post: the documented sendBy 'ean' only passes case-insensitively", () => {
    const body = {
      draftInvoice: { draftInvoiceNumber: 2, self: "https://restapi.e-conomic.com/invoices/drafts/2" },
      bookWithNumber: 7,
      sendBy: "ean",
    };
    expect(keywords(s(bookedPost), body)).toEqual(["sendBy:enum"]);
    expect(validateSchema(s(bookedPost), body, { caseInsensitiveEnums: true })).toEqual([]);
  });

  test("OpenAPI Project: required list, nullable, bounds, no unknown properties", () => {
    expect(validateSchema(s(projectSchema), { name: "Rehab", projectGroupNumber: 1, customerNumber: null })).toEqual([]);
    expect(keywords(s(projectSchema), { number: 4711 })).toEqual(["name:required", "projectGroupNumber:required"]);
    expect(keywords(s(projectSchema), { name: null, projectGroupNumber: 1 })).toEqual(["name:type"]);
    expect(keywords(s(projectSchema), { name: "x", projectGroupNumber: 1, number: 1_000_000_000, customerNumber: 0 }).sort()).toEqual([
      "customerNumber:minimum",
      "number:maximum",
    ]);
    expect(keywords(s(projectSchema), { name: "x", projectGroupNumber: 1, projectNumber: 5 })).toEqual([
      "projectNumber:additionalProperties",
    ]);
    expect(keywords(s(projectSchema), { name: "x", projectGroupNumber: 1, costPrice: "ignored", isClosed: "ignored" })).toEqual([]);
  });
});

describe("stripToSchema", () => {
  test("keeps declared writable properties, drops read-only and unknown ones, also in arrays", () => {
    const schema: JsonSchema = {
      type: "object",
      properties: {
        name: { type: "string" },
        balance: { type: "number", readOnly: true },
        lines: { type: "array", items: { type: "object", properties: { quantity: { type: "number" } } } },
        free: { type: "object" },
      },
    };
    expect(
      stripToSchema(schema, { name: "x", balance: 5, extra: 1, lines: [{ quantity: 1, totalNetAmount: 3 }], free: { any: 1 } }),
    ).toEqual({ name: "x", lines: [{ quantity: 1 }], free: { any: 1 } });
  });
});
