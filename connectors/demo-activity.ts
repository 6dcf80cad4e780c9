// What a person does at the target during `kontobro demo` (ConnectorFactory.startDemoActivity): a connector's
// connectors/<kind>/demo.ts drives its sandbox's control API (/__sandbox/…) with these two helpers, so the
// pulls (supplier costs, payments) have something to bring back while the demo runs.

/** A call to a sandbox's control API: GET without a body, POST with one unless `method` says otherwise. Throws on an error answer. */
export type SandboxControl = (path: string, body?: unknown, method?: string) => Promise<any>;

export function sandboxControl(sandboxUrl: string): SandboxControl {
  const base = `${sandboxUrl.replace(/\/+$/, "")}/__sandbox`;
  return async (path, body, method = body === undefined ? "GET" : "POST") => {
    const res = await fetch(`${base}/${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} /__sandbox/${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };
}

/**
 * Runs `round` now and again `intervalMs` after each round ends (never two at once). A failed round is logged
 * and the next one comes anyway. Returns the stop; a round under way when stopped logs nothing more.
 */
export function demoLoop(round: () => Promise<void>, intervalMs: number, log: (msg: string) => void): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = async () => {
    try {
      await round();
    } catch (e) {
      if (!stopped) log(`demo activity failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!stopped) timer = setTimeout(run, intervalMs);
  };
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * How many of the PSA's projects get a supplier cost in one demo: enough to show, and few enough that a pull
 * re-reading its lookback window does not grow without end while the demo runs for hours.
 */
export const DEMO_COSTED_PROJECTS = 30;

/** Today's date (YYYY-MM-DD) on this machine's clock, the day the demo books things on. */
export const demoToday = (now = new Date()) =>
  `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;

/** A one-page PDF, small and valid: a scanned receipt for the sandbox's supplier invoices. */
export const SAMPLE_RECEIPT_BASE64 = Buffer.from(
  "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 298 421]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
).toString("base64");
