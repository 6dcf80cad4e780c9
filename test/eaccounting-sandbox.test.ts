// The eAccounting sandbox follows eAccounting's published behaviour (eaccounting.md), over real HTTP:
// OAuth with rotating refresh tokens, the error envelope and its codes, limits, pagination and filters,
// drafts numbered when sent, the rate limit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DEMO, startEaccountingSandbox } from "../connectors/eaccounting/sandbox/index.ts";

let srv: ReturnType<typeof startEaccountingSandbox>;
beforeAll(() => {
  srv = startEaccountingSandbox();
});
afterAll(() => srv.stop());

const basic = `Basic ${Buffer.from(`${DEMO.clientId}:${DEMO.clientSecret}`).toString("base64")}`;
async function tokenCall(form: Record<string, string>) {
  const res = await fetch(`${srv.url}/connect/token`, {
    method: "POST",
    body: new URLSearchParams(form).toString(),
    headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
  });
  return { status: res.status, body: (await res.json()) as any };
}
async function control(path: string, body: unknown = {}, method = "POST") {
  const res = await fetch(`${srv.url}/__sandbox/${path}`, {
    method,
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  return res.json() as any;
}
async function freshToken(scope?: string): Promise<string> {
  const { refresh_token } = await control("oauth/grant", scope ? { scope } : {});
  return (await tokenCall({ grant_type: "refresh_token", refresh_token })).body.access_token;
}
async function api(token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${srv.url}/v2${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  return { status: res.status, headers: res.headers, body: res.status === 204 ? null : ((await res.json()) as any) };
}
const customer = (over: Record<string, unknown> = {}) => ({
  CustomerNumber: "10042",
  Name: "Fjordkraft Consulting AB",
  InvoiceAddress1: "Storgatan 1",
  InvoicePostalCode: "11122",
  InvoiceCity: "Stockholm",
  InvoiceCountryCode: "SE",
  TermsOfPaymentId: "8f9a5b1e-0000-4000-8000-000000000030",
  IsPrivatePerson: false,
  IsActive: true,
  ...over,
});

describe("identity server", () => {
  test("authorization code flow; refresh tokens rotate and the old one is refused (invalid_grant)", async () => {
    const redirect = "http://127.0.0.1:9/callback";
    const auth = await fetch(
      `${srv.url}/connect/authorize?${new URLSearchParams({ client_id: DEMO.clientId, redirect_uri: redirect, response_type: "code", scope: DEMO.scope, state: "xyz" })}`,
      { redirect: "manual" },
    );
    expect(auth.status).toBe(302);
    const back = new URL(auth.headers.get("location")!);
    expect(back.searchParams.get("state")).toBe("xyz");
    const code = back.searchParams.get("code")!;
    const first = await tokenCall({ grant_type: "authorization_code", code, redirect_uri: redirect });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ expires_in: 3600, token_type: "Bearer", scope: DEMO.scope });
    expect((await tokenCall({ grant_type: "authorization_code", code, redirect_uri: redirect })).body.error).toBe("invalid_grant"); // one use
    const second = await tokenCall({ grant_type: "refresh_token", refresh_token: first.body.refresh_token });
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    expect(await tokenCall({ grant_type: "refresh_token", refresh_token: first.body.refresh_token })).toMatchObject({
      status: 400,
      body: { error: "invalid_grant" },
    });
    expect((await api(second.body.access_token, "GET", "/customers")).status).toBe(200);
    await control("oauth/revoke", {});
    expect((await tokenCall({ grant_type: "refresh_token", refresh_token: second.body.refresh_token })).body.error).toBe("invalid_grant");
    expect((await api(second.body.access_token, "GET", "/customers")).body.ErrorCode).toBe(4005);
    await control("reset");
  });

  test("access tokens last an hour on the sandbox's clock; missing scopes answer 4006", async () => {
    const token = await freshToken();
    await control("clock", { advanceMs: 3_601_000 });
    expect((await api(token, "GET", "/customers")).status).toBe(401);
    await control("clock", { offsetMs: 0 });
    const salesOnly = await freshToken("ea:api offline_access ea:sales");
    const res = await api(salesOnly, "GET", "/supplierinvoices");
    expect(res).toMatchObject({ status: 403, body: { ErrorCode: 4006 } });
    expect(res.body.DeveloperErrorMessage).toContain("ea:purchase");
  });
});

describe("v2 API", () => {
  test("the envelope, required fields, 50-character names, duplicates, VIES format, full-replace PUT", async () => {
    const t = await freshToken();
    const long = await api(t, "POST", "/customers", customer({ Name: "x".repeat(51) }));
    expect(long.status).toBe(400);
    expect(long.body).toMatchObject({
      ErrorCode: 2000,
      DeveloperErrorMessage: "Name: The field Name must be a string with a maximum length of 50.",
    });
    expect(long.body.ErrorId).toMatch(/^[0-9a-f-]{36}$/);
    // .NET counts UTF-16 code units: 49 characters and an emoji are 51 (the notes do not say; lengthUnit is the option).
    const emoji = customer({ Name: `${"x".repeat(49)}😀` });
    expect((await api(t, "POST", "/customers", emoji)).body.DeveloperErrorMessage).toBe(
      "Name: The field Name must be a string with a maximum length of 50.",
    );
    expect((await api(t, "POST", "/customers", customer({ InvoiceCity: undefined }))).body.DeveloperErrorMessage).toBe(
      "InvoiceCity: The InvoiceCity field is required.",
    );
    expect((await api(t, "POST", "/customers", customer({ VatNumber: "SE12" }))).body.ErrorCode).toBe(4025);
    const created = await api(t, "POST", "/customers", customer({ Telephone: "+46 8 123" }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ CustomerNumber: "10042", CurrencyCode: "SEK" });
    expect((await api(t, "POST", "/customers", customer())).body.ErrorCode).toBe(4000);
    const put = await api(t, "PUT", `/customers/${created.body.Id}`, customer({ Name: "Fjordkraft AB" }));
    expect(put.body.Name).toBe("Fjordkraft AB");
    expect(put.body.Telephone).toBeUndefined(); // full replace: left out is gone
    const noNumber = await api(t, "POST", "/customers", customer({ CustomerNumber: undefined, Name: "Numbered by eAccounting" }));
    expect(noNumber.body.CustomerNumber).toBe("1");
    await control("reset");
  });

  test("lengthUnit code_points: an emoji counts as 1, so 49 characters and an emoji fit a 50-character name", async () => {
    const other = startEaccountingSandbox({ lengthUnit: "code_points" });
    try {
      const { refresh_token } = (await (await fetch(`${other.url}/__sandbox/oauth/grant`, { method: "POST", body: "{}" })).json()) as any;
      const token = await fetch(`${other.url}/connect/token`, {
        method: "POST",
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token }).toString(),
        headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
      });
      const res = await fetch(`${other.url}/v2/customers`, {
        method: "POST",
        body: JSON.stringify(customer({ Name: `${"x".repeat(49)}😀` })),
        headers: { authorization: `Bearer ${((await token.json()) as any).access_token}`, "content-type": "application/json" },
      });
      expect(res.status).toBe(201);
    } finally {
      other.stop();
    }
  });

  test("DELETE /customers/{id}: 204, then the customer is gone (404 ResourceNotFound on a read and on a second delete)", async () => {
    const t = await freshToken();
    const created = await api(t, "POST", "/customers", customer());
    expect((await api(t, "DELETE", `/customers/${created.body.Id}`)).status).toBe(204);
    expect(await api(t, "GET", `/customers/${created.body.Id}`)).toMatchObject({ status: 404, body: { ErrorCode: 3000 } });
    expect(await api(t, "DELETE", `/customers/${created.body.Id}`)).toMatchObject({ status: 404, body: { ErrorCode: 3000 } });
    expect((await api(t, "GET", "/customers")).body.Data).toEqual([]);
    const again = await api(t, "POST", "/customers", customer());
    expect(again.status).toBe(201); // the number is free again
    expect(again.body.Id).not.toBe(created.body.Id);
    await control("reset");
  });

  test("pagination and modified-since filters on the server clock", async () => {
    const t = await freshToken();
    for (let i = 1; i <= 5; i++) await api(t, "POST", "/customers", customer({ CustomerNumber: String(i), Name: `C${i}` }));
    const p2 = await api(t, "GET", "/customers?$page=2&$pagesize=2");
    expect(p2.body.Meta).toMatchObject({ CurrentPage: 2, PageSize: 2, TotalNumberOfPages: 3, TotalNumberOfResults: 5 });
    expect(p2.body.Data.map((c: any) => c.Name)).toEqual(["C3", "C4"]);
    const { now } = await control("clock", { advanceMs: 60_000 });
    await control("customers/2", { Name: "C2 changed" }, "PUT");
    const since = await api(
      t,
      "GET",
      `/customers?$filter=${encodeURIComponent(`ChangedUtc gt ${new Date(Date.parse(now) - 1000).toISOString()}`)}`,
    );
    expect(since.body.Data.map((c: any) => c.Name)).toEqual(["C2 changed"]);
    expect(since.body.Meta.ServerTimeUtc).toBe(now);
    expect(
      (await api(t, "GET", `/customers?$filter=${encodeURIComponent("CustomerNumber eq '3'")}`)).body.Data.map((c: any) => c.Name),
    ).toEqual(["C3"]);
    expect((await api(t, "GET", "/customers?$filter=Name%20like%20x")).body.ErrorCode).toBe(6000);
    await control("reset");
  });

  test("cost-centre items: duplicate short name or name is 4000 CostCenterItemAlreadyExists; articles need a coding", async () => {
    const t = await freshToken();
    const center = (await api(t, "GET", "/costcenters")).body.Data.find((c: any) => c.Number === 1);
    const item = await api(t, "POST", "/costcenteritems", {
      CostCenterId: center.Id,
      Name: "ERP migration",
      ShortName: "P24017",
      IsActive: true,
    });
    expect(item.status).toBe(201);
    const dupName = await api(t, "POST", "/costcenteritems", {
      CostCenterId: center.Id,
      Name: "ERP migration",
      ShortName: "P24018",
      IsActive: true,
    });
    expect(dupName.body).toMatchObject({ ErrorCode: 4000 });
    expect(dupName.body.DeveloperErrorMessage).toContain("CostCenterItemAlreadyExists");
    expect(
      (await api(t, "POST", "/costcenteritems", { CostCenterId: center.Id, Name: "x", ShortName: "P240170000", IsActive: true })).body
        .DeveloperErrorMessage,
    ).toContain("maximum length of 9");
    const art = await api(t, "POST", "/articles", {
      Number: "A1",
      Name: "Art",
      IsActive: true,
      UnitId: "0a000000-0000-4000-8000-000000000001",
    });
    expect(art.body.DeveloperErrorMessage).toBe("CodingId: The CodingId field is required.");
    await control("reset");
  });

  test("a draft with an inactivated article is 409; sent, it becomes numbered invoice 1001; paid once", async () => {
    const t = await freshToken();
    const c = (await api(t, "POST", "/customers", customer())).body;
    const row = (articleId: string) => ({
      ArticleId: articleId,
      IsTextRow: false,
      Text: "Hours",
      UnitPrice: 1250,
      Quantity: 2,
      ReversedConstructionServicesVatFree: false,
    });
    const inactive = await api(t, "POST", "/customerinvoicedrafts", {
      CustomerId: c.Id,
      RotReducedInvoicingType: 0,
      EuThirdParty: false,
      Rows: [row("a0a0a0a0-0000-4000-8000-000000000999")],
    });
    expect(inactive).toMatchObject({ status: 409, body: { ErrorCode: 4000 } });
    const draft = await api(t, "POST", "/customerinvoicedrafts", {
      CustomerId: c.Id,
      RotReducedInvoicingType: 0,
      EuThirdParty: false,
      ElectronicReference: "kontobro:X1",
      Rows: [row("a0a0a0a0-0000-4000-8000-000000000100"), { IsTextRow: true, Text: "Note", ReversedConstructionServicesVatFree: false }],
    });
    expect(draft.body).toMatchObject({ TotalAmount: 3125, TotalVatAmount: 625, InvoiceCity: "Stockholm" });
    const sent = await control("send-draft", { draftId: draft.body.Id });
    expect(sent).toMatchObject({
      InvoiceNumber: 1001,
      CreatedFromDraftId: draft.body.Id,
      PaymentStatus: 1,
      RemainingAmount: 3125,
      ElectronicReference: "kontobro:X1",
    });
    expect((await api(t, "GET", `/customerinvoicedrafts/${draft.body.Id}`)).status).toBe(404);
    expect(await control("payments", { invoiceNumber: 1001 })).toMatchObject({ PaymentStatus: 0, RemainingAmount: 0 });
    await control("reset");
  });

  test("600 requests a minute per client and endpoint: 429 with ErrorCode 4010 and the wait in the message", async () => {
    const t = await freshToken();
    await control("settings", { rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await api(t, "GET", "/customers")).status).toBe(200);
    const over = await api(t, "GET", "/customers");
    expect(over.status).toBe(429);
    expect(over.body.ErrorCode).toBe(4010);
    expect(over.body.DeveloperErrorMessage).toMatch(/Try again in \d+ seconds\./);
    expect(over.headers.get("retry-after")).toBeNull();
    expect((await api(t, "GET", "/articles")).status).toBe(200); // another endpoint
    await control("clock", { advanceMs: 61_000 });
    expect((await api(t, "GET", "/customers")).status).toBe(200);
    await control("reset");
  });
});
