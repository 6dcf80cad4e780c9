// One notice for one target: a single problem or recovery in its own words, or a digest with counts when
// several things happened since the last notice. Pure: the same notice becomes the mail (subject, text)
// and the webhook's JSON (with a short "text" that chat tools show as is).
import { showTime } from "../time.ts";
import { whatOf, type AlertRow } from "./alerts.ts";
import { UNREAD_SUBJECT } from "./unread-inbox.ts";
import { capitalise } from "../problem.ts";

export interface NoticeInput {
  target: string;
  /** "Visma e-conomic" */
  targetTitle: string;
  host: string;
  statusUrl: string;
  /** Problems not announced yet (still open). */
  opened: AlertRow[];
  /** Announced problems that are over now. */
  resolved: AlertRow[];
  /** Problems that came and went between two notices (never announced). */
  cameAndWent: number;
  /**
   * A reminder (Notifier.remind): `opened` are problems told before and still open; this is when the target's last
   * notice was stored (null: none is kept any more).
   */
  reminderSince?: number | null;
  /** Problems of this target still open after this notice. */
  stillOpen: number;
  minIntervalMinutes: number;
  version: string;
  now: number;
}

export interface Notice {
  subject: string;
  text: string;
  payload: Record<string, unknown>;
}

/** At most this many problems are written out in a digest; the rest are counted. */
export const DIGEST_DETAILS = 20;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function headline(a: AlertRow, title: string): string {
  if (a.kind === "delivery") return `${whatOf(a)} needs action`;
  if (a.kind === "pull") return a.code === "pull_overdue" ? `${whatOf(a)} has stopped completing` : `${whatOf(a)} failed`;
  if (a.kind === "storage") return "nothing is sent: the database cannot be made durable";
  if (a.kind === "disk") return `${whatOf(a)} is nearly full`;
  if (a.kind === "stalled" && a.code === "target_not_configured") return "deliveries are queued for a target not in kontobro.toml";
  if (a.kind === "stalled") return `the queue is stuck: ${a.detail.entity} ${a.detail.key} is not delivered yet`;
  if (a.kind === "psa" && a.subject === UNREAD_SUBJECT)
    return `the PSA has not taken ${plural(Number(a.detail.items), "item")} pulled from ${a.target}`;
  if (a.kind === "psa") return "the PSA webhook does not take what was pulled";
  return `${title} refuses kontobro's credentials`;
}

/** "invoice 20001 (delivery 17, 2 attempts)" */
function whatLine(a: AlertRow): string {
  const d = a.detail as Record<string, any>;
  if (a.kind === "delivery" && d.delivery === undefined) return `${whatOf(a)} (at ${a.target})`; // credited-after-push.ts
  if (a.kind === "delivery") return `${whatOf(a)} (delivery ${d.delivery}, ${plural(d.attempts ?? 0, "attempt")})`;
  if (a.kind === "pull") return d.run === undefined ? whatOf(a) : `${whatOf(a)} (run ${d.run})`;
  if (a.kind === "stalled" && d.delivery !== undefined)
    return `${whatOf(a)} (its oldest: ${d.entity} ${d.key}, delivery ${d.delivery}, ${plural(d.attempts ?? 0, "attempt")})`;
  return whatOf(a);
}

function problemBlock(a: AlertRow, indent = ""): string[] {
  return [
    `${indent}What:        ${whatLine(a)}`,
    `${indent}Problem:     ${a.message}`,
    ...(a.hint ? [`${indent}How to fix:  ${a.hint}`] : []),
    `${indent}Since:       ${showTime(a.openedAt)}`,
  ];
}

