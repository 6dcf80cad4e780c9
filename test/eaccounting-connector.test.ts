// The eAccounting connector against its sandbox over loopback: pushes, the known errors (item 8) as rules and
// hints, uncertain creates reconciled by lookup (no idempotency key), the rate limit, check.
import { afterEach, describe, expect, test } from "bun:test";
import { ctx, customer, invoice, product, project, related, startEnv, thrown, type Env } from "./eaccounting-fixtures.ts";

let env: Env | undefined;
afterEach(async () => {
  await env?.stop();
  env = undefined;
});

describe("customers, articles and projects", () => {
  test("a customer is created once, then updated by a full-replace PUT that keeps what kontobro does not own", async () => {
    env = startEnv();
    const first = await env.connector.push("customer", customer(), ctx());
    expect(first.state).toMatchObject({ entity: "customer", key: "10042", remoteId: first.remoteId });
    await env.control("customers/10042", { Note: "typed in eAccounting" }, "PUT");
    const second = await env.connector.push("customer", customer({ name: "Fjordkraft AB" }), ctx({ link: { remoteId: first.remoteId } }));
    expect(second.remoteId).toBe(first.remoteId);
    const [c] = (await env.state()).customers;
    expect(c).toMatchObject({
      Name: "Fjordkraft AB",
      Note: "typed in eAccounting",
      ContactPersonName: "Kari Nordmann",
      InvoiceCountryCode: "SE",
      IsPrivatePerson: false,
    });
    expect((await env.state()).customers).toHaveLength(1);
  });

  test("an article gets the services coding at its VAT rate and a note to check it; an existing one keeps its coding", async () => {
    env = startEnv();
    const res = await env.connector.push("product", product(), ctx());
    expect(res.attention).toContain('coding "Tjänster 25 %"');
    expect(res.attention).toContain("check the coding");
    let a = (await env.state()).articles.find((x: any) => x.Number === "KONS");
    expect(a).toMatchObject({ NetPrice: 1450, GrossPrice: 1812.5, UnitAbbreviation: "h", CodingName: "Tjänster 25 %" });
    const again = await env.connector.push("product", product({ price: 150000 }), ctx({ link: { remoteId: res.remoteId } }));
    expect(again.attention).toBeUndefined();
    a = (await env.state()).articles.find((x: any) => x.Number === "KONS");
    expect(a).toMatchObject({ NetPrice: 1500, GrossPrice: 1875, CodingName: "Tjänster 25 %" });
    const km = await env.connector.push("product", product({ code: "KM", name: "Milersättning", unit: "km", price: 250 }), ctx());
    expect((await env.state()).articles.find((x: any) => x.Id === km.remoteId).UnitAbbreviation).toBe("km");
  });

  test("projects become items of the configured cost centre; a closed project an inactive item; a name taken by another item needs action", async () => {
    env = startEnv();
    const r = await env.connector.push("project", project(), ctx());
    await env.connector.push("project", project({ status: "closed" }), ctx({ link: { remoteId: r.remoteId } }));
    const items = (await env.state()).costCenters.find((c: any) => c.Number === 1).Items;
    expect(items).toEqual([expect.objectContaining({ Id: r.remoteId, ShortName: "P24017", Name: "ERP migration", IsActive: false })]);
    const e = await thrown(env.connector.push("project", project({ number: "P24018" }), ctx()));
    expect(e).toMatchObject({ kind: "permanent", code: "eaccounting.CostCenterItemAlreadyExists", field: "name" });
    expect(e.message).toContain("Project P24018 (ERP migration)");
    expect(e.hint).toContain("must match the item's exactly");
  });
});

