// The guided setup (the seed's four steps): choose the data source, add connections (CSV,
// website, mobile; the warehouse in warehouse.js), identifiers and computed traits, and the
// configuration check.
import { api, ws, workspace, download, firstSpace } from "./api.js";
import { h, page, field, guard, flash, errorBox, statusBadge, table, sleep, copyText, usageChanged } from "./ui.js";
import { predictiveTraits } from "./predictions.js";

export const kinds = {
  csv: { label: "CSV", text: "Upload profiles and custom traits from CSV files (fewer than 10,000 rows each).", page: "#/setup/csv", action: "Upload CSV" },
  salesforce_warehouse: { label: "Salesforce and a data warehouse", text: "Connect Salesforce, then model its records in your warehouse.", page: "#/setup/warehouse", action: "Connect data warehouse" },
  warehouse: { label: "A data warehouse", text: "Model customer records with SQL in PostgreSQL, Redshift, BigQuery or Snowflake.", page: "#/setup/warehouse", action: "Connect data warehouse" },
  website: { label: "A website", text: "Install the Segment snippet on your website.", page: "#/setup/website", action: "Connect website" },
  mobile: { label: "A mobile app", text: "Add Analytics to your iOS or Android app.", page: "#/setup/mobile", action: "Connect mobile app" },
};

const stepNames = [
  ["select_data_source", "Step 1: Select your data source"],
  ["add_connections", "Step 2: Add connections"],
  ["identifiers_and_traits", "Step 3: Add identifiers and traits"],
  ["check_configuration", "Step 4: Check configuration"],
];

function stepStatus(w, key) {
  const s = w.setup.steps[key];
  return s ? s.status : "not_started";
}

export async function overview() {
  const w = await workspace();
  const setup = w.setup;
  const choice = (kind) => {
    const input = h("input", { type: "radio", name: "data-source", id: "kind-" + kind, value: kind, checked: setup.data_source === kind, disabled: setup.locked && setup.data_source !== kind });
    return h("div", { class: "choice" }, h("label", { for: input.id }, input, kinds[kind].label), h("div", { class: "muted" }, kinds[kind].text));
  };
  const next = h("button", { type: "submit", id: "choose-source", disabled: setup.locked }, "Next");
  const form = h("form", { "aria-labelledby": "step1" }, h("fieldset", null, h("legend", null, "Where does your customer data come from?"),
    h("div", { class: "choices" }, Object.keys(kinds).map(choice))),
    setup.locked ? h("p", { class: "notice", id: "locked" }, "The data source is locked: you have taken action on ", kinds[setup.data_source].label, ". Add other sources after the guided setup.") : null,
    next);
  form.addEventListener("submit", guard(next, form, async () => {
    const picked = form.querySelector("input[name=data-source]:checked");
    if (!picked) throw new Error("Choose a data source first.");
    if (!confirm(kinds[picked.value].label + ": " + kinds[picked.value].text + "\n\nOnce you take action in the next step you cannot change this choice (except for CSV). Continue?")) return;
    await api("PUT", ws("/setup/data-source"), { kind: picked.value });
    location.hash = kinds[picked.value].page;
  }));
  const tile = (key, title, body) => h("section", { class: "tile", "data-step": key, "aria-labelledby": "h-" + key },
    h("h2", { id: "h-" + key }, title), h("p", null, "Status: ", statusBadge(stepStatus(w, key))), body);
  const ds = setup.data_source && kinds[setup.data_source];
  page("Getting started",
    h("p", null, "Set up Unified Profiles in four steps. Each step's status updates as you go."),
    h("div", { class: "tiles" },
      tile("select_data_source", stepNames[0][1], ds ? h("p", null, "Chosen: ", h("strong", null, ds.label)) : h("p", null, "Choose below.")),
      tile("add_connections", stepNames[1][1], ds ? h("a", { class: "button", href: ds.page, id: "go-connections" }, ds.action) : h("p", { class: "muted" }, "Choose a data source first.")),
      tile("identifiers_and_traits", stepNames[2][1], h("a", { class: "button", href: "#/setup/identifiers", id: "go-identifiers" }, "Add identifiers and traits")),
      tile("check_configuration", stepNames[3][1], h("a", { class: "button", href: "#/setup/check", id: "go-check" }, "Check configuration"))),
    h("h2", { id: "step1" }, stepNames[0][1]), form);
}

