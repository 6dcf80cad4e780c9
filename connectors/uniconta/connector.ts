// The Uniconta connector: customers (DebtorClient) and projects (ProjectClient) keyed by the PSA's numbers,
// read first and updated as full entities (never blanking what the PSA did not send); invoices and credit
// notes through orders (invoice-push.ts); expenses and payment status back (pull.ts); the daily call budget.
import type { Customer, Entity, InvoiceLike, Project } from "../../agent/model.ts";
import type { Problem } from "../../agent/problem.ts";
import type {
  CheckItem,
  Connector,
  ConnectorDeps,
  Link,
  PullOptions,
  PullResult,
  PushContext,
  PushResult,
  RelatedRecords,
  TargetBudget,
} from "../contract.ts";
import { TargetError } from "../http.ts";
import { CallBudget } from "./budget.ts";
import { runChecks } from "./check.ts";
import { UnicontaClient, type Row } from "./client.ts";
import type { UnicontaConfig } from "./config.ts";
import { UnicontaInvoices } from "./invoice-push.ts";
import { debtorFields, differs, dimensionField, mergeEntity, projectFields } from "./map.ts";
import { UnicontaPuller } from "./pull.ts";
import { unicontaRules } from "./rules.ts";
import { SetupLists, type ListKind } from "./setup.ts";

const SUPPORTED: Entity[] = ["customer", "project", "invoice"];

export class UnicontaConnector implements Connector {
  readonly kind = "uniconta";
  readonly client: UnicontaClient;
  readonly budget: CallBudget;
  readonly setup: SetupLists;
  readonly invoices: UnicontaInvoices;
  private readonly puller: UnicontaPuller;

  constructor(
    readonly name: string,
    private readonly cfg: UnicontaConfig,
    deps: ConnectorDeps,
    now: () => number = Date.now,
  ) {
    this.budget = new CallBudget(
      {
        limit: cfg.calls_per_day,
        reserve: cfg.reserve_for_pushes,
        timezone: cfg.quota_timezone,
        gatewayPostCalls: cfg.gateway_post_calls,
        gatewaySessionMinutes: cfg.gateway_session_minutes,
      },
      deps.counters,
      now,
      (e) => deps.log.warn("uniconta: could not read or write the stored call count; counting in memory", { target: name, error: e }),
    );
    this.client = new UnicontaClient({
      apiUrl: cfg.api_url,
      gatewayUrl: cfg.gateway_url,
      companyId: cfg.company_id,
      username: cfg.username,
      password: cfg.password,
      timeoutMs: cfg.request_timeout_ms,
      requestsPerSecond: cfg.requests_per_second,
      burst: cfg.burst,
      budget: this.budget,
    });
    this.setup = new SetupLists(this.client, cfg.setup_cache_minutes * 60_000, now);
    this.invoices = new UnicontaInvoices(this.client, cfg, this.setup, deps.log);
    this.puller = new UnicontaPuller(this.client, cfg, this.budget, deps.log);
  }

  /** A late order insert's answer (invoice-push.ts) comes after its push: its 429 pauses this client, and the round stores it. */
  pausedForMs(): number {
    return this.client.http.gate.remainingMs();
  }

  supports(entity: Entity): boolean {
    return SUPPORTED.includes(entity);
  }

  validate(entity: Entity, payload: any, related?: RelatedRecords): Problem[] {
    return unicontaRules(entity, payload, related, this.cfg);
  }

  async push(entity: Entity, payload: any, ctx: PushContext): Promise<PushResult> {
    switch (entity) {
      case "customer":
        return this.pushCustomer(payload as Customer);
      case "project":
        return this.pushProject(payload as Project);
      case "invoice":
        return this.invoices.push(payload as InvoiceLike, ctx);
      default:
        throw new TargetError("permanent", {
          code: "uniconta.unsupported",
          message: `Uniconta does not take ${entity} records from kontobro.`,
          hint: "Nothing to do.",
        });
    }
  }

  async find(entity: Entity, payload: any): Promise<Link | null> {
    switch (entity) {
      case "customer":
        return (await this.client.readBy("DebtorClient", "Account", payload.number)).length ? { remoteId: String(payload.number) } : null;
      case "project":
        return (await this.client.readBy("ProjectClient", "Number", payload.number)).length ? { remoteId: String(payload.number) } : null;
      case "invoice": {
        const posted = await this.invoices.findPosted(payload);
        if (posted) return { remoteId: String(posted.InvoiceNumber) };
        const order = this.cfg.posting === "order_only" ? await this.invoices.findOrder(payload) : null;
        return order ? { remoteId: `order:${order.OrderNumber}` } : null;
      }
      default:
        return null;
    }
  }

  pull(stream: string, cursor: string | null, options: PullOptions): Promise<PullResult> {
    return this.puller.pull(stream, cursor, options);
  }

  budgets(): TargetBudget[] {
    return [this.budget.report("Uniconta server calls today")];
  }

  check(): Promise<CheckItem[]> {
    return runChecks(this.cfg, this.client, this.setup, this.budget);
  }

  // ---- customers and projects: keyed by the PSA's numbers ---------------------------------------------

  private async pushCustomer(c: Customer): Promise<PushResult> {
    const group = c.group ?? this.cfg.default_customer_group;
    if (group) {
      await this.setup.require(
        "customerGroup",
        group,
        `Customer group of customer ${c.number}`,
        "The customer-group tag in the PSA must carry the code of a Uniconta customer group: fix the tag's code in the PSA, or create the group in Uniconta",
      );
    }
    return this.upsert("DebtorClient", "Account", c.number, (isNew) => debtorFields(c, this.cfg, isNew));
  }

  private async pushProject(p: Project): Promise<PushResult> {
    const mapped = projectFields(p, this.cfg, true);
    const department = mapped[dimensionField(this.cfg)];
    if (department)
      await this.setup.require(
        `dim${this.cfg.department_dimension}` as ListKind,
        department,
        `Department of project ${p.number}`,
        "Create the department in Uniconta, or fix it in the PSA",
      );
    return this.upsert("ProjectClient", "Number", p.number, (isNew) => projectFields(p, this.cfg, isNew));
  }

  /** Read by key; insert when missing, else update the full entity with what the PSA sent on top (only when it changes). */
  private async upsert(type: string, key: string, value: string, fields: (isNew: boolean) => Row): Promise<PushResult> {
    let existing = (await this.client.readBy(type, key, value))[0];
    if (!existing) {
      try {
        await this.client.insert(type, fields(true));
        return { remoteId: value };
      } catch (e) {
        // Made meanwhile (by hand, or by an attempt whose answer was lost): the PSA is master, so update it.
        if (!(e instanceof TargetError) || e.code !== "uniconta.KeyExists") throw e;
        existing = (await this.client.readBy(type, key, value))[0];
        if (!existing) throw e;
      }
    }
    const mapped = fields(false);
    if (differs(existing, mapped)) await this.client.update(type, mergeEntity(existing, mapped));
    return { remoteId: value };
  }
}
