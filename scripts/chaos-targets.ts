// The chaos run's targets, from the connector registry: every connector whose factory has a chaos adapter
// (connectors/<kind>/sandbox/chaos.ts: its sandbox behind a request log, its faults, its [[targets]] table
// and the read-back), so scripts/chaos.ts stays target-neutral.
import { connectorKinds } from "../connectors/registry.ts";
import type { ChaosTarget, FaultPlan } from "../connectors/sandbox.ts";

export type { ChaosTarget, FaultPlan } from "../connectors/sandbox.ts";

/** The registry's kinds with a chaos adapter, in its order (the first is the default). */
export const CHAOS_TARGETS: readonly string[] = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.chaos);
export type ChaosTargetKind = string;

/** The target's name in kontobro.toml (and so in /metrics). */
export const TARGET_NAME = "chaos";

export async function startChaosTarget(kind: ChaosTargetKind, dir: string, random: () => number, plan: FaultPlan): Promise<ChaosTarget> {
  const adapter = await connectorKinds[kind]?.chaos?.();
  if (!adapter) throw new Error(`no chaos adapter for "${kind}"; use one of ${CHAOS_TARGETS.join(", ")}`);
  return adapter({ name: TARGET_NAME, dir, random, plan });
}
