// The console's router and shell: sign-in, the operator's beta page, workspace creation, and
// the usage bar every signed-in page shows.
import { api, session, setSession, workspace } from "./api.js";
import { h, page, field, guard, flash, errorBox } from "./ui.js";
import { overview, csvPage, trackingPage, identifiersPage, checkPage } from "./setup.js";
import { warehousePage } from "./warehouse.js";
import { debuggerPage, explorerPage } from "./tools.js";

const signedIn = {
  "#/setup": overview,
  "#/setup/csv": csvPage,
  "#/setup/website": () => trackingPage("website"),
  "#/setup/mobile": () => trackingPage("mobile"),
  "#/setup/warehouse": warehousePage,
  "#/setup/identifiers": identifiersPage,
  "#/setup/check": checkPage,
  "#/debugger": debuggerPage,
  "#/explorer": explorerPage,
};
const open = { "#/signin": signIn, "#/operator": operator, "#/create": createWorkspace };
// nextFlash is said by the next route(), which otherwise clears the flash of the page before.
let nextFlash = "";

async function route() {
  const hash = location.hash || "#/setup";
  const [path] = hash.split("?");
  flash(nextFlash);
  nextFlash = "";
  const s = session();
  document.getElementById("nav").hidden = !s;
  document.getElementById("workspace-name").textContent = s ? s.name : "";
  if (open[path]) {
    document.getElementById("usage").hidden = true;
    return open[path]();
  }
  if (!s) {
    location.hash = "#/signin";
    return;
  }
  const show = signedIn[path] || overview;
  try {
    await Promise.all([show(), showUsage()]);
  } catch (e) {
    if (e.status === 401) { // the token was rotated or is wrong: sign in again
      setSession(null);
      nextFlash = "Your session ended: sign in again with the workspace token.";
      location.hash = "#/signin"; // route() runs again, on hashchange, and says it
      return;
    }
    page("Something went wrong", errorBox(e));
  }
}

// showUsage writes the entitlement usage bar (sources, destinations, spaces, computed traits,
// predictions) from the workspace's usage.
export async function showUsage() {
  const w = await workspace();
  const bar = document.getElementById("usage");
  const names = { sources: "Sources", destinations: "Destinations", spaces: "Spaces", computed_traits: "Computed traits", predictions: "Predictions" };
  bar.replaceChildren(...Object.entries(names).filter(([k]) => w.usage && w.usage[k]).map(([k, label]) =>
    h("span", { "data-usage": k }, label + ": " + w.usage[k].used + " of " + w.usage[k].limit)));
  bar.hidden = false;
  return w;
}

function signIn() {
  const token = h("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const go = h("button", { type: "submit" }, "Sign in");
  const form = h("form", null, field("Workspace token", token, "The token shown once when the workspace was created (or after a rotation)."), go);
  form.addEventListener("submit", guard(go, form, async () => {
    const me = await api("GET", "/v1/me", undefined, token.value.trim());
    setSession({ token: token.value.trim(), workspace_id: me.workspace_id, name: me.name });
    location.hash = "#/setup";
  }));
  page("Sign in", form,
    h("p", { class: "muted" }, "No workspace yet? ", h("a", { href: "#/create" }, "Create one with your invite"), ". Operators accept accounts into the beta on the ", h("a", { href: "#/operator" }, "operator page"), "."));
}

function operator() {
  const token = h("input", { id: "operator-token", type: "password", autocomplete: "off" });
  const sid = h("input", { id: "account-sid", type: "text", placeholder: "AC…" });
  const go = h("button", { type: "submit" }, "Accept into the beta");
  const out = h("div", { "aria-live": "polite" });
  const form = h("form", null, field("Operator token", token), field("Flex account SID", sid), go, out);
  form.addEventListener("submit", guard(go, form, async () => {
    const acc = await api("POST", "/v1/beta/accounts", { account_sid: sid.value.trim() }, token.value.trim());
    out.replaceChildren(h("div", { class: "notice" },
      h("p", null, "Account ", acc.account_sid, " is in the beta. Its single-use invite token:"),
      h("pre", { id: "invite-token" }, acc.invite_token),
      h("a", { href: "#/create" }, "Create the workspace with it")));
  }));
  page("Beta acceptance (operator)", form);
}

function createWorkspace() {
  const invite = h("input", { id: "invite", type: "password", autocomplete: "off" });
  const name = h("input", { id: "ws-name", type: "text" });
  const sid = h("input", { id: "ws-account-sid", type: "text", placeholder: "AC…" });
  const go = h("button", { type: "submit" }, "Create workspace");
  const out = h("div");
  const form = h("form", null, field("Invite token", invite, "From beta acceptance (or the operator token)."), field("Workspace name", name), field("Flex account SID", sid), go, out);
  form.addEventListener("submit", guard(go, form, async () => {
    const w = await api("POST", "/v1/workspaces", { name: name.value.trim(), account_sid: sid.value.trim() }, invite.value.trim());
    const cont = h("button", { type: "button", id: "continue" }, "Continue to the guided setup");
    cont.addEventListener("click", () => {
      setSession({ token: w.token, workspace_id: w.id, name: w.name });
      location.hash = "#/setup";
    });
    out.replaceChildren(h("div", { class: "notice" },
      h("p", null, "Workspace ", h("strong", null, w.name), " is ready. Its token is shown only now: keep it somewhere safe."),
      h("pre", { id: "workspace-token" }, w.token), cont));
    cont.focus();
  }));
  page("Create a Unified Profiles workspace", form);
}

document.getElementById("sign-out").addEventListener("click", () => {
  setSession(null);
  location.hash = "#/signin";
});
window.addEventListener("hashchange", route);
document.addEventListener("up:usage", () => { if (session()) showUsage().catch(() => {}); });
route();
