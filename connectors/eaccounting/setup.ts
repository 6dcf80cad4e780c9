// eAccounting's set-up lists (terms of payment, units, article account codings, cost centres with their items),
// read when needed and kept a few minutes; and the lookups by number that turn the PSA's numbers into
// eAccounting's ids (customers, articles), cached for the life of the connector. What kontobro.toml or the PSA
// names that eAccounting lacks is refused before anything is sent, listing what exists.
import type { Product } from "../../agent/model.ts";
import { TargetError } from "../http.ts";
import { EaccountingClient, type Row } from "./client.ts";
import type { EaccountingConfig } from "./config.ts";
import { unitKindOf } from "./map.ts";

const TTL_MS = 10 * 60_000;
const same = (a: unknown, b: unknown) =>
  String(a ?? "")
    .trim()
    .toLowerCase() ===
  String(b ?? "")
    .trim()
    .toLowerCase();
/** A coding's VAT rate in percent (eAccounting gives a fraction: 0.25), or undefined when it has none. */
const codingRate = (c: Row): number | undefined =>
  c.VatRatePercent === undefined || c.VatRatePercent === null ? undefined : Math.round(Number(c.VatRatePercent) * 10000) / 100;
const list = (rows: Row[], show: (r: Row) => string) =>
  rows.slice(0, 30).map(show).join(", ") + (rows.length > 30 ? `, … (${rows.length} in all)` : "");

export class SetupLists {
  private readonly cache = new Map<string, { at: number; rows: Row[] }>();
  private readonly ids = new Map<string, string>();

  constructor(
    private readonly client: EaccountingClient,
    private readonly cfg: EaccountingConfig,
    private readonly now: () => number = Date.now,
  ) {}

  forget(): void {
    this.cache.clear();
    this.forgetIds();
  }

  /** The ids kept by number: one may name a customer or article deleted in eAccounting since (404); each is looked up again. */
  forgetIds(): void {
    this.ids.clear();
  }

  forgetList(resource: "termsofpayments" | "units" | "articleaccountcodings" | "costcenters"): void {
    this.cache.delete(resource);
  }

  /** A list already read (no network), or null. */
  cached(resource: "termsofpayments" | "units" | "articleaccountcodings" | "costcenters"): Row[] | null {
    return this.cache.get(resource)?.rows ?? null;
  }

  async rows(resource: "termsofpayments" | "units" | "articleaccountcodings" | "costcenters", fresh = false): Promise<Row[]> {
    const hit = this.cache.get(resource);
    if (hit && !fresh && this.now() - hit.at < TTL_MS) return hit.rows;
    const rows = await this.client.all(resource);
    this.cache.set(resource, { at: this.now(), rows });
    return rows;
  }

  /** Terms of payment of type Normal for sales with this many days. */
  async terms(days: number): Promise<Row> {
    const pick = (rows: Row[]) =>
      rows.find((t) => Number(t.NumberOfDays) === days && Number(t.TermsOfPaymentTypeId ?? 0) === 0 && t.AvailableForSales !== false);
    const found = pick(await this.rows("termsofpayments")) ?? pick(await this.rows("termsofpayments", true));
    if (found) return found;
    const sales = (await this.rows("termsofpayments")).filter((t) => t.AvailableForSales !== false);
    throw new TargetError("permanent", {
      code: "eaccounting.terms_unknown",
      field: "paymentTermsDays",
      message: `eAccounting has no terms of payment of ${days} days (type Normal), so nothing was sent. It has: ${list(sales, (t) => `${t.Name} (${t.NumberOfDays} days)`)}.`,
      hint: `Create terms of payment of ${days} days in eAccounting (Settings › Terms of payment), or use one of those in the PSA (or payment_terms_days in kontobro.toml); then press retry.`,
    });
  }

  async daysOf(termsId: string): Promise<number | undefined> {
    return (await this.rows("termsofpayments")).find((t) => t.Id === termsId)?.NumberOfDays;
  }

