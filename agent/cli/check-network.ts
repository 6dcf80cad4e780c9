// `kontobro check`'s first question for each target: can this server reach it, and how (directly or
// through which proxy)? One HEAD request to the target's address: any HTTP answer means reachable; no
// answer is described as the agent would describe it (DNS, a refused connection, the proxy, a timeout).
import { currentProxy, networkError, proxyFor, proxyOption, showProxy } from "../../connectors/http.ts";
import type { TargetConfig } from "../config.ts";

/** The target's address: the first http(s) URL among its *_url settings (rest_url, base_url, api_url, …). */
export function targetAddress(t: TargetConfig): string | null {
  for (const [key, value] of Object.entries((t.settings ?? {}) as Record<string, unknown>)) {
    if (key.endsWith("_url") && typeof value === "string" && /^https?:\/\//i.test(value)) return value;
  }
  return null;
}

export async function reachability(t: TargetConfig, title: string, timeoutMs = 10_000): Promise<{ ok: boolean; lines: string[] }> {
  const url = targetAddress(t);
  if (!url) return { ok: true, lines: [] };
  const { host, origin } = new URL(url);
  const proxy = proxyFor(url);
  const s = currentProxy();
  const https = url.toLowerCase().startsWith("https:");
  const how = proxy
    ? `through the proxy ${showProxy(proxy)} (from ${s.source})`
    : (https ? s.https : s.http)
      ? `directly (${host} is in NO_PROXY / [proxy] no_proxy)`
      : s.source !== "none"
        ? `directly (no proxy for ${https ? "https" : "http"} URLs: ${https ? "HTTPS_PROXY" : "HTTP_PROXY"} is not set)`
        : "directly (no proxy: neither [proxy] url nor HTTPS_PROXY/HTTP_PROXY is set)";
  const lines = [`  network: ${host} ${how}`];
  try {
    const res = await fetch(`${origin}/`, {
      method: "HEAD",
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
      ...proxyOption(url),
    });
    await res.arrayBuffer().catch(() => {});
    // A proxy that cannot reach the target answers for it: 502 Bad Gateway or 504 Gateway Timeout.
    if (proxy && (res.status === 502 || res.status === 504)) {
      lines.push(
        `  FAIL reachable: the proxy ${showProxy(proxy)} answered ${res.status} for ${host}: it could not reach ${title}`,
        `       fix: Check that the proxy may reach ${host} (its allow list, its DNS), or put ${host} in NO_PROXY / [proxy] no_proxy if it is reachable directly.`,
      );
      return { ok: false, lines };
    }
    lines.push(`  ok   reachable: ${host} answered (HTTP ${res.status})`);
    return { ok: true, lines };
  } catch (e) {
    const err = networkError(e, false, "HEAD", `${origin}/`, title, proxy);
    lines.push(
      `  FAIL reachable: ${err.message}`,
      `       fix: ${err.hint}`,
      "       (the other checks of this target need the connection; skipped)",
    );
    return { ok: false, lines };
  }
}
