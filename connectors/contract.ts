// The connector contract: every target (e-conomic, Uni Micro, …) implements this and nothing more.
// The agent core never knows a target's API; a connector never touches the database.
import type { z } from "zod";
import type { Entity } from "../agent/model.ts";
import type { Problem } from "../agent/problem.ts";
import type { Logger } from "../agent/log.ts";

/** What the agent remembers about a record it has pushed to a target. */
export interface Link {
  /** The target's id or number for the record. */
  remoteId: string;
}

export interface PushContext {
  /** The record was pushed before (there is a link); push updates it. */
  link: Link | null;
  /**
   * An earlier attempt may have reached the target without us seeing the answer (timeout, reset,
   * 5xx on a write, or a crash). The connector must look the record up before creating anything.
   */
  uncertain: boolean;
  /** Stable per delivery (all retries share it); connectors send it where the target supports idempotency keys. */
  idempotencyKey: string;
  /** The latest canonical payload of another record (e.g. the invoice's customer), or null if never received. */
  record?: (entity: Entity, key: string) => any | null;
}

export interface PushResult {
  remoteId: string;
  /** Something the user should know although the push succeeded (shown on the status page). */
  note?: string;
}

export interface CheckItem {
  ok: boolean;
  /** Short name of what was checked, e.g. "credentials" or "customer group 1". */
  name: string;
  message: string;
  hint?: string;
}

/** A page of items pulled from a target (expenses, payment status, …). */
export interface PullResult<T = unknown> {
  items: { remoteId: string; data: T }[];
  /** Cursor to store once the items are stored; null when unchanged. */
  cursor: string | null;
  /** More pages are ready now. */
  more: boolean;
}

export interface Connector {
  readonly name: string;
  readonly kind: string;
  supports(entity: Entity): boolean;
  /** Credentials and the set-up the target needs; plain-language results. */
  check(): Promise<CheckItem[]>;
  /** Pre-flight rules, no network: an empty list means the payload can be pushed. */
  validate(entity: Entity, payload: any): Problem[];
  /** Idempotent upsert. Throws TargetError (connectors/http.ts) on failure. */
  push(entity: Entity, payload: any, ctx: PushContext): Promise<PushResult>;
  /** Look a record up by its natural key (number, or the PSA id in a reference field). */
  find(entity: Entity, payload: any): Promise<Link | null>;
  pull?(stream: string, cursor: string | null, options: Record<string, unknown>): Promise<PullResult>;
}

export interface ConnectorDeps {
  log: Logger;
}

export interface ConnectorFactory<C = any> {
  kind: string;
  /** Human name of the target system, for messages. */
  title: string;
  /** zod schema of the target's [[targets]] table in kontobro.toml (secrets already resolved). */
  configSchema: z.ZodType<C>;
  create(name: string, config: C, deps: ConnectorDeps): Connector;
}
