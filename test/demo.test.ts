// `npm start` as a user runs it: the demo process (bun agent/main.ts demo) on a free port with a temporary data
// folder, looked at over HTTP as a person would. Within a bounded wait the pulls bring back the supplier costs
// and payments the demo's person books in the sandbox, the status page's SIE export form gives a valid SIE file
// as it stands, and the demo mailbox shows the alert mail about the broken sample. Then the same for every other
// target whose connector pulls, through `--target`.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connectorKinds } from "../connectors/registry.ts";
import { readSie } from "../formats/sie4/reader.ts";
import { tempDir, waitFor } from "./helpers.ts";

const MAIN = join(import.meta.dir, "../agent/main.ts");
const WAIT_MS = 60_000;

interface Demo {
  url: string;
  token: string;
  stop(): Promise<number>;
}

let running: Demo | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function startDemo(args: string[] = []): Promise<Demo> {
  const proc = Bun.spawn([process.execPath, MAIN, "demo", "--port", "0", "--data", tempDir("kontobro-demo-"), "--interval", "1", ...args], {
    cwd: tempDir("kontobro-demo-cwd-"),
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let err = "";
  void (async () => {
    for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
  })();
  void (async () => {
    for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk);
  })();
  const stop = async () => {
    proc.kill("SIGTERM");
    return proc.exited;
  };
  try {
    const [, url, token] = (await waitFor(
      "the demo's banner",
      () => /Status page\s+(http:\S+)[\s\S]*API token\s+(\S+)/.exec(out),
      WAIT_MS,
    )) as RegExpExecArray;
    return { url: url!, token: token!, stop };
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\nstdout: ${out}\nstderr: ${err.slice(-2000)}`);
  }
}

const text = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text() };
};

/** What a browser submits for a form nobody edited: each named input's value, each select's selected (or first) option. */
function formDefaults(form: string): URLSearchParams {
  const fields = new URLSearchParams();
  const attr = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
  for (const [tag] of form.matchAll(/<input\b[^>]*>/g)) {
    const name = attr(tag, "name");
    const type = attr(tag, "type") ?? "text";
    if (!name || type === "submit" || ((type === "checkbox" || type === "radio") && !/\schecked\b/.test(tag))) continue;
    fields.append(name, attr(tag, "value") ?? (type === "checkbox" ? "on" : ""));
  }
  for (const [, open, options] of form.matchAll(/(<select\b[^>]*>)([\s\S]*?)<\/select>/g)) {
    const all = [...options!.matchAll(/<option\b[^>]*>/g)].map(([o]) => o);
    const chosen = all.find((o) => /\sselected\b/.test(o)) ?? all[0];
    if (attr(open!, "name") && chosen) fields.append(attr(open!, "name")!, attr(chosen, "value") ?? "");
  }
  return fields;
}

/** Every item the pulls brought back: the feed (which the PSA reads) and those kept as ignored. */
async function pulled(demo: Demo): Promise<{ type: string; data: any }[]> {
  const get = async (path: string) =>
    ((await (await fetch(`${demo.url}${path}`, { headers: { authorization: `Bearer ${demo.token}` } })).json()) as any).items ?? [];
  return [...(await get("/api/v1/inbox?limit=1000")), ...(await get("/api/v1/inbox/ignored?limit=1000"))];
}

async function waitForCostsAndPayments(demo: Demo): Promise<{ expense: { data: any }; paid: { data: any } }> {
  return (await waitFor(
    "a supplier cost and a paid invoice pulled back",
    async () => {
      const items = await pulled(demo);
      const expense = items.find((i) => i.type === "expense.posted");
      const paid = items.find((i) => i.type === "invoice.paid");
      return expense && paid ? { expense, paid } : null;
    },
    WAIT_MS,
  ))!;
}

/** The demo mailbox's first mail, opened from its list as a person would. */
async function firstMail(demo: Demo) {
  const [, id, subject] = (await waitFor(
    "a mail in the demo mailbox",
    async () => /href="\/ui\/demo\/mail\/(\d+)">([^<]+)</.exec((await text(`${demo.url}/ui/demo/mail`)).body),
    WAIT_MS,
  )) as RegExpExecArray;
  const page = await text(`${demo.url}/ui/demo/mail/${id}`);
  expect(page.status).toBe(200);
  const body = /<pre class="mail-text">([\s\S]*?)<\/pre>/.exec(page.body)?.[1] ?? "";
  const source = /<pre class="mail-source">([\s\S]*?)<\/pre>/.exec(page.body)?.[1] ?? "";
  return { subject: subject!, body, source };
}

describe("npm start (the demo)", () => {
  test(
    "pulls bring back supplier costs and payments, the status page's SIE export form works as it stands, the mailbox shows the alert",
    async () => {
      running = await startDemo();
      const demo = running;

      // The pulls: a supplier cost on a sample project and a sample invoice paid, in the feed and on the status page.
      const { expense, paid } = await waitForCostsAndPayments(demo);
      expect(expense.data.projectNumber).toMatch(/^\d+$/);
      expect(expense.data.amount).toBeGreaterThan(0);
      expect(paid.data.invoiceNumber).toMatch(/^2\d{4}$/);
      const status = await text(`${demo.url}/`);
      expect(status.body).toMatch(/data-inbox-item="\d+"/);
      expect(status.body).toMatch(/<td>(expense\.posted|invoice\.paid|invoice\.status_changed)<\/td>/);

      // The export form as the page renders it, submitted with its own defaults (as a browser would, same origin).
      const form = /<form[^>]*action="(\/ui\/exports\/run)"[^>]*>([\s\S]*?)<\/form>/.exec(status.body);
      expect(form).not.toBeNull();
      const fields = formDefaults(form![2]!);
      expect(fields.get("what")).toBe("sie4");
      const result = await text(`${demo.url}${form![1]}`, {
        method: "POST",
        body: fields,
        headers: { origin: demo.url, "content-type": "application/x-www-form-urlencoded" },
      });
      expect(result.status).toBe(200);
      const download = /href="(\/ui\/exports\/files\/\d+\/download)"/.exec(result.body)?.[1];
      expect(download).toBeDefined();
      const file = await fetch(`${demo.url}${download}`);
      expect(file.status).toBe(200);
      const sie = readSie(new Uint8Array(await file.arrayBuffer()));
      expect(sie.problems.filter((p) => p.severity === "error")).toEqual([]);
      expect(sie.document.companyName).toBe("Kontobro Demo AS");
      expect(sie.document.vouchers.length).toBeGreaterThan(0);

      // The demo mailbox, linked from the status page: the alert about the broken sample, as it would be sent.
      expect(status.body).toContain('href="/ui/demo/mail"');
      const mail = await firstMail(demo);
      expect(mail.subject).toContain("needs action");
      expect(mail.body).toContain("P-100-DEMO");
      expect(mail.body).toContain("How to fix:");
      expect(mail.source).toMatch(/^Subject: .*needs action/m);
      expect(mail.source).toMatch(/^Message-ID: /m);
      expect(mail.source).toContain("To: regnskap@example.no");

      expect(await demo.stop()).toBe(0);
    },
    WAIT_MS * 4,
  );

  // The default target is covered above; every other one whose connector pulls has its own person at work.
  const others = Object.keys(connectorKinds)
    .filter((k) => connectorKinds[k]!.startSandbox && connectorKinds[k]!.pulls && connectorKinds[k]!.startDemoActivity)
    .filter((k) => k !== Object.keys(connectorKinds).find((d) => connectorKinds[d]!.startSandbox));
  test.each(others)(
    "--target %s: supplier costs and payments are pulled back, and the alert is in the mailbox",
    async (kind) => {
      running = await startDemo(["--target", kind]);
      const { expense, paid } = await waitForCostsAndPayments(running);
      expect(expense.data.amount).toBeGreaterThan(0);
      expect(paid.data.invoiceNumber).toMatch(/^2\d{4}$/);
      expect((await firstMail(running)).body).toContain("P-100-DEMO");
    },
    WAIT_MS * 3,
  );
});
