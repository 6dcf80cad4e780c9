// Demo mode: the agent on its embedded defaults against a target's built-in sandbox (the registry's first
// by default), with sample PSA data flowing in, so a new user sees the whole path work after `npm start`.
import type { AgentConfig, TargetConfig } from "./config.ts";
import { validateConfig } from "./config.ts";
import type { Intake, ValidEvent } from "./intake.ts";
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

/** The demo's company for file exports, so the status page's SIE export works with no editing (the sample invoices are in NOK). */
export const DEMO_EXPORTS = { company_name: "Kontobro Demo AS", org_number: "912345678", currency: "NOK" };

/**
 * Where the demo's alert mails go: [notifications] as a real kontobro.toml has it. The mail server is never
 * reached: the demo hands the agent a mailbox (agent/notify/demo-mailbox.ts) that keeps each mail instead.
 * Problems are looked for every 2 s and told at most once a minute per target.
 */
export const DEMO_NOTIFICATIONS = {
  recipients: ["regnskap@example.no"],
  min_interval_minutes: 1,
  check_interval_seconds: 2,
  smtp: { host: "smtp.demo.invalid", from: "kontobro demo <kontobro@example.no>" },
};

/**
 * Every stream the target's connector pulls, every `everyMs` (a cron with seconds; a minute or more: whole
 * minutes), so supplier costs and payments show on the status page within the first minute of the demo.
 */
export function demoPullSchedules(kind: string, everyMs: number): Record<string, { cron: string; timezone: string }> {
  const seconds = Math.max(1, Math.round(everyMs / 1000));
  const cron = seconds < 60 ? `*/${seconds} * * * * *` : `0 */${Math.min(59, Math.round(seconds / 60))} * * * *`;
  const streams = Object.entries(connectorKinds[kind]?.pulls ?? {});
  return Object.fromEntries(streams.map(([stream, spec]) => [stream, { cron, timezone: spec.timezone }]));
}

/**
 * The demo's configuration for `target` (a sandbox's demo [[targets]] table): the embedded defaults, quick
 * retries, the demo company for exports; with `pullEveryMs` every pull on that schedule, with `mail` alerts
 * by e-mail to the demo mailbox (DEMO_NOTIFICATIONS).
 */
export function demoConfig(opts: {
  dataDir?: string;
  port?: number;
  target: Record<string, unknown>;
  pullEveryMs?: number;
  mail?: boolean;
}): {
  config: AgentConfig;
  targets: TargetConfig[];
} {
  const pulls = opts.pullEveryMs === undefined ? {} : demoPullSchedules(String(opts.target.kind), opts.pullEveryMs);
  const target = Object.keys(pulls).length === 0 ? opts.target : { ...opts.target, pulls };
  const { config, targets } = validateConfig(
    {
      agent: { data_dir: opts.dataDir ?? "./data" },
      http: { port: opts.port ?? 8787 },
      dispatch: { retry_base_ms: 500, retry_max_ms: 30_000 },
      exports: DEMO_EXPORTS,
      ...(opts.mail ? { notifications: DEMO_NOTIFICATIONS } : {}),
      targets: [target],
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

/** Customer n's name: unique, as a target that matches customers by name needs ("Nordlys Arkitekter 2 AS" after a full cycle). */
export function sampleName(n: number): string {
  const base = NAMES[n % NAMES.length]!;
  const cycle = Math.floor(n / NAMES.length);
  return cycle === 0 ? base : base.replace(/ AS$/, ` ${cycle + 1} AS`);
}

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
        name: sampleName(n),
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

/**
 * One deliberately broken record, so the status page shows what "needs action" looks like and the demo mailbox
 * gets an alert: every target refuses it (letters in the number, a number longer than 9 characters, no customer).
 */
export const BROKEN_SAMPLE = {
  id: "demo-project-P-100-DEMO",
  type: "project.upserted",
  data: { number: "P-100-DEMO", name: "Project with letters in its number" },
};

export function nextSampleNumber(db: Db): number {
  const row = db.$client.query(`SELECT count(*) AS n FROM records WHERE entity = 'invoice' AND key LIKE '2%'`).get() as { n: number };
  return row.n + 1;
}

/** Feeds a sample round every `intervalMs` through the same intake the API uses. */
export function startSampleFeed(db: Db, intake: Intake, intervalMs: number, log: (msg: string) => void): () => void {
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