describe("projects without a lookup first", () => {
  test("a new project is one request; an item that exists already (made by hand) is found after the refusal and taken, not doubled", async () => {
    env = startEnv();
    await env.connector.push("project", project({ number: "P1", name: "Warm-up" }), ctx()); // the cost centre is read once
    const before = (await env.state()).requests.length;
    const fresh = await env.connector.push("project", project(), ctx());
    expect((await env.state()).requests.slice(before).map((r: any) => `${r.method} ${r.path}`)).toEqual(["POST /v2/costcenteritems"]);
    // The same number and name made in eAccounting by hand: eAccounting refuses a second (4000 Conflict), kontobro takes it.
    const made = await env.control("costcenteritems", { ShortName: "P24018", Name: "Data warehouse" });
    const taken = await env.connector.push("project", project({ number: "P24018", name: "Data warehouse" }), ctx());
    expect(taken.remoteId).toBe(made.Id);
    const items = (await env.state()).costCenters.find((c: any) => c.Number === 1).Items;
    expect(items.map((i: any) => i.ShortName).sort()).toEqual(["P1", "P24017", "P24018"]);
    expect(items.find((i: any) => i.ShortName === "P24017").Id).toBe(fresh.remoteId);
  });
});

describe("the known errors (item 8)", () => {
  test("eAccounting's own refusals name the record and the PSA's field, with a hint", async () => {
    env = startEnv({ config: { payment_terms_days: 45 } });
    const terms = await thrown(env.connector.push("customer", customer({ paymentTermsDays: undefined }), ctx()));
    expect(terms).toMatchObject({ code: "eaccounting.terms_unknown" });
    expect(terms.message).toContain("30 dagar (30 days)");
    const vat = await thrown(env.connector.push("customer", customer({ vatNumber: "SE12" }), ctx()));
    expect(vat).toMatchObject({ kind: "permanent", code: "eaccounting.InvalidVatNumber", field: "vatNumber" });
    expect(vat.message).toStartWith(
      "Customer 10042 (Fjordkraft Consulting AB): eAccounting refused POST /v2/customers (4025 InvalidVatNumber)",
    );
    expect(vat.hint).toContain("VIES");
  });

  test("an article without VAT coding is never sent (CodingId): no coding at its rate needs action, listing the codings", async () => {
    env = startEnv();
    const e = await thrown(env.connector.push("product", product({ code: "X17", vatRate: 17 }), ctx()));
    expect(e).toMatchObject({ kind: "permanent", code: "eaccounting.coding_unknown", field: "vatRate" });
    expect(e.message).toContain("Product X17 (Konsulttimmar senior)");
    expect(e.hint).toContain("Tjänster 25 % (25%)");
    expect((await env.state()).requests.filter((r: any) => r.method === "POST" && r.path === "/v2/articles")).toHaveLength(0);
    const named = env.connectorWith({ article_coding: "Tjänster 12 %" });
    await named.push("product", product({ code: "X12", vatRate: 12 }), ctx());
    expect((await env.state()).articles.find((a: any) => a.Number === "X12").CodingName).toBe("Tjänster 12 %");
  });

  test("no coding at the rate: once a person makes one in eAccounting (the hint's fix), retry creates the article at once", async () => {
    env = startEnv();
    const six = env.sandbox.store().codings.find((c) => c.Name === "Tjänster 6 %")!;
    six.IsActive = false; // eAccounting has no services coding at 6 % in use
    const e = await thrown(env.connector.push("product", product({ code: "BOK", name: "Böcker", vatRate: 6 }), ctx()));
    expect(e).toMatchObject({ kind: "permanent", code: "eaccounting.coding_unknown" });
    expect(e.hint).toContain("Then press retry");
    six.IsActive = true; // the hint's fix: a services coding at 6 % in eAccounting
    const res = await env.connector.push("product", product({ code: "BOK", name: "Böcker", vatRate: 6 }), ctx());
    expect((await env.state()).articles.find((a: any) => a.Id === res.remoteId).CodingName).toBe("Tjänster 6 %");
  });

  test("a product whose VAT rate is not its article's coding's needs action: the article would book every line with the coding's VAT", async () => {
    env = startEnv();
    const res = await env.connector.push("product", product(), ctx());
    // The PSA changes the product to 12 %: the article keeps its 25 % coding, so its invoice lines would book 25 %.
    const e = await thrown(
      env.connector.push("product", product({ price: 150000, vatRate: 12 }), ctx({ link: { remoteId: res.remoteId } })),
    );
    expect(e).toMatchObject({ kind: "permanent", code: "eaccounting.coding_rate_differs", field: "vatRate" });
    expect(e.message).toContain(
      'has 12 % VAT in the PSA, but its article in eAccounting has the account coding "Tjänster 25 %" at 25 % VAT',
    );
    expect(e.hint).toContain("Tjänster 12 %");
    expect((await env.state()).articles.find((x: any) => x.Number === "KONS")).toMatchObject({
      NetPrice: 1450,
      CodingName: "Tjänster 25 %",
    });
    // A person gives the article a coding made since kontobro read the codings (kept 10 minutes), at 12 %: the PSA's
    // 25 % product is not sent either (the coding is looked up again, not taken as unknown and let through).
    const store = env.sandbox.store();
    store.codings.push({
      ...store.codings.find((c) => c.Name === "Tjänster 12 %")!,
      Id: "c0d00000-0000-4000-8000-000000000112",
      Name: "Konsult 12 %",
    });
    await env.control("articles/KONS", { CodingId: "c0d00000-0000-4000-8000-000000000112" }, "PUT");
    const fresh = await thrown(env.connector.push("product", product({ price: 150000 }), ctx({ link: { remoteId: res.remoteId } })));
    expect(fresh).toMatchObject({ kind: "permanent", code: "eaccounting.coding_rate_differs" });
    expect(fresh.message).toContain('the account coding "Konsult 12 %" at 12 % VAT');
    // A configured article_coding at another rate than the product's is not used for it either.
    const named = env.connectorWith({ article_coding: "Tjänster 12 %" });
    const n = await thrown(named.push("product", product({ code: "X17", vatRate: 17 }), ctx()));
    expect(n).toMatchObject({ kind: "permanent", code: "eaccounting.coding_rate_differs", field: "vatRate" });
    expect(n.message).toContain('article_coding in kontobro.toml is "Tjänster 12 %" at 12 % VAT');
    expect((await env.state()).articles.find((a: any) => a.Number === "X17")).toBeUndefined();
  });

  test("an inactivated article on an invoice line: 409, reactivate it in eAccounting", async () => {
    env = startEnv();
    await env.connector.push("customer", customer(), ctx());
    await env.connector.push("project", project(), ctx());
    const e = await thrown(
      env.connector.push(
        "invoice",
        invoice({ lines: [{ text: "Old", quantity: 1, unitPrice: 100, productCode: "999" }] }),
        ctx({ record: related({ customer: customer() }) }),
      ),
    );
    expect(e).toMatchObject({ kind: "permanent", code: "eaccounting.article_inactive", status: 409 });
    expect(e.message).toContain("Invoice 20001");
    expect(e.hint).toContain("Reactivate");
  });

  test("an article whose coding lacks a sales account (4024) and onboarding errors get their hints", async () => {
    env = startEnv();
    await env.connector.push("customer", customer(), ctx());
    const e = await thrown(
      env.connector.push(
        "invoice",
        invoice({ projectNumber: undefined, lines: [{ text: "x", quantity: 1, unitPrice: 100, productCode: "998" }] }),
        ctx(),
      ),
    );
    expect(e).toMatchObject({ code: "eaccounting.SalesAccountNumberMissing" });
    expect(e.hint).toContain("coding with a sales account");
    for (const [code, words] of [
      [4003, "start-up guide"],
      [4012, "licence agreement"],
      [4019, "read-only"],
    ] as const) {
      await env.control("settings", { onboarding: code === 4019 ? null : code, readonly: code === 4019 });
      const err = await thrown(env.connector.push("customer", customer({ name: `C ${code}` }), ctx({ link: null, uncertain: true })));
      expect(err.hint).toContain(words);
    }
    await env.control("settings", { onboarding: 4003, readonly: false });
    const check = await env.connector.check();
    expect(check.find((c) => c.name === "company")).toMatchObject({ ok: false });
    expect(check.find((c) => c.name === "company")!.hint).toContain("start-up guide");
  });
});

