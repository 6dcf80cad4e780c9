// The control API under /__sandbox/: no auth, no faults. For tests, `kontobro demo` and a chaos run in
// another process.
import type { Hono } from "hono";
import { z } from "zod";
import { faultRuleSchema, type FaultRule } from "./faults.ts";
import { REMOVABLE_SEED, removeSeed, type Attachment, type Json, type SandboxState } from "./state.ts";

export interface ControlTarget {
  readonly state: SandboxState;
  addFault(rule: FaultRule): number;
  clearFaults(): void;
  listFaults(): unknown[];
  reset(): void;
  stats(): Json;
}

/** `{rules: [...]}` (documented), or a bare list or a single rule. */
const faultsBody = z.union([
  z.object({ rules: z.array(faultRuleSchema).min(1) }).strict(),
  z
    .array(faultRuleSchema)
    .min(1)
    .transform((rules) => ({ rules })),
  faultRuleSchema.transform((rule) => ({ rules: [rule] })),
]);
const seedRemoveBody = z.object({ items: z.array(z.enum(REMOVABLE_SEED)).min(1) }).strict();

function attachmentSummary(a: Attachment | undefined): Json {
  return a ? { hasAttachment: true, attachment: { fileName: a.fileName, size: a.size, pages: a.pages } } : { hasAttachment: false };
}

/** Everything a test or a chaos run wants to assert on, as plain JSON. */
export function snapshot(target: ControlTarget): Json {
  const s = target.state;
  return {
    customers: [...s.customers.values()],
    products: [...s.products.values()],
    projects: [...s.projects.values()],
    projectGroups: [...s.projectGroups.values()],
    drafts: [...s.drafts.values()].map((r) => ({ ...r.invoice, ...attachmentSummary(r.attachment) })),
    booked: [...s.booked.values()].map((r) => ({
      ...r.invoice,
      ...attachmentSummary(r.attachment),
      ...(r.sendBy ? { sendBy: r.sendBy } : {}),
    })),
    seed: { customerGroups: [...s.customerGroups.keys()], journals: [...s.journals.keys()] },
    faultRules: target.listFaults(),
    ...target.stats(),
  };
}

function badRequest(error: z.ZodError): Response {
  return Response.json(
    { message: "Invalid control request.", issues: error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`) },
    { status: 400 },
  );
}

async function jsonBody(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    return undefined;
  }
}

export function registerControlRoutes(app: Hono, target: ControlTarget): void {
  app.get("/__sandbox/state", () => Response.json(snapshot(target)));
  // Counts only: cheap to poll while a large backlog drains (the state can hold a million records).
  app.get("/__sandbox/stats", () => Response.json(target.stats()));
  app.get("/__sandbox/faults", () => Response.json({ rules: target.listFaults() }));
  app.post("/__sandbox/faults", async (c) => {
    const parsed = faultsBody.safeParse(await jsonBody(c.req.raw));
    if (!parsed.success) return badRequest(parsed.error);
    const ids = parsed.data.rules.map((r) => target.addFault(r));
    // This connection is busy now, so closing idle ones misses it: close it after the answer.
    const close = parsed.data.rules.some((r) => r.kind === "drop_after_commit") ? { connection: "close" } : undefined;
    return Response.json({ ids, rules: target.listFaults() }, { status: 201, headers: close });
  });
  app.delete("/__sandbox/faults", () => {
    const cleared = target.listFaults().length;
    target.clearFaults();
    return Response.json({ cleared });
  });
  app.post("/__sandbox/reset", () => {
    target.reset();
    return Response.json({ reset: true });
  });
  app.post("/__sandbox/seed/remove", async (c) => {
    const parsed = seedRemoveBody.safeParse(await jsonBody(c.req.raw));
    if (!parsed.success) return badRequest(parsed.error);
    removeSeed(target.state, parsed.data.items);
    return Response.json({ removed: parsed.data.items });
  });
  app.all("/__sandbox/*", (c) => Response.json({ message: `No control endpoint ${c.req.method} ${c.req.path}.` }, { status: 404 }));
}
