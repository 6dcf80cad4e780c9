// How kontobro shows a time to a person: on the status pages (agent/http/status-*.ts) and in the target's
// state line: UTC to the second, "2026-03-31 14:05:09 UTC", or "never" when there is none.
export function showTime(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "never";
}