  /** The unit for a PSA product (or line): hours, kilometres, pieces, or one the PSA names that eAccounting has. */
  async unitFor(unit: string | undefined): Promise<Row> {
    const units = await this.rows("units");
    const byName = (name: string) => units.find((u) => same(u.Code, name) || same(u.Abbreviation, name) || same(u.Name, name));
    const kind = unitKindOf(unit);
    const wanted = kind ? this.cfg.units[kind] : unit && byName(unit) ? unit : this.cfg.units.pieces;
    const found = byName(wanted);
    if (found) return found;
    throw new TargetError("permanent", {
      code: "eaccounting.unit_unknown",
      field: "unit",
      message: `eAccounting has no unit "${wanted}" (${kind ? `units.${kind}` : "units.pieces"} in kontobro.toml). Its units are: ${list(units, (u) => `${u.Code ?? u.Abbreviation} (${u.Name})`)}.`,
      hint: "Set [targets.units] in kontobro.toml to eAccounting's unit codes (`kontobro check` lists them); then press retry.",
    });
  }

  async unitCode(unitId: string): Promise<string | undefined> {
    const u = (await this.rows("units")).find((x) => x.Id === unitId);
    return u ? String(u.Code ?? u.Abbreviation ?? u.Name) : undefined;
  }

  /**
   * The coding of a new article: article_coding, else the services coding at the product's VAT rate. Not among the
   * codings as last read, they are read again: the refusal's fix is a coding made (or made active) in eAccounting.
   */
  async codingFor(p: Pick<Product, "vatRate" | "code" | "name">): Promise<Row> {
    const rate = p.vatRate ?? this.cfg.vat_rate;
    const pick = (rows: Row[]) => {
      const codings = rows.filter((c) => c.IsActive !== false);
      return this.cfg.article_coding
        ? codings.find(
            (c) =>
              c.Id === this.cfg.article_coding || same(c.Name, this.cfg.article_coding) || same(c.NameEnglish, this.cfg.article_coding),
          )
        : codings.find(
            (c) =>
              /service|tjänst|tjenest/i.test(`${c.Type} ${c.Name} ${c.NameEnglish}`) &&
              Math.abs(Number(c.VatRatePercent) * 100 - rate) < 0.001,
          );
    };
    const found = pick(await this.rows("articleaccountcodings")) ?? pick(await this.rows("articleaccountcodings", true));
    if (found) return found;
    const codings = (await this.rows("articleaccountcodings")).filter((c) => c.IsActive !== false);
    throw new TargetError("permanent", {
      code: "eaccounting.coding_unknown",
      field: "vatRate",
      message: this.cfg.article_coding
        ? `eAccounting has no article account coding "${this.cfg.article_coding}" (article_coding in kontobro.toml), so article ${p.code} was not created.`
        : `eAccounting has no services coding at ${rate} % VAT for article ${p.code} (${p.name}); an article without coding is refused (CodingId), so nothing was sent.`,
      hint: `Create a services coding at ${rate} % in eAccounting, or set article_coding in kontobro.toml to one of eAccounting's codings at ${rate} % (its codings: ${list(codings, (c) => `${c.Name} (${c.VatRate ?? `${Number(c.VatRatePercent) * 100} %`})`)}); or correct the product's VAT rate in the PSA. Then press retry.`,
    });
  }

  async vatRateOf(codingId: string): Promise<number | undefined> {
    const c = (await this.rows("articleaccountcodings")).find((x) => x.Id === codingId);
    return c ? codingRate(c) : undefined;
  }

  /**
   * A coding by id; one not among the codings as last read is looked for in them read again (a person may have made it
   * and put it on an article since), so an article's coding is never taken as unknown only because the list is old
   * (a product push compares its rate: requireCodingRate).
   */
  async coding(codingId: string): Promise<Row | undefined> {
    const byId = (rows: Row[]) => rows.find((x) => x.Id === codingId);
    return byId(await this.rows("articleaccountcodings")) ?? byId(await this.rows("articleaccountcodings", true));
  }