// ---- Step 2: CSV --------------------------------------------------------------------------

export async function csvPage() {
  const tmpl = h("button", { type: "button", id: "download-template", class: "secondary" }, "Download template");
  const top = h("div");
  tmpl.addEventListener("click", guard(tmpl, top, () => download(ws("/csv/template"), "unified-profiles-template.csv")));
  const input = h("input", { type: "file", id: "csv-file", accept: ".csv,text/csv" });
  const drop = h("div", { class: "drop", id: "drop-zone" }, "Drop a CSV file here, or pick one below.");
  const picked = h("p", { class: "muted", id: "picked" });
  let file = null;
  const pick = (f) => { file = f; picked.textContent = f ? "Selected: " + f.name + " (" + f.size + " bytes)" : ""; };
  input.addEventListener("change", () => pick(input.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); pick(e.dataTransfer.files[0]); });
  const go = h("button", { type: "button", id: "upload" }, "Upload");
  const result = h("div", { id: "upload-result" });
  const history = h("div", { id: "upload-history" });
  go.addEventListener("click", guard(go, result, async () => {
    if (!file) throw new Error("Pick a CSV file first.");
    await uploadCSV(file, result);
    await showUploads(history);
  }));
  page("Upload profiles and custom traits",
    h("p", null, "Download the template, fill in identifiers and traits (values are case sensitive; a new column becomes a custom trait), then upload the file. One file at a time, fewer than 10,000 rows, with the allowed characters only."),
    top, tmpl, drop, field("CSV file", input), picked, go, result,
    h("h2", null, "Uploads"), history,
    h("p", null, h("a", { class: "button secondary", href: "#/setup", id: "finish" }, "Finish"), h("a", { class: "button secondary", href: "#/setup/identifiers" }, "Add identifiers and traits")));
  await showUploads(history);
}

// uploadCSV requests a presigned POST, sends the file straight to storage with a progress
// bar, then follows validation and ingest until the upload completes or fails.
async function uploadCSV(file, out) {
  const bar = h("progress", { id: "upload-progress", max: 100, value: 0, "aria-label": "Upload progress" });
  const pct = h("span", { id: "upload-percent" }, "0 %");
  const status = h("p", { id: "upload-status", role: "status" }, "Requesting an upload URL…");
  out.replaceChildren(h("label", { for: "upload-progress" }, "Sending ", file.name), bar, " ", pct, status);
  const req = await api("POST", ws("/csv/uploads"), { filename: file.name, size: file.size });
  status.textContent = "Uploading…";
  await new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(req.upload.method, req.upload.url);
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const p = Math.floor((e.loaded / e.total) * 100);
      bar.value = p;
      pct.textContent = p + " %";
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        pct.textContent = "100 %";
        resolve();
        return;
      }
      const m = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
      reject(new Error("Storage refused the file (" + xhr.status + "): " + (m ? m[1] : xhr.statusText)));
    });
    xhr.addEventListener("error", () => reject(new Error("The upload did not reach storage: check your connection and try again.")));
    const form = new FormData();
    for (const [k, v] of Object.entries(req.upload.fields || {})) form.append(k, v);
    form.append("file", file);
    xhr.send(form);
  });
  status.textContent = "Upload complete. Validating…";
  const ingest = h("progress", { id: "ingest-progress", max: 100, value: 0, "aria-label": "Ingest progress" });
  const rows = h("span", { id: "ingest-rows" });
  out.append(h("label", { for: "ingest-progress" }, "Ingesting rows"), ingest, " ", rows);
  for (;;) {
    const u = await api("GET", ws("/csv/uploads/" + encodeURIComponent(req.id)));
    if (u.rows_total) {
      ingest.value = Math.floor((u.rows_done / u.rows_total) * 100);
      rows.textContent = u.rows_done + " of " + u.rows_total + " rows";
    }
    status.textContent = "Upload " + u.status.replaceAll("_", " ") + (u.failure ? ": " + u.failure : "");
    if (u.status === "completed" || u.status === "failed") {
      status.className = "status " + u.status;
      if (u.errors && u.errors.length) {
        out.append(h("h3", null, "Problems in the file (", String(u.errors_total || u.errors.length), ")"),
          table(["Row", "Column", "Problem"], u.errors.map((e) => [e.row ?? "", e.column ?? "", e.message]), { id: "upload-errors" }),
          h("p", null, "Fix the file and upload it again; nothing was changed where the file was refused."));
      }
      if (u.status === "completed") flash("Upload complete: " + (u.rows_done || 0) + " rows.");
      return u;
    }
    await sleep(400);
  }
}

