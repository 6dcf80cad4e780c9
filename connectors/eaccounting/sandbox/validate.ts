// eAccounting's error envelope and model validation (eaccounting.md §4, §11; the field digest's required
// flags and max lengths, and the notes' 50-character names). Every refusal is an EaError: HTTP status,
// ErrorCode and a DeveloperErrorMessage in eAccounting's own style ("Name: The field Name must be …").

export type Row = Record<string, any>;

/** The ErrorCodes of the published catalogue the sandbox answers with (eaccounting.md §11). */
export const ERROR_NAMES: Record<number, string> = {
  2000: "DataModelValidationError",
  3000: "ResourceNotFound",
  4000: "Conflict",
  4003: "StartupGuideNotCompleted",
  4004: "CompanyNotActive",
  4005: "NotAuthorized",
  4006: "NoAccessToScopes",
  4009: "NoAccessDueToProductVariant",
  4010: "TooManyRequests",
  4011: "NoAccessForAuthenticatedUser",
  4012: "LicenceAgreementNotAccepted",
  4013: "CannotBookkeepInvoice",
  4019: "NoPermissionForReadonlyUser",
  4024: "SalesAccountNumberMissing",
  4025: "InvalidVatNumber",
  4034: "NotAllowedWithSandboxClient",
  5000: "InternalServerError",
  5001: "DependencyTimeout",
  5006: "InactiveCostCenter",
  6000: "QueryParameterError",
  6001: "InvalidInput",
};

export class EaError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The 3-field envelope of every 4xx (schema CommonExtendedBadRequest). */
export const envelope = (code: number, message: string) => ({
  ErrorCode: code,
  DeveloperErrorMessage: message,
  ErrorId: crypto.randomUUID(),
});

export const invalid = (message: string) => new EaError(400, 2000, message);
export const notFound = (what: string) => new EaError(404, 3000, `${what} not found.`);
export const conflict = (message: string, status = 400) => new EaError(status, 4000, message);

interface Spec {
  required?: string[];
  max?: Record<string, number>;
  /** Fields with at most this many decimals. */
  decimals?: Record<string, number>;
}

/**
 * Required fields and max lengths. The digest gives most lengths; Name 50 on customers, articles and cost-centre
 * items, InvoiceCity 50 and InvoicePostalCode 10 on customers come from the notes (§3, §5, §7, §13).
 */
export const SPECS: Record<string, Spec> = {
  customer: {
    required: ["Name", "InvoiceCity", "InvoicePostalCode", "TermsOfPaymentId", "IsPrivatePerson", "IsActive"],
    max: {
      Name: 50,
      CustomerNumber: 16,
      CorporateIdentityNumber: 20,
      ContactPersonEmail: 255,
      ContactPersonMobile: 50,
      ContactPersonName: 100,
      ContactPersonPhone: 50,
      CurrencyCode: 3,
      EmailAddress: 255,
      EmailAddressOrder: 255,
      EmailAddressQuote: 255,
      InvoiceAddress1: 50,
      InvoiceAddress2: 50,
      InvoiceCity: 50,
      InvoiceCountryCode: 2,
      InvoicePostalCode: 10,
      DeliveryCustomerName: 100,
      DeliveryAddress1: 50,
      DeliveryAddress2: 50,
      DeliveryCity: 50,
      DeliveryCountryCode: 2,
      DeliveryPostalCode: 10,
      Note: 4000,
      MobilePhone: 50,
      Telephone: 50,
      VatNumber: 20,
      WwwAddress: 255,
      GLN: 255,
      ElectronicAddress: 255,
      ElectronicReference: 35,
      EdiGlnNumber: 255,
      SalesDocumentLanguage: 2,
    },
  },
  article: {
    required: ["IsActive", "Number", "Name", "CodingId", "UnitId"],
    max: { Number: 40, Name: 50, NameEnglish: 50 },
    decimals: { NetPrice: 2, GrossPrice: 2 },
  },
  costCenterItem: { required: ["CostCenterId", "Name", "ShortName", "IsActive"], max: { Name: 50, ShortName: 9 } },
  project: { required: ["Number", "Name", "StartDate"], max: { Number: 9, Name: 200, Notes: 500 } },
  draft: {
    required: ["CustomerId", "RotReducedInvoicingType", "EuThirdParty"],
    max: {
      YourReference: 100,
      OurReference: 100,
      BuyersOrderReference: 35,
      ElectronicReference: 100,
      InvoiceCustomerName: 50,
      InvoiceAddress1: 50,
      InvoiceAddress2: 50,
      InvoicePostalCode: 10,
      InvoiceCity: 50,
      InvoiceCountryCode: 2,
      DeliveryCustomerName: 50,
      DeliveryAddress1: 50,
      DeliveryAddress2: 50,
      DeliveryPostalCode: 10,
      DeliveryCity: 50,
      DeliveryCountryCode: 2,
      CustomerNumber: 16,
    },
  },
  draftRow: {
    required: ["IsTextRow", "ReversedConstructionServicesVatFree"],
    max: { Text: 2000 },
    decimals: { Quantity: 2, DiscountPercentage: 4 },
  },
};

const missing = (v: unknown) => v === undefined || v === null || (typeof v === "string" && v.trim() === "");

/**
 * How a field's length is counted against its maximum. eAccounting is a .NET service, whose string length counts UTF-16
 * code units (an emoji is 2); the notes do not say, so counting code points (an emoji is 1) is the other option.
 */
export type LengthUnit = "utf16" | "code_points";
const lengthIn = (unit: LengthUnit, s: string) => (unit === "utf16" ? s.length : [...s].length);

/** Throws 2000 for the first problem, named by field (with `at` before it for nested rows). */
export function validate(kind: keyof typeof SPECS, body: Row, unit: LengthUnit, at = ""): void {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw invalid(`${at || "The request"}: The request body must be a JSON object.`);
  const spec = SPECS[kind]!;
  for (const f of spec.required ?? []) if (missing(body[f])) throw invalid(`${at}${f}: The ${f} field is required.`);
  for (const [f, n] of Object.entries(spec.max ?? {})) {
    const v = body[f];
    if (typeof v === "string" && lengthIn(unit, v) > n)
      throw invalid(`${at}${f}: The field ${f} must be a string with a maximum length of ${n}.`);
  }
  for (const [f, n] of Object.entries(spec.decimals ?? {})) {
    const v = body[f];
    if (typeof v === "number" && Math.abs(Math.round(v * 10 ** n) - v * 10 ** n) > 1e-6)
      throw invalid(`${at}${f}: The field ${f} allows at most ${n} decimals.`);
  }
}

/** "2 character country code followed by 8-12 numbers" (digest); VIES itself is not reachable from a sandbox. */
export function checkVatNumber(v: unknown): void {
  if (missing(v)) return;
  if (!/^[A-Z]{2}[0-9]{8,12}$/.test(String(v)))
    throw new EaError(
      400,
      4025,
      `VatNumber: ${v} is not a valid VAT number (2 character country code followed by 8-12 numbers, checked against VIES).`,
    );
}

/** A date-time or date string as eAccounting sends it ("2024-04-30T00:00:00"), or undefined. */
export const dayOf = (v: unknown): string | undefined =>
  typeof v === "string" && /^\d{4}-\d{2}-\d{2}/.test(v) ? v.slice(0, 10) : undefined;

export const round2 = (x: number) => Math.round(x * 100) / 100;
