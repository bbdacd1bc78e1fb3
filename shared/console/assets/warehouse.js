// Step 2 for a data warehouse (Reverse ETL): the connection and its test, a SQL model with its
// preview, the mapping of columns onto identifiers and traits, the schedule and sync history.
import { api, ws, workspace } from "./api.js";
import { h, page, field, guard, flash, statusBadge, table, errorBox, sleep, usageChanged } from "./ui.js";

const types = { postgres: "PostgreSQL", redshift: "Amazon Redshift", bigquery: "Google BigQuery", snowflake: "Snowflake" };
const forms = {
  postgres: [["host", "Host"], ["port", "Port", "number", "5432"], ["database", "Database"], ["user", "User"], ["password", "Password", "password"], ["ssl_mode", "SSL mode", "text", "require"]],
  redshift: [["host", "Host"], ["port", "Port", "number", "5439"], ["database", "Database"], ["user", "User"], ["password", "Password", "password"], ["ssl_mode", "SSL mode", "text", "require"]],
  bigquery: [["project", "Project"], ["dataset", "Dataset"], ["location", "Location", "text", "US"], ["credentials_json", "Service account key (JSON)", "textarea"]],
  snowflake: [["account", "Account"], ["warehouse", "Warehouse"], ["database", "Database"], ["schema", "Schema"], ["role", "Role"], ["user", "User"], ["password", "Password", "password"]],
};
const intervals = ["15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"];

export async function warehousePage() {
  const w = await workspace();
  const sources = ((await api("GET", ws("/sources"))).sources || []).filter((s) => types[s.type]);
  const salesforce = w.setup.data_source === "salesforce_warehouse" ? await salesforceSection(sources) : null;
  if (!sources.length) {
    const name = h("input", { type: "text", id: "warehouse-name", required: true });
    const type = h("select", { id: "warehouse-type" }, Object.entries(types).map(([k, v]) => h("option", { value: k }, v)));
    const go = h("button", { type: "submit", id: "create-warehouse" }, "Next");
    const form = h("form", null, field("Warehouse", type), field("Name", name), go);
    form.addEventListener("submit", guard(go, form, async () => {
      await api("POST", ws("/sources"), { name: name.value.trim(), type: type.value });
      usageChanged();
      await warehousePage();
    }));
    page("Connect your data warehouse", salesforce, form);
    return;
  }
  const src = sources[0];
  const base = ws("/sources/" + src.id);
  // No connection saved yet answers 404 not_configured; any other error is the page's.
  const conn = await api("GET", base + "/warehouse").catch((e) => {
    if (e.code === "not_configured") return { configured: false };
    throw e;
  });
  page("Connect your data warehouse", salesforce,
    h("p", null, "Source ", h("strong", null, src.name), " (", types[src.type], ")."),
    connection(src, base, conn), await models(src, base));
}

const sfObjects = ["Contact", "Lead", "Account"];