async function showUploads(where) {
  const list = (await api("GET", ws("/csv/uploads"))).uploads || [];
  where.replaceChildren(list.length ? table(["File", "Status", "Rows", "Errors", "Created"],
    list.map((u) => [u.filename, statusBadge(u.status), (u.rows_done ?? 0) + " / " + (u.rows_total ?? 0), String(u.errors_total ?? (u.errors || []).length), new Date(u.created_at).toLocaleString()]))
    : h("p", { class: "muted" }, "No uploads yet."));
}

// ---- Step 2: website and mobile -----------------------------------------------------------

const trackingTypes = { website: ["javascript"], mobile: ["swift", "kotlin"] };
const typeLabels = { javascript: "JavaScript", swift: "iOS (Swift)", kotlin: "Android (Kotlin)" };

export async function trackingPage(kind) {
  const sources = ((await api("GET", ws("/sources"))).sources || []).filter((s) => trackingTypes[kind].includes(s.type) && !s.auto_created);
  const title = kind === "website" ? "Connect your website" : "Connect your mobile app";
  if (!sources.length) {
    const name = h("input", { type: "text", id: "source-name", required: true });
    const extra = kind === "website"
      ? field("Website URL", h("input", { type: "url", id: "source-url", placeholder: "https://www.example.com" }), "For your reference: the snippet works on any page that includes it.")
      : h("fieldset", null, h("legend", null, "Operating system"),
        h("label", null, h("input", { type: "radio", name: "os", value: "swift", checked: true }), " iOS (Swift)"),
        h("label", null, h("input", { type: "radio", name: "os", value: "kotlin" }), " Android (Kotlin)"));
    const go = h("button", { type: "submit", id: "create-source" }, "Create source");
    const form = h("form", null, field(kind === "website" ? "Website name" : "Source name", name), extra, go);
    form.addEventListener("submit", guard(go, form, async () => {
      const type = kind === "website" ? "javascript" : form.querySelector("input[name=os]:checked").value;
      const body = { name: name.value.trim(), type };
      const url = form.querySelector("#source-url");
      if (url && url.value.trim()) body.url = url.value.trim();
      await api("POST", ws("/sources"), body);
      usageChanged();
      await trackingPage(kind);
    }));
    page(title, form);
    return;
  }
  const src = sources[0];
  const sn = await api("GET", ws("/sources/" + src.id + "/snippet"));
  const copy = h("button", { type: "button", id: "copy-snippet", class: "secondary" }, "Copy snippet");
  const copied = h("span", { id: "copy-status", role: "status" });
  copy.addEventListener("click", async () => {
    copied.textContent = (await copyText(sn.snippet)) ? "Copied to the clipboard." : "Copy failed: select the text and copy it.";
  });
  const test = h("button", { type: "button", id: "test-connection" }, "Test connection");
  const result = h("div", { id: "test-result", "aria-live": "polite" });
  test.addEventListener("click", guard(test, result, async () => {
    const r = await api("POST", ws("/sources/" + src.id + "/test-connection"));
    const seen = Object.entries(r.seen || {}).map(([k, v]) => h("li", { "data-seen": k }, (v ? "✓ " : "✗ ") + k));
    result.replaceChildren(h("div", { class: r.ok ? "notice" : "error", id: "test-outcome" },
      r.ok ? "Connection works: events arrived." : "Not yet: " + (r.reason || "no events have arrived.")), h("ul", null, seen));
  }));
  page(title,
    h("p", null, "Source ", h("strong", null, src.name), " (", typeLabels[src.type] || src.type, "), write key ", h("code", { id: "write-key" }, src.write_key), "."),
    h("h2", null, kind === "website" ? "Paste the snippet into the header of your website" : "Add Analytics to your app"),
    h("pre", { id: "snippet" }, sn.snippet), copy, copied,
    h("h2", null, "Test the connection"),
    h("p", null, kind === "website" ? "Open a few pages of your website, then test." : "Open a few screens of your app, then test."),
    test, result,
    h("p", null, h("a", { class: "button secondary", href: "#/setup", id: "done" }, "Done")));
}

