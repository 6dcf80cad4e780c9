// The e-conomic connector's VAT zone plan (connectors/economic/agreement.ts) is made once per reading of the zones and
// /self, not once per customer pushed (issue 16, goal 3: matching the zones' names cost more than mapping the
// customer); a zone changed in e-conomic is still seen once the lookups are read again (after CACHE_MS, or forget()).
import { expect, test } from "bun:test";
import { AgreementSettings } from "../connectors/economic/agreement.ts";
import { EconomicConfig } from "../connectors/economic/config.ts";

const cfg = EconomicConfig.parse({ app_secret_token: "a", agreement_grant_token: "b" });

test("the plan is made once per reading of the zones; a new reading makes it again", async () => {
  let zones = [
    { vatZoneNumber: 1, name: "Domestic", enabledForCustomer: true },
    { vatZoneNumber: 2, name: "EU", enabledForCustomer: true },
    { vatZoneNumber: 3, name: "Abroad", enabledForCustomer: true },
  ];
  let reads = 0;
  let clock = 0;
  const settings = new AgreementSettings(
    cfg,
    async (url) => {
      reads++;
      return url.includes("/vat-zones") ? { collection: zones } : { agreementType: { name: "denmark" } };
    },
    "http://e",
    () => clock,
  );
  const first = await settings.vatZonePlan();
  expect(await settings.vatZonePlan()).toBe(first);
  expect(await settings.vatZoneFor("SE")).toBe(2);
  expect(reads).toBe(2);

  // Renamed in e-conomic: seen after forget() (a refused zone) or once the lookups are old.
  zones = [
    { vatZoneNumber: 1, name: "Domestic", enabledForCustomer: true },
    { vatZoneNumber: 5, name: "EU", enabledForCustomer: true },
    { vatZoneNumber: 3, name: "Abroad", enabledForCustomer: true },
  ];
  settings.forget();
  expect(await settings.vatZonePlan()).not.toBe(first);
  expect(await settings.vatZoneFor("SE")).toBe(5);
  zones = zones.map((z) => (z.vatZoneNumber === 5 ? { ...z, vatZoneNumber: 6 } : z));
  clock += 11 * 60_000;
  expect(await settings.vatZoneFor("SE")).toBe(6);
  expect(reads).toBe(6);
});