// salesforceSection is the Salesforce connection: its status, the environment, the objects
// and the warehouse source records land in, and Connect Salesforce, which sends the browser
// to Salesforce's login (the callback comes back to #/setup/warehouse?salesforce=…). The
// salesforce source is created when Connect is first clicked.
async function salesforceSection(warehouses) {
  const all = (await api("GET", ws("/sources"))).sources || [];
  let sf = all.find((s) => s.type === "salesforce");
  const box = h("section", { id: "salesforce", class: "tile" }, h("h2", null, "Salesforce"));
  const params = new URLSearchParams((location.hash.split("?")[1]) || "");
  if (params.get("salesforce") === "connected") box.append(h("div", { class: "notice", role: "status", id: "salesforce-result" }, "Salesforce is connected: the first sync starts now."));
  if (params.get("salesforce") === "error") box.append(h("div", { class: "error", role: "alert", id: "salesforce-result" }, "Salesforce was not connected: " + (params.get("message") || params.get("reason") || "unknown error")));
  const conn = sf ? await api("GET", ws("/sources/" + sf.id + "/salesforce")) : { status: "not_connected", connected: false };
  const status = h("p", { id: "salesforce-status" }, "Status: ", statusBadge(conn.status));
  if (conn.status === "connected") {
    status.append(" as ", h("strong", null, conn.username || ""), conn.instance_url ? " (" + conn.instance_url + ")" : "");
    if (conn.last_sync) status.append(h("br"), "Last sync: ", statusBadge(conn.last_sync.status), conn.last_sync.error ? " " + conn.last_sync.error : "");
    else status.append(h("br"), "The first sync has not run yet.");
  }
  box.append(status);
  if (conn.status === "reauthorize") box.append(h("div", { class: "error", id: "salesforce-reauthorize" }, (conn.reason ? conn.reason + " " : "") + (conn.hint || "")));
  const env = h("select", { id: "sf-environment" }, [["production", "Production"], ["sandbox", "Sandbox"]].map(([v, l]) => h("option", { value: v, selected: conn.environment === v }, l)));
  const chosen = conn.objects && conn.objects.length ? conn.objects : sfObjects;
  const objects = sfObjects.map((o) => h("label", null, h("input", { type: "checkbox", value: o, "data-sf-object": o, checked: chosen.includes(o) }), " ", o));
  const target = h("select", { id: "sf-warehouse" }, warehouses.map((s) => h("option", { value: s.id, selected: conn.warehouse_source_id === s.id }, s.name + " (" + types[s.type] + ")")));
  const go = h("button", { type: "submit", id: "connect-salesforce" }, conn.connected ? "Connect Salesforce again" : "Connect Salesforce");
  const form = h("form", null, field("Environment", env), h("fieldset", null, h("legend", null, "Objects"), objects),
    warehouses.length ? field("Warehouse the records land in", target) : h("p", { class: "muted" }, "Add the warehouse source Salesforce records land in below first."), go);
  form.addEventListener("submit", guard(go, form, async () => {
    if (!sf) {
      sf = await api("POST", ws("/sources"), { name: "Salesforce", type: "salesforce" });
      usageChanged();
    }
    const picked = [...form.querySelectorAll("input[data-sf-object]:checked")].map((c) => c.value);
    const r = await api("PUT", ws("/sources/" + sf.id + "/salesforce"), { environment: env.value, objects: picked, warehouse_source_id: target.value });
    location.href = r.authorize_url;
  }));
  box.append(form);
  return box;
}

function connection(src, base, conn) {
  const inputs = {};
  const fields = forms[src.type].map(([key, label, kind, placeholder]) => {
    const id = "wh-" + key;
    const input = kind === "textarea" ? h("textarea", { id }) : h("input", { id, type: kind || "text", placeholder: placeholder || "", autocomplete: "off" });
    if (conn && conn[key] !== undefined && kind !== "password") input.value = conn[key];
    inputs[key] = input;
    return field(label, input);
  });
  const save = h("button", { type: "submit", id: "save-warehouse" }, "Save and test");
  const test = h("button", { type: "button", id: "test-warehouse", class: "secondary" }, "Test again");
  const result = h("div", { id: "warehouse-test", "aria-live": "polite" });
  const show = (t) => result.replaceChildren(h("div", { class: t.ok ? "notice" : "error" },
    t.ok ? "The connection works." : (t.reason || "failed") + ": " + (t.message || "") + " " + (t.hint || "")));
  const saved = "Saved (credentials are never shown again: enter them to change them).";
  const note = h("p", { class: "muted", id: "warehouse-saved" }, conn.configured ? saved : "The user needs read access to the model's tables and write access to its own schema __unify_retl.");
  const form = h("form", null, h("h2", null, "Connection"), note, fields, save, test, result);
  form.addEventListener("submit", guard(save, form, async () => {
    const body = {};
    for (const [k, input] of Object.entries(inputs)) if (input.value !== "") body[k] = input.type === "number" ? Number(input.value) : input.value;
    const r = await api("PUT", base + "/warehouse", body);
    note.textContent = saved;
    show(r.test || {});
  }));
  test.addEventListener("click", guard(test, form, async () => show(await api("POST", base + "/warehouse/test"))));
  if (conn.test) show(conn.test);
  return form;
}

