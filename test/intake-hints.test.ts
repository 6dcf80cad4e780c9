// What a PSA's developer reads when intake refuses a value it sent: the hint must fit what was wrong. Before, every
// value of the wrong type was told "Add this field; it is required." (the price was there, as a string), a negative
// number "Fill in a value.", a number too large "Shorten it", and a huge amount got two problems, the first saying it
// must be an integer (it was one).
import { describe, expect, test } from "bun:test";
import { parseEvents } from "../agent/intake.ts";
import { customerEvent, invoiceEvent } from "./helpers.ts";

function problemsOf(body: unknown) {
  const r = parseEvents(body);
  if (r.ok) throw new Error("accepted");
  return r.events.flatMap((e) => e.problems);
}

const withLine = (line: Record<string, unknown>) => {
  const e = invoiceEvent(100, 7);
  return { ...e, data: { ...e.data, lines: [{ text: "Work", quantity: 1, unitPrice: 145000, ...line }] } };
};

describe("intake's hints fit the value sent", () => {
  test("a price sent as a string is told to be a number, not to be added", () => {
    const [p, ...more] = problemsOf(withLine({ unitPrice: "145000" }));
    expect(more).toEqual([]);
    expect(p!.field).toBe("data.lines.0.unitPrice");
    expect(p!.hint).toBe("Send a number here, not a string.");
  });

  // "Send a int here, not a number." for a price with decimals, "Send a array here" for an object, "Send a record here"
  // for data sent as an array.
  test.each([
    [0.30000000000000004, "0.30000000000000004"],
    [1998.9999999999998, "1998.9999999999998"],
    [14500.5, "14500.5"],
  ])("a price of %d, not whole, is told to be a whole number and to round", (unitPrice, shown) => {
    const [p, ...more] = problemsOf(withLine({ unitPrice }));
    expect(more).toEqual([]);
    expect(p!.hint).toBe(
      `Send a whole number here, not ${shown}; round a value the PSA computed (in floating point 19.99 × 100 is 1998.9999999999998).`,
    );
  });

  test("an object, an array and data are named with the right word", () => {
    expect(problemsOf(customerEvent(7, { addresses: {} }))[0]!.hint).toBe("Send an array here, not an object.");
    expect(problemsOf(customerEvent(7, { addresses: [5] }))[0]!.hint).toBe("Send an object here, not a number.");
    expect(problemsOf({ ...customerEvent(7), data: [] })[0]!.hint).toBe("Send an object here, not an array.");
  });

  // An optional field sent as null (a serialiser's empty field) was told "Send a string here, not null.", not that the
  // field may be left out.
  test("null for an optional field is told to leave the field out", () => {
    const [p, ...more] = problemsOf(customerEvent(7, { email: null }));
    expect(more).toEqual([]);
    expect(p).toMatchObject({
      field: "data.email",
      hint: "Send a string here, not null; where the field has no value, leave it out (null is not taken for an empty field).",
    });
  });

  test("a null event in a batch is told an event belongs there, not to leave a field out", () => {
    const r = parseEvents([customerEvent(7), null]);
    if (r.ok) throw new Error("accepted");
    expect(r.events[0]).toMatchObject({ index: 1, problems: [{ hint: "Send an object here, not null." }] });
  });

  test("a missing price is told to be added", () => {
    const e = withLine({});
    delete (e.data.lines[0] as Record<string, unknown>).unitPrice;
    expect(problemsOf(e)[0]!.hint).toBe("Add this field; it is required.");
  });

  test("a customer number of 1.5, or true, is told what a number is", () => {
    for (const number of [1.5, true]) {
      const [p, ...more] = problemsOf(customerEvent(7, { number }));
      expect(more).toEqual([]);
      expect(p!.message).toBe('data.number: must be a whole number (10042) or a text ("K-10042")');
    }
  });

  test("a negative customer number is told the lowest value", () => {
    const [p] = problemsOf(customerEvent(-1));
    expect(p!.field).toBe("data.number");
    expect(p!.hint).toBe("Send a value of at least 0.");
  });

  test("an amount beyond every bound gets one problem: the bound", () => {
    const problems = problemsOf(withLine({ unitPrice: 1e20 }));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toBe("data.lines.0.unitPrice: must be at most 10,000,000,000,000 minor units in absolute value");
    expect(problems[0]!.hint).toBe("Send a value of at most 10000000000000.");
  });
});

