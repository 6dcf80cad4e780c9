// The EU VAT zone invoices without VAT (reverse charge): only for a customer with a VAT number. An EU
// customer without one (a private person, an unregistered business) pays domestic VAT.
import { expect, test } from "bun:test";
import { vatCategory } from "../connectors/economic/vat.ts";

test("an EU customer is in the EU zone only with a VAT number", () => {
  expect(vatCategory("DE", "DK", true)).toBe("eu");
  expect(vatCategory("DE", "DK", false)).toBe("domestic");
  expect(vatCategory("NO", "DK", false)).toBe("abroad"); // outside the EU: export, VAT number or not
  expect(vatCategory("DK", "DK", false)).toBe("domestic");
  expect(vatCategory("DE", "NO", true)).toBe("abroad"); // seen from Norway
});