// ---- Step 3: identifiers and traits -------------------------------------------------------

const windows = ["ever", "weekly", "monthly", "annually"];
const presets = [["total_inbounds", "Total inbounds"], ["frequent_inbound_channel", "Frequent inbound channel"]];

export async function identifiersPage() {
  const space = await firstSpace();
  const sp = space.id;
  const info = await api("GET", ws("/setup/identifiers-and-traits?space_id=" + encodeURIComponent(sp)));
  let list = info.identifiers.map((i) => ({ ...i }));
  const defaults = new Set(info.identifiers.filter((i) => i.default).map((i) => i.type).concat(info.available_defaults || []));
  const idTable = h("div", { id: "identifiers" });
  const draw = () => {
    idTable.replaceChildren(table(["Priority", "Identifier", "Limit", "Window", "Kind", ""], list.map((it, i) => {
      const edit = h("button", { type: "button", class: "secondary", "aria-label": "Edit " + it.type }, "Edit");
      const del = h("button", { type: "button", class: "secondary", "aria-label": "Delete " + it.type }, "Delete");
      edit.addEventListener("click", () => editIdentifier(it, draw));
      del.addEventListener("click", () => { list.splice(i, 1); draw(); });
      return [String(i + 1), h("code", null, it.type), String(it.limit), it.window, defaults.has(it.type) ? "default" : "custom", h("span", null, edit, del)];
    }), { "aria-label": "Identifiers" }));
  };
  draw();
  // Add: a default not in the list, or a custom identifier.
  const missing = [...defaults].filter((t) => !list.some((i) => i.type === t));
  const type = h("input", { type: "text", id: "new-identifier", list: "default-identifiers", placeholder: "e.g. salesforce_id" });
  const limit = h("input", { type: "number", id: "new-limit", value: 5, min: 1, max: 1000 });
  const win = h("select", { id: "new-window" }, windows.map((x) => h("option", { value: x, selected: x === "weekly" }, x)));
  const keys = h("input", { type: "text", id: "new-keys", placeholder: "e.g. salesforce_id, sfid", "aria-describedby": "new-keys-help" });
  const add = h("button", { type: "button", id: "add-identifier", class: "secondary" }, "Add identifier");
  const addBox = h("fieldset", null, h("legend", null, "Add identifier (select a default or create one)"),
    h("datalist", { id: "default-identifiers" }, missing.map((t) => h("option", { value: t }))),
    h("div", { class: "row" }, field("Identifier type", type), field("Limit", limit), field("Window", win)),
    field("Trait or property keys (custom identifiers)", keys),
    h("div", { class: "muted", id: "new-keys-help" }, "A custom identifier is read from these keys of a message's traits or properties, comma-separated; empty: the type itself."),
    add);
  add.addEventListener("click", guard(add, addBox, async () => {
    const t = type.value.trim();
    if (!t) throw new Error("Name the identifier type.");
    if (list.some((i) => i.type === t)) throw new Error("The identifier " + t + " is already in the list.");
    const custom = !defaults.has(t);
    const ks = keys.value.split(",").map((k) => k.trim()).filter(Boolean);
    if (!custom && ks.length) throw new Error(t + " is a default identifier, read from fixed places in a message: leave the keys empty.");
    list.push({ type: t, custom, keys: custom ? (ks.length ? ks : [t]) : undefined, limit: Number(limit.value), window: win.value, priority: list.length + 1, blocked: [] });
    type.value = "";
    keys.value = "";
    draw();
  }));
  const save = h("button", { type: "button", id: "save-identifiers" }, "Save identifiers");
  const saveBox = h("div", { id: "identifiers-saved", role: "status" });
  save.addEventListener("click", guard(save, saveBox, async () => {
    const identifiers = list.map((it, i) => ({ type: it.type, custom: !!it.custom, keys: it.custom ? it.keys : undefined, limit: it.limit, window: it.window, priority: i + 1, blocked: it.blocked || [] }));
    const saved = await api("PUT", ws("/spaces/" + sp + "/identity"), { identifiers });
    list = saved.identifiers.map((i) => ({ ...i }));
    draw();
    saveBox.replaceChildren(h("p", { class: "notice" }, "Identifiers saved."));
  }));

  const traits = h("div", { id: "computed-traits" });
  const drawTraits = async () => {
    const all = (await api("GET", ws("/spaces/" + sp + "/computed-traits"))).computed_traits || [];
    const have = new Set(all.map((t) => t.preset).filter(Boolean));
    const buttons = presets.map(([key, label]) => {
      const b = h("button", { type: "button", class: "secondary", id: "preset-" + key, disabled: have.has(key) }, have.has(key) ? label + " added" : "Add " + label);
      b.addEventListener("click", guard(b, traits, async () => {
        await api("POST", ws("/spaces/" + sp + "/computed-traits"), { preset: key });
        usageChanged();
        await drawTraits();
      }));
      return b;
    });
    traits.replaceChildren(
      h("p", null, "Select up to two traits. Recommended: ", h("strong", null, "Total inbounds"), " and ", h("strong", null, "Frequent inbound channel"), "."),
      h("div", { class: "row" }, buttons), // replaceChildren does not flatten an array: h does
      all.length ? table(["Trait", "Kind", "Backfill", ""], all.map((t) => {
        const del = h("button", { type: "button", class: "secondary", "aria-label": "Delete " + t.key }, "Delete");
        del.addEventListener("click", guard(del, traits, async () => { await api("DELETE", ws("/spaces/" + sp + "/computed-traits/" + t.id)); usageChanged(); await drawTraits(); }));
        return [h("code", null, t.key), t.preset ? "preset" : "custom", t.backfill ? t.backfill.status : "", del];
      }), { id: "trait-list", "aria-label": "Computed traits" }) : h("p", { class: "muted" }, "No computed traits yet."));
  };
  await drawTraits();
  const custom = h("textarea", { id: "custom-trait", placeholder: '{"key":"orders_30d","type":"event_counter","event":"Order Completed","window_days":30}' });
  const create = h("button", { type: "button", id: "create-trait", class: "secondary" }, "Create computed trait");
  const customBox = h("fieldset", null, h("legend", null, "Custom computed trait (definition as JSON)"), field("Definition", custom), create);
  create.addEventListener("click", guard(create, customBox, async () => {
    let def;
    try { def = JSON.parse(custom.value); } catch (e) { throw new Error("The definition is not JSON: " + e.message); }
    await api("POST", ws("/spaces/" + sp + "/computed-traits"), def);
    usageChanged();
    custom.value = "";
    await drawTraits();
  }));
  page("Add identifiers and traits",
    h("p", null, "Space ", h("strong", null, space.name), ". Identifiers link what you know about a customer across sources; their order is their priority when profiles merge."),
    h("h2", null, "Identifiers"), idTable, addBox, save, saveBox,
    h("h2", null, "Computed traits"), traits, customBox,
    await predictiveTraits(sp),
    h("p", null, h("a", { class: "button secondary", href: "#/setup" }, "Back to the guided setup")));
}

