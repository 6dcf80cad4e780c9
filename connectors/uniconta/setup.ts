// Uniconta's set-up lists (customer groups, project groups and categories, VAT codes, accounts, payment terms,
// dimension values, items, number series), read when needed and kept for setup_cache_minutes. A code the PSA
// or kontobro.toml names that Uniconta does not have is refused before anything is sent, naming it and
// listing the codes that exist. The entity names of these lists are unverified (see README).
import type { Problem } from "../../agent/problem.ts";
import { TargetError } from "../http.ts";
import type { Row, UnicontaClient } from "./client.ts";

export const LISTS = {
  customerGroup: { type: "DebtorGroupClient", key: "Group", title: "customer groups", where: "Customer › Maintenance › Customer groups" },
  projectGroup: { type: "ProjectGroupClient", key: "Group", title: "project groups", where: "Project › Maintenance › Project groups" },
  category: { type: "PrCategoryClient", key: "Number", title: "project categories", where: "Project › Maintenance › Project category" },
  vat: { type: "GLVatClient", key: "Vat", title: "VAT codes", where: "General Ledger › Maintenance › VAT" },
  account: { type: "GLAccountClient", key: "Account", title: "accounts", where: "General Ledger › Chart of accounts" },
  paymentTerms: { type: "PaymentTermClient", key: "Payment", title: "payment terms", where: "Customer › Maintenance › Payment terms" },
  item: { type: "InvItemClient", key: "Item", title: "items", where: "Inventory › Items" },
  numberSeries: {
    type: "NumberSerieClient",
    key: "Number",
    title: "number series",
    where: "General Ledger › Maintenance › Voucher number series",
  },
  dim1: { type: "GLDimType1Client", key: "Dimension", title: "values of dimension 1", where: "Company › Dimensions" },
  dim2: { type: "GLDimType2Client", key: "Dimension", title: "values of dimension 2", where: "Company › Dimensions" },
  dim3: { type: "GLDimType3Client", key: "Dimension", title: "values of dimension 3", where: "Company › Dimensions" },
  dim4: { type: "GLDimType4Client", key: "Dimension", title: "values of dimension 4", where: "Company › Dimensions" },
  dim5: { type: "GLDimType5Client", key: "Dimension", title: "values of dimension 5", where: "Company › Dimensions" },
} as const;
export type ListKind = keyof typeof LISTS;

/** A list is read again on a miss only when it is older than this (a code created a moment ago is found). */
const RELOAD_ON_MISS_MS = 60_000;

export class SetupLists {
  private readonly cache = new Map<ListKind, { at: number; rows: Map<string, Row> }>();

  constructor(
    private readonly client: UnicontaClient,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  forget(): void {
    this.cache.clear();
  }

  async list(kind: ListKind, fresh = false): Promise<Map<string, Row>> {
    const hit = this.cache.get(kind);
    if (hit && !fresh && this.now() - hit.at < this.ttlMs) return hit.rows;
    const spec = LISTS[kind];
    const rows = await this.client.readAll(spec.type);
    const map = new Map(rows.filter((r) => r[spec.key] !== undefined).map((r) => [String(r[spec.key]), r]));
    this.cache.set(kind, { at: this.now(), rows: map });
    return map;
  }

  /** The row of `code`, or null (after one fresh read when the cached list is not brand new). */
  async find(kind: ListKind, code: string): Promise<Row | null> {
    let rows = await this.list(kind);
    if (!rows.has(code) && this.now() - (this.cache.get(kind)?.at ?? 0) >= RELOAD_ON_MISS_MS) rows = await this.list(kind, true);
    return rows.get(code) ?? null;
  }

  /** The row of `code`, or a permanent error (nothing sent) naming it, saying where it came from and listing what exists. */
  async require(kind: ListKind, code: string, what: string, fix: string, record?: Problem["record"]): Promise<Row> {
    const row = await this.find(kind, code);
    if (row) return row;
    const spec = LISTS[kind];
    const existing = [...(await this.list(kind)).keys()];
    const shown = existing.slice(0, 30).join(", ") + (existing.length > 30 ? `, … (${existing.length} in all)` : "");
    throw new TargetError("permanent", {
      code: `uniconta.${kind === "customerGroup" ? "customer_group" : kind}_unknown`,
      message: `${what} "${code}" does not exist in Uniconta, so nothing was sent. The ${spec.title} in Uniconta are: ${shown || "none"}.`,
      hint: `${fix} (Uniconta: ${spec.where}); then press retry.`,
      ...(record ? { record } : {}),
    });
  }
}