describe("the event id's problems say what is wrong with it", () => {
  // Every problem of the id said "must be a string", also of a string that was empty, blank or too long.
  test.each([
    ["empty", "", "id: must not be empty: send the PSA's unique id of this event", "Fill in a value."],
    ["blank", "   ", "id: must not be empty: send the PSA's unique id of this event", "Fill in a value."],
    ["201 characters", "e".repeat(201), "id: must be at most 200 characters", "Shorten it to at most 200 characters."],
  ])("%s", (_what, id, message, hint) => {
    const [p, ...more] = problemsOf({ ...customerEvent(7), id });
    expect(more).toEqual([]);
    expect(p).toMatchObject({ field: "id", message, hint });
  });

  test("a number, or none, is told to be a string", () => {
    const { id: _, ...none } = customerEvent(7);
    for (const body of [{ ...customerEvent(7), id: 123 }, none])
      expect(problemsOf(body)[0]!.message).toBe("id: must be a string: the PSA's unique id of this event (a repeat of it is stored once)");
  });
});

describe("a product's VAT rate is in percent", () => {
  const product = (vatRate: number) => ({
    id: `p-${vatRate}`,
    type: "product.upserted",
    data: { code: "KONS", name: "Konsulent", vatRate },
  });

  test("a fraction (0.25 for 25 %) is refused, saying what to send; 0, 6, 11.11 and 25 are taken", () => {
    const [p, ...more] = problemsOf(product(0.25));
    expect(more).toEqual([]);
    expect(p!.field).toBe("data.vatRate");
    expect(p!.message).toContain("0.25 is a fraction, but the VAT rate is in percent: send 25 for 25 %");
    expect(problemsOf(product(0.12))[0]!.message).toContain("send 12 for 12 %");
    for (const rate of [0, 6, 11.11, 25, 25.5]) expect(parseEvents([product(rate)]).ok).toBe(true);
  });
});

describe("a date that is no date is the one problem of its field", () => {
  // 2026-13-01 and 20261120 sort after 2026-12-04 as text: the invoice was also told "dueDate must not be before date",
  // naming a dueDate that was fine; a project's endDate likewise.
  test.each(["2026-13-01", "20261120", "2026-02-30"])("invoice date %s", (date) => {
    const problems = problemsOf(invoiceEvent(100, 7, undefined, { date }));
    expect(problems.map((p) => p.field)).toEqual(["data.date"]);
    expect(problems[0]!.message).toBe("data.date: must be a date like 2026-03-31");
  });

  // They were told "Correct the value in the PSA and send the event again.", which does not say what a date looks like.
  test.each(["2026-02-30", "2026-1-5", "2026-11-20T10:00:00Z"])("invoice date %s is told what a date looks like", (date) => {
    expect(problemsOf(invoiceEvent(100, 7, undefined, { date }))[0]!.hint).toBe(
      "Send the date as YYYY-MM-DD (2026-03-31): no time or zone, month and day with two digits, a day its month has (2026-02-30 is none).",
    );
  });

  test("occurredAt without a zone is told what a time looks like", () => {
    expect(problemsOf({ ...customerEvent(7), occurredAt: "2026-11-20T10:00:00" })[0]!.hint).toBe(
      "Send the time as ISO 8601 with its zone: 2026-03-31T14:05:00Z (UTC) or 2026-03-31T16:05:00+02:00, on a day its month has.",
    );
  });

  test("a project's startDate", () => {
    const project = { id: "p-1", type: "project.upserted", data: { number: 1, name: "P", startDate: "2026-13-01", endDate: "2026-12-31" } };
    expect(problemsOf(project).map((p) => p.field)).toEqual(["data.startDate"]);
  });

  test("dates that are dates are still compared", () => {
    expect(problemsOf(invoiceEvent(100, 7, undefined, { dueDate: "2026-11-19" })).map((p) => p.message)).toEqual([
      "data.dueDate: dueDate must not be before date",
    ]);
    const project = { id: "p-1", type: "project.upserted", data: { number: 1, name: "P", startDate: "2026-12-01", endDate: "2026-11-30" } };
    expect(problemsOf(project).map((p) => p.field)).toEqual(["data.endDate"]);
  });
});