async function models(src, base) {
  const box = h("section", { id: "models" });
  const list = (await api("GET", base + "/models")).models || [];
  const sql = h("textarea", { id: "model-sql", placeholder: "SELECT id, email, phone, first_name FROM customers" });
  const name = h("input", { type: "text", id: "model-name" });
  const idcol = h("select", { id: "model-id-column" });
  const preview = h("button", { type: "button", id: "preview-model", class: "secondary" }, "Preview");
  const create = h("button", { type: "submit", id: "create-model" }, "Create model");
  const out = h("div", { id: "model-preview" });
  // Ready models (the Salesforce Contacts, Leads and Accounts) fill the form; the id column
  // is offered once the preview runs.
  const templates = (await api("GET", base + "/models/templates").catch(() => ({}))).templates || [];
  const ready = templates.length ? h("select", { id: "model-template" }, h("option", { value: "" }, "(write my own)"),
    templates.map((t, i) => h("option", { value: String(i) }, t.name))) : null;
  if (ready) ready.addEventListener("change", () => {
    const t = templates[Number(ready.value)];
    if (!ready.value || !t) return;
    name.value = t.name;
    sql.value = t.sql;
    idcol.replaceChildren(h("option", { value: t.id_column }, t.id_column));
    out.replaceChildren(h("p", { class: "muted" }, "Map it with identifiers " + Object.keys(t.identifiers).join(", ") +
      " (add the custom identifier salesforce_id to the space's identity settings first). Preview to see its rows."));
  });
  preview.addEventListener("click", guard(preview, out, async () => {
    out.replaceChildren(); // a refused SQL must not leave the preview of the one before
    const r = await api("POST", base + "/models/preview", { sql: sql.value });
    idcol.replaceChildren(...r.columns.map((c) => h("option", { value: c.name }, c.name)));
    // Each row is an object keyed by column name, in the columns' order.
    out.replaceChildren(table(r.columns.map((c) => c.name + " (" + c.type + ")"), r.rows.map((row) => r.columns.map((c) => row[c.name]).map((v) => v === null || v === undefined ? "NULL" : typeof v === "object" ? JSON.stringify(v) : String(v))), { "aria-label": "Preview" }));
  }));
  const form = h("form", null, h("h2", null, "Define a model"), ready ? field("Use a ready model", ready) : null, field("Name", name), field("SQL (one SELECT)", sql), preview, out, field("Unique id column", idcol), create);
  form.addEventListener("submit", guard(create, form, async () => {
    await api("POST", base + "/models", { name: name.value.trim(), sql: sql.value, id_column: idcol.value });
    box.replaceWith(await models(src, base));
  }));
  const parts = [];
  // The first model's controls have plain ids; the others' end in their model's id (unique).
  for (const m of list) parts.push(await modelView(base, m, parts.length ? "-" + m.id : ""));
  box.replaceChildren(...parts, form);
  return box;
}

async function modelView(base, m, suffix) {
  const mbase = base + "/models/" + m.id;
  const maps = (await api("GET", mbase + "/mappings")).mappings || [];
  const section = h("section", { class: "tile", "data-model": m.id }, h("h2", null, "Model ", m.name), h("pre", null, m.sql),
    h("p", null, "Id column: ", h("code", null, m.id_column)));
  for (const mp of maps) section.append(await mappingView(mbase, mp, suffix));
  if (!maps.length) section.append(mappingForm(mbase, m, suffix));
  return section;
}