  /**
   * An article's coding decides the VAT of every invoice line on it (a line has no VAT of its own): a coding at another
   * rate than the PSA's product states would book those lines with another VAT. Such a product needs action; one
   * without a rate takes the coding's. `existing`: the article is in eAccounting already (and keeps its coding).
   */
  async requireCodingRate(p: Pick<Product, "vatRate" | "code" | "name">, coding: Row, existing: boolean): Promise<void> {
    const rate = codingRate(coding);
    if (p.vatRate === undefined || rate === undefined || Math.abs(rate - p.vatRate) < 0.001) return;
    const codings = (await this.rows("articleaccountcodings")).filter((c) => c.IsActive !== false);
    const atRate = codings.filter((c) => codingRate(c) !== undefined && Math.abs(codingRate(c)! - p.vatRate!) < 0.001);
    throw new TargetError("permanent", {
      code: "eaccounting.coding_rate_differs",
      field: "vatRate",
      message: existing
        ? `Product ${p.code} (${p.name}) has ${p.vatRate} % VAT in the PSA, but its article in eAccounting has the account coding "${coding.Name}" at ${rate} % VAT, and eAccounting books every invoice line on the article with its coding's VAT. Nothing was changed.`
        : `Product ${p.code} (${p.name}) has ${p.vatRate} % VAT in the PSA, but article_coding in kontobro.toml is "${coding.Name}" at ${rate} % VAT, and eAccounting would book every invoice line on the article with it. Nothing was sent.`,
      hint: existing
        ? `Give article ${p.code} a coding at ${p.vatRate} % in eAccounting (Sales › Articles › the article › Account coding${atRate.length ? `: ${list(atRate, (c) => String(c.Name))}` : ""}), or correct the product's VAT rate in the PSA; then press retry.`
        : `Remove article_coding from kontobro.toml (new articles then get the services coding at their own rate${atRate.length ? `: ${list(atRate, (c) => String(c.Name))}` : ""}) and restart, or correct the product's VAT rate in the PSA; then press retry.`,
    });
  }

  /** The configured cost centre (cost_center = its number 1-3), active. */
  async costCenter(fresh = false): Promise<Row> {
    const centers = await this.rows("costcenters", fresh);
    const c = centers.find((x) => Number(x.Number) === this.cfg.cost_center);
    if (c && c.IsActive !== false) return c;
    throw new TargetError("permanent", {
      code: "eaccounting.cost_center_unknown",
      message: c
        ? `Cost centre ${this.cfg.cost_center} (${c.Name}) is not active in eAccounting, so projects cannot be sent.`
        : `eAccounting has no cost centre ${this.cfg.cost_center}, so projects cannot be sent.`,
      hint: `Activate the cost centre for projects in eAccounting (Settings › Cost centres), or set cost_center in kontobro.toml to its number (${centers.map((x) => `${x.Number} ${x.Name}${x.IsActive === false ? " (inactive)" : ""}`).join(", ")}); then press retry.`,
    });
  }

  /** The cost-centre item of a PSA project (abbreviation = project number), or null. */
  /** A cost-centre item just created: added to the list as read, so invoices find it without reading it again. */
  addItem(item: Row): void {
    const center = this.cached("costcenters")?.find((c) => c.Id === item.CostCenterId);
    if (center) center.Items = [...((center.Items as Row[] | undefined) ?? []), item];
  }

  async item(projectNumber: string, fresh = false): Promise<Row | null> {
    return (((await this.costCenter(fresh)).Items as Row[]) ?? []).find((i) => same(i.ShortName, projectNumber)) ?? null;
  }

  // ---- the PSA's numbers → eAccounting's ids -----------------------------------------------------------------

  async customerByNumber(number: string): Promise<Row | null> {
    const rows = await this.client.all("customers", {
      filter: `CustomerNumber eq ${EaccountingClient.lit(number)}`,
      where: (r) => same(r.CustomerNumber, number),
    });
    return rows[0] ?? null;
  }

  async articleByNumber(number: string): Promise<Row | null> {
    const rows = await this.client.all("articles", {
      filter: `Number eq ${EaccountingClient.lit(number)}`,
      where: (r) => same(r.Number, number),
    });
    return rows[0] ?? null;
  }

  /** Cached id of a customer or article by number (`kind:number`). */
  async idOf(kind: "customer" | "article", number: string): Promise<{ id: string; row?: Row } | null> {
    const k = `${kind}:${number.toLowerCase()}`;
    const hit = this.ids.get(k);
    if (hit) return { id: hit };
    const row = kind === "customer" ? await this.customerByNumber(number) : await this.articleByNumber(number);
    if (!row) return null;
    this.ids.set(k, row.Id);
    return { id: row.Id, row };
  }

  remember(kind: "customer" | "article", number: string, id: string): void {
    this.ids.set(`${kind}:${number.toLowerCase()}`, id);
  }
}
