// The status page keeps itself up to date without wiping what a person is doing: a small inline script
// reloads it every few seconds only while no form field has focus or differs from what the page was
// served with, no table of numbers is open and nobody pressed "Pause updates". Without JavaScript the
// page says how to refresh it (a plain link). ?refresh=N sets the interval (0 turns it off; tests use 1).
import { html, raw } from "hono/html";

export const DEFAULT_REFRESH_SECONDS = 10;

/** The interval asked for by ?refresh=N (whole seconds, 0 to 3600), else the default. */
export function refreshSeconds(query: string | undefined): number {
  const n = query !== undefined && /^\d{1,4}$/.test(query) ? Number(query) : Number.NaN;
  return Number.isInteger(n) && n <= 3600 ? n : DEFAULT_REFRESH_SECONDS;
}

/** The line under the header: how often the page updates, why it is holding still, and a Refresh link (the page is at `${base}/`). */
export function refreshNote(seconds: number, base = "") {
  const href = seconds === DEFAULT_REFRESH_SECONDS ? `${base}/` : `${base}/?refresh=${seconds}`;
  return html`<p class="refresh-note muted" id="refresh-note">${seconds > 0 ? `Updates every ${seconds} s` : "Automatic updates are off"}<span id="refresh-state"></span> · <a href="${href}">Refresh</a>
<button type="button" id="refresh-pause" class="link" hidden>Pause updates</button></p>
<script>${raw(REFRESH_SCRIPT)}</script>`;
}

// Runs right after the note is parsed; the interval is on <body data-refresh-seconds>.
const REFRESH_SCRIPT = `(() => {
  const seconds = Number(document.body.dataset.refreshSeconds);
  if (!(seconds > 0)) return;
  const state = document.getElementById("refresh-state");
  const pause = document.getElementById("refresh-pause");
  let paused = false;
  pause.hidden = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume updates" : "Pause updates";
    pause.setAttribute("aria-pressed", String(paused));
    show(holdReason());
  });
  const fields = () => document.querySelectorAll("input, select, textarea");
  const changed = (el) => {
    if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
    if (el.tagName === "SELECT") {
      const options = [...el.options];
      const anyDefault = options.some((o) => o.defaultSelected);
      return options.some((o, i) => o.selected !== (o.defaultSelected || (!anyDefault && !el.multiple && i === 0)));
    }
    return el.value !== el.defaultValue;
  };
  const holdReason = () => {
    if (paused) return "paused";
    const active = document.activeElement;
    if (active && active !== pause && active.matches("input, select, textarea, button")) return "while a form field has focus";
    if ([...fields()].some(changed)) return "while a form has changes not sent";
    if (document.querySelector("details[open]")) return "while a table of numbers is open";
    return "";
  };
  const show = (reason) => {
    const text = !reason ? "" : reason === "paused" ? " (paused)" : " (held " + reason + ")";
    if (state.textContent !== text) state.textContent = text;
  };
  setInterval(() => {
    const reason = holdReason();
    if (reason) show(reason);
    else location.reload();
  }, seconds * 1000);
})();`;

export const REFRESH_CSS = `
.refresh-note{margin:0 0 12px} .refresh-note button.link{background:none;color:#1849a9;padding:0 4px;text-decoration:underline;font:inherit}`;
