// The benchmark's adapter for the e-conomic sandbox (scripts/bench.ts): the [[targets]] table, the raw
// customer POST the dispatch figure is compared with, and the sandbox's customer count.
import type { BenchAdapter } from "../../sandbox.ts";
import { demoTarget } from "../index.ts";
import { DEFAULT_AGREEMENT_GRANT_TOKEN, DEFAULT_APP_SECRET_TOKEN } from "./index.ts";

export const bench: BenchAdapter = {
  target: (url) => demoTarget(url),
  rawCustomer: {
    title: "raw POST /customers round trips to the same sandbox",
    request: (url, i) =>
      fetch(`${url}/customers`, {
        method: "POST",
        body: JSON.stringify({
          customerNumber: 900_000_000 + i,
          name: "raw",
          currency: "NOK",
          customerGroup: { customerGroupNumber: 1 },
          vatZone: { vatZoneNumber: 1 },
          paymentTerms: { paymentTermsNumber: 1 },
        }),
        headers: {
          "X-AppSecretToken": DEFAULT_APP_SECRET_TOKEN,
          "X-AgreementGrantToken": DEFAULT_AGREEMENT_GRANT_TOKEN,
          "content-type": "application/json",
        },
      }),
  },
  customers: async (url) => ((await (await fetch(`${url}/__sandbox/stats`)).json()) as any).counts.customers,
};