function mappingForm(mbase, m, suffix) {
  const cols = (m.columns || []).map((c) => c.name);
  const colSelect = (id) => h("select", { id: id + suffix }, h("option", { value: "" }, "(none)"), cols.map((c) => h("option", { value: c }, c)));
  const ids = { user_id: colSelect("map-user_id"), email: colSelect("map-email"), phone: colSelect("map-phone") };
  const traitChecks = cols.map((c) => h("label", null, h("input", { type: "checkbox", value: c, "data-trait": c }), " ", c));
  const records = h("select", { id: "map-records" + suffix }, ["added_or_updated", "added", "updated", "deleted", "all"].map((r) => h("option", { value: r }, r.replaceAll("_", " "))));
  const sched = h("select", { id: "map-schedule" + suffix }, intervals.map((i) => h("option", { value: i, selected: i === "1h" }, "every " + i)), h("option", { value: "manual" }, "manual"));
  const nulls = h("input", { type: "checkbox", id: "map-sync-nulls" + suffix, checked: true });
  const go = h("button", { type: "submit", id: "create-mapping" + suffix }, "Create mapping");
  const form = h("form", null, h("h3", null, "Create mapping"),
    h("fieldset", null, h("legend", null, "Identifiers"), Object.entries(ids).map(([k, s]) => field(k, s))),
    h("fieldset", null, h("legend", null, "Traits (each column under its own name)"), traitChecks),
    field("Records to send", records), field("Schedule", sched), h("label", { for: nulls.id }, nulls, " Send NULL values (clears the trait)"), go);
  form.addEventListener("submit", guard(go, form, async () => {
    const identifiers = {};
    for (const [k, s] of Object.entries(ids)) if (s.value) identifiers[k] = s.value;
    const traits = {};
    for (const c of form.querySelectorAll("input[data-trait]:checked")) traits[c.value] = c.value;
    const schedule = sched.value === "manual" ? { manual: true } : { interval: sched.value };
    const mp = await api("POST", mbase + "/mappings", { records: records.value, identifiers, traits, sync_nulls: nulls.checked, schedule });
    form.replaceWith(await mappingView(mbase, mp, suffix));
  }));
  return form;
}

// pollEvery is how often a mapping's view reads its syncs again while one runs.
const pollEvery = 1000;

async function mappingView(mbase, mp, suffix) {
  const mpath = mbase + "/mappings/" + mp.id;
  const syncs = (await api("GET", mpath + "/syncs")).syncs || [];
  const running = !!mp.running_sync_id || syncs.some((s) => s.status === "in_progress");
  const now = h("button", { type: "button", class: "secondary", id: "sync-now" + suffix, disabled: running }, running ? "Syncing…" : "Sync now");
  const box = h("div", { "data-mapping": mp.id });
  // redraw replaces this view with a fresh one (the mapping and its syncs read again); when
  // a running sync ended, it says how, and gives the focus back to Sync now if nothing has it.
  const redraw = async () => {
    const fresh = await api("GET", mpath);
    const next = await mappingView(mbase, fresh, suffix);
    if (!box.isConnected) return;
    box.replaceWith(next);
    const button = next.querySelector("button[id^=sync-now]");
    if (running && !button.disabled) {
      const last = fresh.last_sync;
      if (last) flash("Sync " + last.status.replaceAll("_", " ") + ": " + last.loaded.succeeded + " loaded, " + last.loaded.failed + " failed.");
      if (!document.activeElement || document.activeElement === document.body) button.focus();
    }
  };
  now.addEventListener("click", guard(now, box, async () => {
    await api("POST", mpath + "/syncs");
    await redraw();
  }));
  if (running) {
    // A sync runs in the background: follow it to its end while the page shows this view.
    sleep(pollEvery).then(() => box.isConnected && redraw()).catch((e) => box.isConnected && box.prepend(errorBox(e)));
  }
  box.append(h("h3", null, "Mapping"),
    h("p", null, "Records: ", mp.records, " · next sync: ", mp.next_sync_at ? new Date(mp.next_sync_at).toLocaleString() : "manual", mp.enabled === false ? " · paused" : ""),
    now,
    syncs.length ? table(["Started", "Trigger", "Status", "Added / updated / deleted", "Loaded / failed", "Errors"], syncs.map((s) => [
      new Date(s.started_at).toLocaleString(), s.trigger, statusBadge(s.status),
      s.extracted.added + " / " + s.extracted.updated + " / " + s.extracted.deleted, s.loaded.succeeded + " / " + s.loaded.failed,
      s.failure || (s.errors || []).slice(0, 3).map((e) => e.record_id + ": " + e.message).join("; ")]), { "aria-label": "Sync history" })
      : h("p", { class: "muted" }, "No syncs yet."));
  return box;
}
