// Small DOM helpers: every page is built with h(), errors are shown with the API's message.
import { APIError } from "./api.js";

// h builds an element: attrs sets properties (on* are listeners, class, for, aria-*, data-*
// and the like are attributes); children are nodes, strings or arrays of them (null skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (["class", "for", "role", "hidden", "list", "form", "scope"].includes(k) || k.startsWith("aria-") || k.startsWith("data-"))
      el.setAttribute(k, v === true ? "" : v);
    else el[k] = v;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// page replaces the main region with a titled page and moves focus to its heading, so a
// screen reader announces the new page.
export function page(title, ...children) {
  const main = document.getElementById("main");
  const heading = h("h1", { tabIndex: -1 }, title);
  main.replaceChildren(heading, ...children.flat(Infinity).filter(Boolean));
  document.title = title + " · Unified Profiles";
  heading.focus();
  return main;
}

// flash says something in the polite live region at the top.
export function flash(message) {
  const f = document.getElementById("flash");
  f.textContent = message;
}

// errorBox shows an error: an API error with its message (and the field it names).
export function errorBox(err) {
  const box = h("div", { class: "error", role: "alert" });
  if (err instanceof APIError) {
    const field = err.detail.field ? " (" + err.detail.field + ")" : "";
    box.append(err.message + field);
  } else {
    box.append(String(err && err.message ? err.message : err));
  }
  return box;
}

// guard runs an async action from a button, disabling it meanwhile and showing any error
// in place of the element given (or before the button).
export function guard(button, where, fn) {
  return async (ev) => {
    if (ev) ev.preventDefault();
    const prev = where.querySelector(":scope > .error");
    if (prev) prev.remove();
    const focused = document.activeElement === button;
    button.disabled = true; // a disabled button loses the focus, to the page's body
    try {
      await fn();
    } catch (e) {
      where.prepend(errorBox(e));
    } finally {
      button.disabled = false;
      // Give the focus back, unless the action moved it (a new page's heading, a next button).
      if (focused && button.isConnected && (!document.activeElement || document.activeElement === document.body)) button.focus();
    }
  };
}

// field is a labelled input; the label's for names the input's id.
export function field(label, input, help) {
  return h("div", null, h("label", { for: input.id }, label), input, help ? h("div", { class: "muted" }, help) : null);
}

// statusBadge shows a status word with its class.
export function statusBadge(s) {
  return h("span", { class: "status " + s }, s.replaceAll("_", " "));
}

// table renders rows of cells under headers.
export function table(headers, rows, attrs) {
  return h("table", attrs || null,
    h("thead", null, h("tr", null, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, c))))));
}

// usageChanged asks the shell to redraw the entitlement usage bar, after a page took or
// freed a slot (a source, a computed trait) without changing route.
export function usageChanged() {
  document.dispatchEvent(new Event("up:usage"));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// copyText puts text on the clipboard (falling back to a selected textarea where the
// Clipboard API is refused, e.g. over plain http on another host).
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h("textarea", { value: text });
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}