describe("no idempotency key: uncertain creates are looked up first", () => {
  test("a dropped answer on a customer or draft create: the retry finds it by number or reference, nothing twice", async () => {
    env = startEnv();
    await env.faults({
      rules: [
        { method: "POST", path: "/v2/customers$", fault: "drop_after_commit" },
        { method: "POST", path: "/v2/customerinvoicedrafts$", fault: "drop_after_commit" },
      ],
    });
    const lost = await thrown(env.connector.push("customer", customer(), ctx()));
    expect(lost.kind).toBe("uncertain");
    const c = await env.connector.push("customer", customer(), ctx({ uncertain: true }));
    await env.connector.push("project", project(), ctx());
    const rel = related({ customer: customer() });
    expect((await thrown(env.connector.push("invoice", invoice(), ctx({ record: rel })))).kind).toBe("uncertain");
    const d = await env.connector.push("invoice", invoice(), ctx({ uncertain: true, record: rel }));
    const s = await env.state();
    expect(s.customers.map((x: any) => x.Id)).toEqual([c.remoteId]);
    expect(s.drafts).toHaveLength(1);
    expect(d.remoteId).toBe(`draft:${s.drafts[0].Id}`);
    expect(s.drafts[0]).toMatchObject({
      ElectronicReference: "kontobro:psa-inv-20001",
      OurReference: "Kari Nordmann",
      YourReference: "Ole Olsen",
      InvoiceCity: "Stockholm",
    });
    expect(s.drafts[0].Rows.map((r: any) => [r.IsTextRow, r.ArticleNumber ?? null, r.CostCenterItemId1 ? "item" : null])).toEqual([
      [true, null, null],
      [false, "100", "item"],
      [false, "100", "item"],
    ]);
    // Found by the reference filter (or, where the server refuses the filter, by reading the list whole).
    const clientSide = env.connectorWith({ filter: "client" });
    expect(await clientSide.find("invoice", invoice())).toEqual({ remoteId: d.remoteId });
  });

  test("a draft already sent in eAccounting is not changed again; its update is a note", async () => {
    env = startEnv();
    await env.connector.push("customer", customer(), ctx());
    await env.connector.push("project", project(), ctx());
    const d = await env.connector.push("invoice", invoice(), ctx());
    await env.control("send-draft", { draftId: d.remoteId.slice(6) });
    const again = await env.connector.push("invoice", invoice({ heading: "changed" }), ctx({ link: { remoteId: d.remoteId } }));
    expect(again.note).toContain("as invoice 1001");
    expect((await env.state()).drafts).toHaveLength(0);
  });
});

describe("rate limit", () => {
  test("a 429's wait is read from 'Try again in N seconds' and pauses the whole target", async () => {
    env = startEnv();
    await env.faults({ method: "GET", path: "/v2/customers", fault: "429", retryAfterSeconds: 7 });
    const e = await thrown(env.connector.find("customer", customer()));
    expect(e).toMatchObject({ kind: "retryable", status: 429, retryAfterMs: 7000 });
    expect(env.connector.client.gate.remainingMs()).toBeGreaterThan(5000);
    // What the dispatcher's round reads to store the pause for every worker (test/connector-pause.test.ts).
    expect(env.connector.pausedForMs()).toBe(env.connector.client.gate.remainingMs());
    const held = await thrown(env.connector.find("customer", customer()));
    expect(held.code).toBe("target_paused");
  });
});