export function composeNotice(n: NoticeInput): Notice {
  const tag = `[kontobro] ${n.target}:`;
  const single = n.opened.length + n.resolved.length === 1;
  const lines: string[] = [`kontobro on ${n.host}, target "${n.target}" (${n.targetTitle})`, ""];
  let subject: string;
  if (n.reminderSince !== undefined) {
    subject = `${tag} reminder: ${plural(n.opened.length, "problem")} still open`;
    lines.push(
      `Reminder: ${n.opened.length === 1 ? "this problem is" : "these problems are"} still open${n.reminderSince ? ` since the last notice (${showTime(n.reminderSince)})` : ""}.`,
    );
    n.opened
      .slice(0, DIGEST_DETAILS)
      .forEach((a, i) => lines.push("", `${i + 1}. ${capitalise(headline(a, n.targetTitle))}`, ...problemBlock(a, "   ")));
    if (n.opened.length > DIGEST_DETAILS) lines.push("", `... and ${n.opened.length - DIGEST_DETAILS} more: see the status page.`);
  } else if (single && n.opened.length === 1) {
    const a = n.opened[0]!;
    subject = `${tag} ${headline(a, n.targetTitle)}`;
    lines.push(`${capitalise(headline(a, n.targetTitle))}.`, "", ...problemBlock(a));
  } else if (single) {
    const a = n.resolved[0]!;
    subject = `${tag} resolved: ${whatOf(a)} (${a.resolution})`;
    lines.push(`Resolved: ${whatOf(a)}: ${a.resolution}.`, "", `It needed action since ${showTime(a.openedAt)}: ${a.message}`);
  } else {
    subject =
      n.resolved.length === 0
        ? `${tag} ${plural(n.opened.length, "new problem")} need action`
        : n.opened.length === 0
          ? `${tag} ${plural(n.resolved.length, "problem")} resolved`
          : `${tag} ${plural(n.opened.length, "new problem")}, ${n.resolved.length} resolved`;
    lines.push(
      `Since the last notice: ${plural(n.opened.length, "new problem")}, ${n.resolved.length} resolved. Needing action now: ${n.stillOpen}.`,
    );
    if (n.opened.length > 0) {
      lines.push("", "New problems", "");
      n.opened
        .slice(0, DIGEST_DETAILS)
        .forEach((a, i) => lines.push(`${i + 1}. ${capitalise(headline(a, n.targetTitle))}`, ...problemBlock(a, "   "), ""));
      if (n.opened.length > DIGEST_DETAILS) lines.push(`... and ${n.opened.length - DIGEST_DETAILS} more: see the status page.`, "");
    }
    if (n.resolved.length > 0) {
      lines.push("", "Resolved", "");
      for (const a of n.resolved.slice(0, DIGEST_DETAILS))
        lines.push(`- ${capitalise(whatOf(a))}: ${a.resolution} (needed action since ${showTime(a.openedAt)})`);
      if (n.resolved.length > DIGEST_DETAILS) lines.push(`... and ${n.resolved.length - DIGEST_DETAILS} more.`);
    }
  }
  if (n.cameAndWent > 0) lines.push("", `${plural(n.cameAndWent, "other problem")} came and went since the last notice.`);
  lines.push(
    "",
    `Status page: ${n.statusUrl}`,
    "",
    "--",
    n.minIntervalMinutes > 0
      ? `kontobro ${n.version} sends at most one notice per target every ${n.minIntervalMinutes === 1 ? "minute" : `${n.minIntervalMinutes} minutes`}; what happens meanwhile comes in one digest.`
      : `kontobro ${n.version}.`,
    "Recipients are set in kontobro.toml, [notifications].",
  );
  const text = lines.join("\n") + "\n";
  const chat = [
    subject.replace(/^\[kontobro\] /, "kontobro: "),
    ...n.opened.slice(0, 10).map((a) => `• ${capitalise(whatOf(a))}: ${a.message}${a.hint ? ` (How to fix: ${a.hint})` : ""}`),
    ...n.resolved.slice(0, 10).map((a) => `• Resolved: ${whatOf(a)}: ${a.resolution}`),
    `Status page: ${n.statusUrl}`,
  ].join("\n");
  const item = (a: AlertRow) => ({
    kind: a.kind,
    what: whatOf(a),
    code: a.code,
    message: a.message,
    hint: a.hint,
    since: new Date(a.openedAt).toISOString(),
    detail: a.detail,
    ...(a.resolvedAt ? { resolvedAt: new Date(a.resolvedAt).toISOString(), resolution: a.resolution } : {}),
  });
  const payload = {
    type: "kontobro.notice",
    version: n.version,
    host: n.host,
    target: n.target,
    targetTitle: n.targetTitle,
    subject,
    text: chat,
    statusPage: n.statusUrl,
    at: new Date(n.now).toISOString(),
    // A reminder's problems were told before: none is new.
    reminder: n.reminderSince !== undefined,
    counts: {
      new: n.reminderSince !== undefined ? 0 : n.opened.length,
      resolved: n.resolved.length,
      cameAndWent: n.cameAndWent,
      open: n.stillOpen,
    },
    problems: n.opened.map(item),
    resolved: n.resolved.map(item),
  };
  return { subject, text, payload };
}
