// Small building blocks of the pre-flight rules (rules.ts, invoice-rules.ts).
import { problem, type Problem } from "../../agent/problem.ts";

const MAX_NUMBER = 999_999_999;

export function numeric(value: string | undefined, field: string, what: string, min: number): Problem[] {
  if (value === undefined) return [];
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > MAX_NUMBER) {
    return [
      problem(
        `economic.${field.replace(/\W/g, "_")}_not_numeric`,
        `${what} "${value}" is not a number e-conomic accepts (whole number ${min}–${MAX_NUMBER}).`,
        `e-conomic keeps the PSA's ${what.toLowerCase()}s only when they are numeric. Renumber it in the PSA with digits only, then send it again.`,
        field,
      ),
    ];
  }
  return [];
}

export function maxLength(value: string | undefined, max: number, field: string, what: string): Problem[] {
  if (value === undefined || value.length <= max) return [];
  return [
    problem(
      "economic.too_long",
      `${what} is ${value.length} characters; e-conomic allows ${max}.`,
      `Shorten ${what.toLowerCase()} in the PSA to at most ${max} characters.`,
      field,
    ),
  ];
}
