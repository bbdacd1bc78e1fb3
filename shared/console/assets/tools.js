// Troubleshooting: the event debugger (live tail by polling, which works behind API Gateway's
// buffering) and the profile explorer.
import { api, ws } from "./api.js";
import { h, page, field, guard, errorBox, statusBadge, table, sleep } from "./ui.js";

let tail = 0; // the running tail's generation: a new page stops the old loop

export async function debuggerPage() {
  const sources = ((await api("GET", ws("/sources"))).sources || []);
  // The workspace's own sources first: the two auto-created ones rarely hold what one looks for.
  const ordered = sources.filter((s) => !s.auto_created).concat(sources.filter((s) => s.auto_created));
  const sel = h("select", { id: "debugger-source" }, ordered.map((s) => h("option", { value: s.id }, s.name + " (" + s.type + ")")));
  const search = h("input", { type: "text", id: "debugger-search", placeholder: "user id, email, event name…" });
  const pause = h("button", { type: "button", id: "debugger-pause", class: "secondary", "aria-pressed": "false" }, "Pause");
  const out = h("div", { id: "debugger-events" });
  const state = h("p", { class: "muted", role: "status" });
  let paused = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
  });
  page("Event debugger",
    sources.length ? null : h("p", { class: "notice" }, "No sources yet: connect one in the guided setup."),
    h("div", { class: "row" }, field("Source", sel), field("Search", search)), pause, state, out);
  const gen = ++tail;
  while (gen === tail && document.getElementById("debugger-events") === out) {
    if (!paused && sel.value) {
      try {
        const q = "?limit=50" + (search.value.trim() ? "&search=" + encodeURIComponent(search.value.trim()) : "");
        const r = await api("GET", ws("/sources/" + sel.value + "/debugger" + q));
        const entries = r.entries || [];
        out.replaceChildren(entries.length ? table(["Received", "Type", "Status", "Who", "Outcome"], entries.map((e) => {
          const n = e.normalised || {};
          const who = n.user_id || n.anonymous_id || "";
          const what = n.event ? n.type + " · " + n.event : n.type || "";
          const outcome = e.rejection ? e.rejection.message || e.rejection.code : e.outcome ? (e.outcome.created ? "profile created " : "profile ") + (e.outcome.profile_id || "") : "";
          return [new Date(e.received_at).toLocaleTimeString(), what, statusBadge(e.status || ""), who, outcome];
        }), { "aria-label": "Latest events" }) : h("p", { class: "muted" }, "No events yet. Send some and they appear here."));
        state.textContent = "Live: updated " + new Date().toLocaleTimeString();
      } catch (e) {
        out.replaceChildren(errorBox(e));
      }
    }
    await sleep(1500);
  }
}

export async function explorerPage() {
  const spaces = (await api("GET", ws("/spaces"))).spaces || [];
  const space = h("select", { id: "explorer-space" }, spaces.map((s) => h("option", { value: s.id }, s.name)));
  const type = h("input", { type: "text", id: "explorer-type", value: "email", list: "identifier-types" });
  const value = h("input", { type: "text", id: "explorer-value", required: true });
  const go = h("button", { type: "submit", id: "explorer-search" }, "Search");
  const out = h("div", { id: "explorer-result" });
  const form = h("form", { role: "search" },
    h("datalist", { id: "identifier-types" }, ["user_id", "email", "phone", "anonymous_id", "ga_client_id", "android.id", "ios.id"].map((t) => h("option", { value: t }))),
    h("div", { class: "row" }, field("Space", space), field("Identifier type", type), field("Value", value)), go);
  form.addEventListener("submit", guard(go, form, async () => {
    const id = type.value.trim() + ":" + value.value.trim();
    const found = (await api("GET", ws("/spaces/" + space.value + "/profiles?identifier=" + encodeURIComponent(id)))).profiles || [];
    if (!found.length) {
      out.replaceChildren(h("p", { class: "notice", id: "explorer-none" }, "No profile has the identifier ", h("code", null, id), "."));
      return;
    }
    const p = await api("GET", ws("/spaces/" + space.value + "/profiles/" + encodeURIComponent(found[0].id)));
    out.replaceChildren(profileView(p));
  }));
  page("Profile explorer", form, out);
}

function profileView(p) {
  const kv = (obj, label) => {
    const entries = Object.entries(obj || {});
    return entries.length ? table(["Name", "Value"], entries.map(([k, v]) => [h("code", null, k), typeof v === "object" ? JSON.stringify(v) : String(v)]), { "aria-label": label })
      : h("p", { class: "muted" }, "None.");
  };
  return h("article", { id: "profile", "aria-labelledby": "profile-id" },
    h("h2", { id: "profile-id" }, "Profile ", h("code", null, p.id)),
    h("p", { class: "muted" }, "Created ", new Date(p.created_at).toLocaleString(), " · updated ", new Date(p.updated_at).toLocaleString()),
    h("h3", null, "Identifiers"),
    table(["Type", "Value", "First seen", "Source"], (p.identifiers || []).map((i) => [i.type, i.value, new Date(i.first_seen).toLocaleString(), i.source_id || ""]), { id: "profile-identifiers", "aria-label": "Identifiers" }),
    h("h3", null, "Traits"), h("div", { id: "profile-traits" }, kv(p.traits, "Traits")),
    h("h3", null, "Computed traits"), h("div", { id: "profile-computed" }, kv(p.computed_traits, "Computed traits")),
    h("h3", null, "Latest events"),
    (p.events || []).length ? table(["Time", "Type", "Event", "Source"], p.events.map((e) => [new Date(e.timestamp).toLocaleString(), e.type, e.event || "", e.source_id || ""]), { id: "profile-events", "aria-label": "Events" }) : h("p", { class: "muted" }, "None."),
    h("h3", null, "Merges"),
    h("p", { id: "profile-merges" }, p.merges && p.merges.count ? p.merges.count + " merged: " + p.merges.merged_ids.join(", ") : "No merges."),
    h("h3", null, "Identity violations"),
    (p.violations || []).length ? table(["When", "What"], p.violations.map((v) => [v.at ? new Date(v.at).toLocaleString() : "", v.message || JSON.stringify(v)]), { id: "profile-violations" }) : h("p", { class: "muted" }, "None."));
}
