// Demo mode: the agent on its embedded defaults against a target's built-in sandbox (the registry's first
// by default), with sample PSA data flowing in, so a new user sees the whole path work after `npm start`.
import type { AgentConfig, TargetConfig } from "./config.ts";
import { validateConfig } from "./config.ts";
import type { IntakeWriter, ValidEvent } from "./intake.ts";
import { parseEvents } from "./intake.ts";
import type { Db } from "./db/index.ts";
import { connectorKinds } from "../connectors/registry.ts";

/** A one-page PDF, small and valid, so the sandbox accepts it as the invoice attachment. */
export const SAMPLE_PDF_BASE64 = Buffer.from(
  "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
).toString("base64");

export interface DemoTarget {
  /** The [[targets]] table pointing at the sandbox. */
  target: Record<string, unknown>;
  sandboxUrl: string;
  stop(): Promise<void>;
}

/** The registry's kinds whose connector has a sandbox (and so a demo target), in its order. */
export const DEMO_TARGETS: readonly string[] = Object.keys(connectorKinds).filter((k) => connectorKinds[k]!.startSandbox);

/** Starts the built-in sandbox of a target kind in-process and describes how to reach it. */
export async function startDemoTarget(kind: string): Promise<DemoTarget> {
  const start = connectorKinds[kind]?.startSandbox;
  if (!start) throw new Error(`demo has no sandbox for "${kind}"; use one of ${DEMO_TARGETS.join(", ")}`);
  const sandbox = await start({ port: 0 });
  return { target: sandbox.demoTarget, sandboxUrl: sandbox.url, stop: sandbox.stop };
}

export function demoConfig(opts: { dataDir?: string; port?: number; target: Record<string, unknown> }): {
  config: AgentConfig;
  targets: TargetConfig[];
} {
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: opts.dataDir ?? "./data" },
      http: { port: opts.port ?? 8787 },
      dispatch: { retry_base_ms: 500, retry_max_ms: 30_000 },
      targets: [opts.target],
    },
    {},
  );
  return { config, targets };
}

const NAMES = [
  "Fjordkraft Bygg AS",
  "Nordlys Arkitekter AS",
  "Bølgen Reklame AS",
  "Havøy Konsult AS",
  "Tindefjell Eiendom AS",
  "Østmark Design AS",
];
const CITIES = [
  ["Bergen", "5013"],
  ["Oslo", "0150"],
  ["Tromsø", "9008"],
  ["Trondheim", "7011"],
  ["Stavanger", "4006"],
];

/** The events of one sample round: a customer, a project and an invoice (numbers continue from the store). */
export function sampleRound(n: number, today = new Date()): unknown[] {
  const customer = 10000 + n;
  const project = 5000 + n;
  const invoice = 20000 + n;
  const [city, zip] = CITIES[n % CITIES.length]!;
  const date = today.toISOString().slice(0, 10);
  const due = new Date(today.getTime() + 14 * 86400_000).toISOString().slice(0, 10);
  return [
    {
      id: `demo-customer-${customer}-${n}`,
      type: "customer.upserted",
      data: {
        number: customer,
        name: NAMES[n % NAMES.length],
        orgNumber: `9${String(10000000 + n).slice(-8)}`,
        email: `faktura${n}@example.no`,
        currency: "NOK",
        addresses: [{ street: `Strandgaten ${n}`, zip, city, country: "NO" }],
      },
    },
    {
      id: `demo-project-${project}-${n}`,
      type: "project.upserted",
      data: { number: project, name: `Rehab ${city} ${n}`, customerNumber: customer, startDate: date },
    },
    {
      id: `demo-invoice-${invoice}`,
      type: "invoice.finalized",
      data: {
        number: invoice,
        psaId: `DEMO-INV-${invoice}`,
        customerNumber: customer,
        projectNumber: project,
        date,
        dueDate: due,
        currency: "NOK",
        paymentId: `${invoice}0`,
        lines: [
          { text: "Seniorkonsulent", quantity: 7.5, unitPrice: 145000, kind: "hours" },
          { text: "Reise og opphold", quantity: 1, unitPrice: 238050, kind: "expenses" },
        ],
        pdf: { filename: `faktura-${invoice}.pdf`, contentBase64: SAMPLE_PDF_BASE64 },
      },
    },
  ];
}

/** One deliberately broken record, so the status page shows what "needs action" looks like. */
export const BROKEN_SAMPLE = {
  id: "demo-project-P-100",
  type: "project.upserted",
  data: { number: "P-100", name: "Project with a letter in its number" },
};

export function nextSampleNumber(db: Db): number {
  const row = db.$client.query(`SELECT count(*) AS n FROM records WHERE entity = 'invoice' AND key LIKE '2%'`).get() as { n: number };
  return row.n + 1;
}

/** Feeds a sample round every `intervalMs` through the same intake the API uses. */
export function startSampleFeed(db: Db, intake: IntakeWriter, intervalMs: number, log: (msg: string) => void): () => void {
  const feed = async (events: unknown[]) => {
    const parsed = parseEvents(events);
    if (!parsed.ok) throw new Error(`demo data invalid: ${JSON.stringify(parsed.events)}`);
    await intake.submit(parsed.events as ValidEvent[]);
  };
  const round = async () => {
    const n = nextSampleNumber(db);
    await feed(sampleRound(n));
    log(`demo: sent customer ${10000 + n}, project ${5000 + n} and invoice ${20000 + n}`);
  };
  // The broken sample goes through intake (it is valid PSA data) and fails the target's pre-flight rules.
  void feed([BROKEN_SAMPLE])
    .then(round)
    .catch((e) => log(`demo feed failed: ${e.message}`));
  const timer = setInterval(() => void round().catch((e) => log(`demo feed failed: ${e.message}`)), intervalMs);
  return () => clearInterval(timer);
}
