// The [exports] section: defaults, one clear line per wrong key, and what the export service gets.
import { describe, expect, test } from "bun:test";
import { type ConfigError, validateConfig } from "../agent/config.ts";
import { ExportsConfig, exportSettings, fiscalYearOf } from "../agent/exports/config.ts";

const problems = (exports: unknown) => {
  try {
    validateConfig({ exports }, {});
    return [];
  } catch (e) {
    return (e as ConfigError).problems;
  }
};

describe("[exports] config", () => {
  test("defaults: Swedish BAS posting, SIE with #KSUMMA and CRLF, no output folder", () => {
    const s = exportSettings(validateConfig({}, {}).config.exports);
    expect(s).toMatchObject({ fiscalYearStart: "01-01", sie4: { lineEnding: "crlf", ksumma: true } });
    expect(s.outputDir).toBeUndefined();
    expect(s.posting).toMatchObject({
      receivableAccount: "1510",
      currency: "SEK",
      revenueAccounts: { hours: "3041", expenses: "3590", products: "3001" },
    });
    expect(Object.keys(s.posting.vatCodes).sort()).toEqual(["0", "12", "25", "6"]);
  });

  test("a Norwegian chart maps onto the posting rules", () => {
    const s = exportSettings(
      ExportsConfig.parse({
        currency: "NOK",
        fiscal_year_start: "07-01",
        posting: {
          receivable_account: "1500",
          revenue_accounts: { hours: "3000" },
          default_vat_code: "3",
          rounding_account: "7740",
          vat_codes: { "3": { rate: 25, account: "2700" }, "5": { rate: 0 } },
          cost_centre: "fixed",
          cost_centre_id: "10",
        },
        sie4: { series: "F", voucher_number: "invoice_number", line_ending: "lf" },
      }),
    );
    expect(s.posting).toMatchObject({
      receivableAccount: "1500",
      revenueAccounts: { hours: "3000", expenses: "3590" },
      defaultVatCode: "3",
      roundingAccount: "7740",
      currency: "NOK",
      vatCodes: { "3": { rate: 25, account: "2700" }, "5": { rate: 0 } },
      costCentre: { source: "fixed", id: "10" },
      series: "F",
      voucherNumber: "invoice_number",
    });
    expect(s.sie4.lineEnding).toBe("lf");
  });

  test("one line per wrong key, naming it", () => {
    expect(problems({ fiscal_year_start: "13-05", currency: "kr", colour: "red" }).sort()).toEqual([
      "exports.currency: must be a 3-letter ISO 4217 code such as SEK or NOK",
      'exports.fiscal_year_start: must be the first day of a month, like "01-01" or "07-01"',
      "exports: unknown key(s) colour",
    ]);
    expect(problems({ posting: { receivable_account: "15x0" } })).toEqual([
      "exports.posting.receivable_account: must be an account number (digits only), e.g. 1510",
    ]);
    expect(problems({ posting: { cost_centre: "fixed" } })).toEqual([
      'exports.posting.cost_centre_id: is required when cost_centre = "fixed" (the cost centre written on every revenue row)',
    ]);
  });

  test("financial years", () => {
    expect(fiscalYearOf("2026-03-10", "01-01")).toEqual({ start: "2026-01-01", end: "2026-12-31" });
    expect(fiscalYearOf("2026-06-30", "07-01")).toEqual({ start: "2025-07-01", end: "2026-06-30" });
    expect(fiscalYearOf("2024-07-01", "07-01")).toEqual({ start: "2024-07-01", end: "2025-06-30" });
    expect(fiscalYearOf("2024-02-29", "03-01")).toEqual({ start: "2023-03-01", end: "2024-02-29" });
  });
});
