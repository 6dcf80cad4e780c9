// Pre-flight rules for e-conomic: what would be refused, caught before any call, with a hint.
import type { Customer, Entity, Product, Project } from "../../agent/model.ts";
import { problem, type Problem } from "../../agent/problem.ts";
import type { RelatedRecords } from "../contract.ts";
import type { EconomicConfig } from "./config.ts";
import { invoiceRules } from "./invoice-rules.ts";
import { maxLength, numeric } from "./rule-kit.ts";

export { invoiceRules };

export function customerRules(c: Customer): Problem[] {
  return [
    ...numeric(c.number, "number", "Customer number", 1),
    ...maxLength(c.name, 255, "name", "The customer name"),
    ...maxLength(c.orgNumber, 40, "orgNumber", "The organisation number"),
    ...maxLength(c.vatNumber, 20, "vatNumber", "The VAT number"),
    ...maxLength(c.email, 255, "email", "The e-mail"),
    ...maxLength(c.website, 255, "website", "The website"),
    ...c.addresses.flatMap((a, i) => [
      ...maxLength(a.zip, 30, `addresses.${i}.zip`, "The postcode"),
      ...maxLength(a.city, 50, `addresses.${i}.city`, "The city"),
    ]),
  ];
}

export function projectRules(p: Project): Problem[] {
  return [
    ...numeric(p.number, "number", "Project number", 0),
    ...numeric(p.customerNumber, "customerNumber", "Customer number", 1),
    ...maxLength(p.name, 100, "name", "The project name"),
  ];
}

export function productRules(p: Product): Problem[] {
  const out = [...maxLength(p.code, 25, "code", "The product code"), ...maxLength(p.name, 300, "name", "The product name")];
  // e-conomic puts product numbers in URLs with its own escaping; plain characters avoid that trap.
  if (!/^[A-Za-z0-9-]+$/.test(p.code)) {
    out.push(
      problem(
        "economic.product_code_characters",
        `Product code "${p.code}" has characters e-conomic handles badly in product URLs.`,
        "Use letters, digits and '-' only in product codes sent to e-conomic.",
        "code",
      ),
    );
  }
  return out;
}

export function economicRules(entity: Entity, payload: any, related?: RelatedRecords, cfg?: EconomicConfig): Problem[] {
  switch (entity) {
    case "customer":
      return customerRules(payload);
    case "project":
      return projectRules(payload);
    case "product":
      return productRules(payload);
    case "invoice":
      return invoiceRules(payload, related, cfg);
  }
}
