// The Uni Micro invoice marker carries the PSA id whatever characters it has (issue 10 review: an id with
// a space was read back cut off, so kontobro took its own invoice for someone else's).
import { expect, test } from "bun:test";
import { invoiceMarker, markerPsaId } from "../connectors/unimicro/map.ts";

test("a PSA id with spaces, slashes or percent signs survives the marker, also with text around it", () => {
  for (const id of ["INV 2026-1", "A/B:7", "100% sure", "plain-42", "æøå 1"]) {
    expect(markerPsaId(invoiceMarker(id))).toBe(id);
    expect(markerPsaId(`Checked by Kari\n${invoiceMarker(id)} (do not edit)`)).toBe(id);
  }
  expect(invoiceMarker("plain-42")).toBe("kontobro:plain-42"); // unchanged for ids written before
  expect(markerPsaId("kontobro:50%off")).toBe("50%off"); // an older unencoded marker with a stray %
  expect(markerPsaId("no marker here")).toBeNull();
});