function editIdentifier(it, redraw) {
  const limit = h("input", { type: "number", id: "edit-limit", value: it.limit, min: 1, max: 1000 });
  const win = h("select", { id: "edit-window" }, windows.map((x) => h("option", { value: x, selected: x === it.window }, x)));
  const ok = h("button", { type: "submit", id: "edit-apply" }, "Apply");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const dlg = h("dialog", { "aria-label": "Edit " + it.type }, h("form", { method: "dialog" },
    h("h3", null, "Edit ", it.type), field("Limit", limit), field("Window", win), ok, cancel));
  cancel.addEventListener("click", () => dlg.close());
  dlg.querySelector("form").addEventListener("submit", () => { it.limit = Number(limit.value); it.window = win.value; redraw(); });
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}

// ---- Step 4: check configuration ----------------------------------------------------------

export async function checkPage() {
  const run = h("button", { type: "button", id: "run-check" }, "Check configuration");
  const out = h("div", { id: "check-result", "aria-live": "polite" });
  run.addEventListener("click", guard(run, out, async () => {
    out.replaceChildren(h("p", null, "Checking every source and connection…"));
    const r = await api("POST", ws("/setup/check"));
    out.replaceChildren(
      h("p", { class: r.ok ? "notice" : "error", id: "check-summary" }, r.ok ? "All checks passed: your setup is complete." : "Some checks failed: see what to do below, then check again."),
      table(["Item", "Kind", "Status", "Reason", "What to do"], (r.items || []).map((i) => [i.name || i.id || "", i.kind, statusBadge(i.status), i.reason || "", i.hint || ""]), { id: "check-items" }));
  }));
  page("Check configuration",
    h("p", null, "Checks every enabled source and connection: tracking sources have received events, warehouses answer their connection test, CSV uploads completed, mappings synced, Flex is configured."),
    await flexSettings(), run, out, h("p", null, h("a", { class: "button secondary", href: "#/setup" }, "Back to the guided setup")));
}

// flexSettings connects Twilio Flex: the auth token (sealed, never shown again) with which
// Flex's webhooks are verified, and the webhook URL to give Flex.
async function flexSettings() {
  const f = await api("GET", ws("/flex"));
  const status = h("p", { id: "flex-status", role: "status" }, f.configured ? "Flex is connected." : "Flex is not connected yet.");
  const token = h("input", { type: "password", id: "flex-token", autocomplete: "off" });
  const save = h("button", { type: "submit", id: "save-flex", class: "secondary" }, f.configured ? "Replace the auth token" : "Connect Flex");
  const form = h("form", null, h("fieldset", null, h("legend", null, "Twilio Flex"), status,
    h("p", null, "Webhook URL for Flex (TaskRouter events): ", h("code", { id: "flex-webhook" }, f.webhook_url)),
    field("Twilio auth token", token, "Your Flex account's auth token (32 characters), to verify the webhooks. Stored encrypted, never shown again."), save));
  form.addEventListener("submit", guard(save, form, async () => {
    await api("PUT", ws("/flex"), { auth_token: token.value.trim() });
    token.value = "";
    status.textContent = "Flex is connected.";
  }));
  return form;
}
