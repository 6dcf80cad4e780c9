// Exports on hosted workers (issue 17, item 3: each tenant has its own exports): two real `kontobro run` processes on
// one real PostgreSQL server (test/pg-server.ts), two tenants added with the real `kontobro tenant add`, each with its
// own [exports] section. A SIE file made through /api/v1/exports with a tenant's token holds that tenant's invoices
// only, under its own company name; one tenant's token finds none of the other's runs, files, downloads or invoices;
// export runs of one tenant sent to both workers at once never put an invoice in two files (the tenant's export turn).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { readSie } from "../formats/sie4/reader.ts";
import { BASE, invoice } from "./exports-fixtures.ts";
import { tempDir, waitFor } from "./helpers.ts";
import { freePort, type RunningWorker, startWorkerProcess, writeWorkerConfig } from "./hosted-process.ts";
import { pgUnavailable, startPgServer, type PgServer } from "./pg-server.ts";

const ROOT = resolve(import.meta.dir, "..");
const unavailable = pgUnavailable();
if (unavailable) console.warn(`exports on hosted workers skipped: ${unavailable}`);

interface TenantUnderTest {
  slug: string;
  token: string;
  company: string;
}

const dir = tempDir("kontobro-hosted-exports-");
let server: PgServer;
let admin: SQL;
const workers: RunningWorker[] = [];
const tenants: Record<"acme" | "globex", TenantUnderTest> = {} as any;

function workerConfig(name: string, port: number): string {
  return writeWorkerConfig(dir, name, server.url, port);
}

function startWorker(name: string): Promise<RunningWorker> {
  const port = freePort();
  return startWorkerProcess(name, workerConfig(name, port), port);
}

/** `kontobro tenant add` with the tenant's own [exports] section and no targets; returns its API token. */
function addTenant(slug: string, company: string): TenantUnderTest {
  const file = join(dir, `${slug}.toml`);
  writeFileSync(file, `[exports]\ncompany_name = "${company}"\norg_number = "556677-8899"\n`);
  const res = Bun.spawnSync(
    [process.execPath, "agent/main.ts", "tenant", "add", slug, "--file", file, "--config", workerConfig("cli", 0)],
    {
      cwd: ROOT,
    },
  );
  if (res.exitCode !== 0) throw new Error(`tenant add ${slug} failed: ${res.stderr.toString()}`);
  return { slug, company, token: /shown only now[^\n]*\n {2}(\S+)/.exec(res.stdout.toString())![1]! };
}

async function call(worker: RunningWorker, token: string, path: string, init: RequestInit = {}) {
  return fetch(`${worker.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...(init.headers as Record<string, string>) },
  });
}

async function api(worker: RunningWorker, token: string, path: string, init: RequestInit = {}) {
  const res = await call(worker, token, path, init);
  return { status: res.status, body: (await res.json()) as any };
}

const post = (worker: RunningWorker, t: TenantUnderTest, path: string, body: unknown) =>
  api(worker, t.token, path, { method: "POST", body: JSON.stringify(body) });

/** The vouchers' invoice numbers of a SIE file downloaded with the tenant's token, and the file's company name. */
async function sieFile(worker: RunningWorker, t: TenantUnderTest, fileId: number): Promise<{ company?: string; invoices: string[] }> {
  const res = await call(worker, t.token, `/api/v1/exports/files/${fileId}/download`);
  expect(res.status).toBe(200);
  const read = readSie(new Uint8Array(await res.arrayBuffer()));
  expect(read.problems).toEqual([]);
  return { company: read.document.companyName, invoices: read.document.vouchers.map((v) => /^\w+ (\d+)/.exec(v.text!)![1]!) };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const sorted = (xs: (string | number)[]) => xs.map(Number).sort((a, b) => a - b);

beforeAll(async () => {
  if (unavailable) return;
  server = await startPgServer();
  admin = new SQL({ url: server.adminUrl, max: 1 });
  tenants.acme = addTenant("acme", "Acme Konsult AB");
  tenants.globex = addTenant("globex", "Globex Rådgivning AB");
  workers.push(...(await Promise.all([startWorker("a"), startWorker("b")])));
}, 180_000);

afterAll(async () => {
  for (const w of workers) w.proc.kill("SIGKILL");
  await admin?.close();
  await server?.stop();
});

describe.skipIf(!!unavailable)("exports on hosted workers: two workers, two tenants", () => {
  const files: Record<"acme" | "globex", number> = { acme: 0, globex: 0 };

  test("each tenant's SIE file, made through the API on either worker, holds its own invoices only", async () => {
    const [a, b] = workers as [RunningWorker, RunningWorker];
    // Both tenants use the same invoice numbers: each must get its own.
    expect((await post(a, tenants.acme, "/api/v1/events", [...BASE(), ...range(1001, 3).map((n) => invoice(n))])).status).toBe(202);
    expect(
      (await post(b, tenants.globex, "/api/v1/events", [...BASE(), ...range(1001, 2).map((n) => invoice(n, { date: "2026-03-11" }))]))
        .status,
    ).toBe(202);
    await waitFor("both tenants' invoices stored", async () => {
      const [x, y] = await Promise.all([
        api(a, tenants.acme.token, "/api/v1/exports/invoices"),
        api(b, tenants.globex.token, "/api/v1/exports/invoices"),
      ]);
      return x.body.counts?.to_transfer === 3 && y.body.counts?.to_transfer === 2;
    });

    const acme = await post(b, tenants.acme, "/api/v1/exports/runs", { format: "sie4" });
    expect(acme.status).toBe(201);
    expect(sorted(acme.body.invoices.exported)).toEqual([1001, 1002, 1003]);
    const globex = await post(a, tenants.globex, "/api/v1/exports/runs", { format: "sie4" });
    expect(globex.status).toBe(201);
    expect(sorted(globex.body.invoices.exported)).toEqual([1001, 1002]);
    files.acme = acme.body.files[0].id;
    files.globex = globex.body.files[0].id;

    const acmeFile = await sieFile(a, tenants.acme, files.acme);
    expect(acmeFile).toEqual({ company: "Acme Konsult AB", invoices: ["1001", "1002", "1003"] });
    const globexFile = await sieFile(b, tenants.globex, files.globex);
    expect(globexFile.invoices).toEqual(["1001", "1002"]);
    // Each tenant's SIE files are numbered from 1: the serial is the tenant's, not the installation's.
    expect([acme.body.files[0].fileName, globex.body.files[0].fileName].map((n: string) => n.split("_").pop())).toEqual(["1.SI", "1.SI"]);

    // Marked transferred in each tenant's own rows only.
    const marks = await admin`SELECT t.slug, s.status, count(*)::int AS n FROM invoice_export_status s JOIN tenants t ON t.id = s.tenant_id
      GROUP BY t.slug, s.status ORDER BY t.slug`;
    expect(marks.map((r: any) => [r.slug, r.status, r.n])).toEqual([
      ["acme", "transferred", 3],
      ["globex", "transferred", 2],
    ]);
  });

  test("a tenant's token finds none of the other's runs, files, downloads or invoices", async () => {
    const [a, b] = workers as [RunningWorker, RunningWorker];
    expect(files.acme).toBeGreaterThan(0);
    for (const w of [a, b]) {
      expect((await api(w, tenants.globex.token, `/api/v1/exports/files/${files.acme}`)).status).toBe(404);
      expect((await call(w, tenants.globex.token, `/api/v1/exports/files/${files.acme}/download`)).status).toBe(404);
      const listed = await api(w, tenants.globex.token, "/api/v1/exports/files");
      expect(listed.body.files.map((f: any) => f.id)).toEqual([files.globex]);
      const runs = await api(w, tenants.globex.token, "/api/v1/exports/runs");
      expect(runs.body.runs.flatMap((r: any) => r.files.map((f: any) => f.id))).toEqual([files.globex]);
      // Its own file is there for it, and the other's token cannot see it either.
      expect((await api(w, tenants.acme.token, `/api/v1/exports/files/${files.globex}`)).status).toBe(404);
      expect((await api(w, tenants.acme.token, `/api/v1/exports/files/${files.acme}`)).body.invoices).toEqual(["1001", "1002", "1003"]);
    }
    // A status change with one tenant's token touches its own invoice 1001 only.
    const changed = await post(a, tenants.globex, "/api/v1/exports/invoices/status", { number: "1001", status: "to_transfer" });
    expect(changed.body).toMatchObject({ ok: true, changed: ["1001"] });
    expect((await api(b, tenants.acme.token, "/api/v1/exports/invoices/1001")).body.status).toBe("transferred");
    expect((await api(b, tenants.globex.token, "/api/v1/exports/invoices/1001")).body.status).toBe("to_transfer");
    expect((await call(a, "not-a-token", "/api/v1/exports/files")).status).toBe(401);
  });

  test("export runs of one tenant sent to both workers at once never mark an invoice twice", async () => {
    const [a, b] = workers as [RunningWorker, RunningWorker];
    expect(
      (
        await post(
          a,
          tenants.acme,
          "/api/v1/events",
          range(3001, 40).map((n) => invoice(n)),
        )
      ).status,
    ).toBe(202);
    await waitFor(
      "the invoices stored",
      async () => (await api(b, tenants.acme.token, "/api/v1/exports/invoices")).body.counts?.to_transfer === 40,
    );
    const runs = await Promise.all([a, b, a, b, a, b].map((w) => post(w, tenants.acme, "/api/v1/exports/runs", { format: "sie4" })));
    for (const r of runs) expect([200, 201]).toContain(r.status);
    const exported = runs.flatMap((r) => r.body.invoices.exported as string[]);
    expect(sorted(exported)).toEqual(range(3001, 40));
    // Every file holds what its run marked, and no invoice is in two files.
    const made = runs.flatMap((r) => r.body.files as { id: number; fileName: string; invoices: string[] }[]);
    const inFiles: string[] = [];
    for (const f of made) {
      const file = await sieFile(a, tenants.acme, f.id);
      expect(sorted(file.invoices)).toEqual(sorted(f.invoices));
      inFiles.push(...file.invoices);
    }
    expect(sorted(inFiles)).toEqual(range(3001, 40));
    // The serials go on from the first file, without gaps or repeats.
    expect(sorted(made.map((f) => f.fileName.split("_").pop()!.replace(".SI", "")))).toEqual(range(2, made.length));
    const marked = await admin`SELECT count(*)::int AS n, count(DISTINCT s.export_file_id)::int AS files FROM invoice_export_status s
      JOIN tenants t ON t.id = s.tenant_id WHERE t.slug = 'acme' AND s.invoice_key LIKE '3%' AND s.status = 'transferred'`;
    expect(marked[0]).toEqual({ n: 40, files: made.length });
  });
});
