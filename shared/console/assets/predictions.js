// Step 3's predictive traits (optional): the "Set up predictive traits" dropdown with the two
// recommended traits (Likelihood to Churn, Predicted Lifetime Value) and a custom goal, then
// the space's predictions with what each still needs, its quality once ready, Train now and
// Delete. A prediction still training is refreshed every few seconds while the page shows it.
import { api, ws } from "./api.js";
import { h, field, guard, errorBox, statusBadge, table, usageChanged } from "./ui.js";

const windowDays = [15, 30, 60, 90, 120];
const moneyProperties = ["revenue", "total", "value", "price"]; // what the API accepts
const pollEvery = 3000; // ms between refreshes while a prediction is training
const pollMax = 40; // refreshes after the last action (2 minutes); then the Refresh button

const kindLabels = { churn: "Likelihood to churn", purchase: "Likelihood to purchase", custom: "Custom goal", ltv: "Predicted lifetime value" };

// predictiveTraits builds the section for space sp.
export async function predictiveTraits(sp) {
  const base = ws("/spaces/" + encodeURIComponent(sp) + "/predictions");
  const events = await seenEvents(sp);
  const eventList = h("datalist", { id: "prediction-events" }, events.map((e) => h("option", { value: e })));
  const windowSelect = (id, def) => h("select", { id }, windowDays.map((d) => h("option", { value: d, selected: d === def }, d + " days")));

  // Likelihood to Churn: will not perform the event within the window.
  const churnEvent = h("input", { type: "text", id: "churn-event", list: "prediction-events", placeholder: events[0] || "e.g. Order Completed", "aria-describedby": "churn-event-help" });
  const churnWindow = windowSelect("churn-window", 30);
  const churnKey = h("input", { type: "text", id: "churn-key", value: "likelihood_to_churn" });
  const churnGo = h("button", { type: "button", id: "complete-churn" }, "Complete setup");
  const churnBox = h("fieldset", { "data-prediction": "churn" }, h("legend", null, "Likelihood to Churn"),
    h("p", { class: "muted" }, "How likely each customer is not to perform an event (a purchase, a sign-in) within the window."),
    h("div", { class: "row" }, field("Event", churnEvent), field("Window", churnWindow), field("Trait key", churnKey)),
    h("div", { class: "muted", id: "churn-event-help" }, events.length ? "Events your sources sent recently are suggested." : "No events seen in this space's sources yet: type the event's name."),
    churnGo);

  // Predicted Lifetime Value: spend in the next 120 days, from a purchase event's revenue.
  const ltvEvent = h("input", { type: "text", id: "ltv-event", list: "prediction-events", value: "Order Completed" });
  const ltvProperty = h("select", { id: "ltv-property" }, moneyProperties.map((p) => h("option", { value: p }, p)));
  const ltvCurrency = h("input", { type: "text", id: "ltv-currency", placeholder: "USD", maxLength: 3 });
  const ltvKey = h("input", { type: "text", id: "ltv-key", value: "predicted_ltv" });
  const ltvGo = h("button", { type: "button", id: "complete-ltv" }, "Complete setup");
  const ltvBox = h("fieldset", { "data-prediction": "ltv" }, h("legend", null, "Predicted Lifetime Value"),
    h("p", { class: "muted" }, "How much each customer is likely to spend in the next 120 days, learned from customers with at least two purchases."),
    h("div", { class: "row" }, field("Purchase event", ltvEvent), field("Revenue property", ltvProperty), field("Currency (optional)", ltvCurrency), field("Trait key", ltvKey)),
    ltvGo);

  // A custom goal: will perform one of 1–2 events within the window.
  const goalKind = h("select", { id: "custom-kind" }, [["purchase", "Likelihood to purchase"], ["custom", "Custom goal"]].map(([v, l]) => h("option", { value: v }, l)));
  const goalEvents = h("input", { type: "text", id: "custom-events", list: "prediction-events", placeholder: "e.g. Order Completed, Subscription Started", "aria-describedby": "custom-events-help" });
  const goalProperty = h("select", { id: "custom-property" }, h("option", { value: "" }, "(any)"), moneyProperties.map((p) => h("option", { value: p }, p)));
  const goalWindow = windowSelect("custom-window", 30);
  const goalKey = h("input", { type: "text", id: "custom-key", placeholder: "e.g. likely_to_purchase" });
  const goalGo = h("button", { type: "button", id: "create-custom-prediction", class: "secondary" }, "Create prediction");
  const goalBox = h("fieldset", { id: "custom-prediction" }, h("legend", null, "Custom goal (optional)"),
    h("div", { class: "row" }, field("Kind", goalKind), field("Events", goalEvents), field("Only when this property is positive", goalProperty), field("Window", goalWindow), field("Trait key", goalKey)),
    h("div", { class: "muted", id: "custom-events-help" }, "One or two events, comma-separated: the goal is reached when a customer performs one of them within the window."),
    goalGo);

  const list = h("div", { id: "predictions", "aria-live": "polite" });
  let current = [];
  let gen = 0; // the latest draw: an older scheduled refresh does nothing

  // mark disables a recommended trait's Complete setup once the space has one of its kind
  // (after guard, which enables the button it ran from again).
  const mark = () => {
    for (const [kind, button] of [["churn", churnGo], ["ltv", ltvGo]]) {
      const have = current.some((p) => p.kind === kind);
      button.disabled = have;
      button.textContent = have ? "Already set up" : "Complete setup";
    }
  };
  const guarded = (button, where, fn) => {
    const run = guard(button, where, fn);
    return async (ev) => { await run(ev); mark(); };
  };

  // draw reads the space's predictions and shows them; while one is training it reads them
  // again every few seconds, as long as the section is on the page (polls: refreshes so far).
  const draw = async (polls = 0) => {
    const mine = ++gen;
    current = (await api("GET", base)).predictions || [];
    if (mine !== gen) return; // a newer draw is under way
    mark();
    const training = current.some((p) => p.status === "training");
    const refresh = h("button", { type: "button", id: "refresh-predictions", class: "secondary" }, "Refresh");
    refresh.addEventListener("click", guard(refresh, list, () => draw(0)));
    list.replaceChildren(...[
      current.length ? table(["Trait", "Kind", "Status", "Details", ""], current.map((p) => row(p)), { id: "prediction-list", "aria-label": "Predictive traits" })
        : h("p", { class: "muted", id: "no-predictions" }, "No predictive traits yet."),
      training ? h("p", null, "Training runs in the background: the list refreshes by itself for a while. ", refresh) : null,
    ].filter(Boolean));
    if (training && polls < pollMax) {
      setTimeout(() => {
        if (mine === gen && list.isConnected) draw(polls + 1).catch((e) => list.prepend(errorBox(e)));
      }, pollEvery);
    }
  };

  const row = (p) => {
    const train = h("button", { type: "button", class: "secondary", "data-train": p.key, "aria-label": "Train " + p.key + " now" }, "Train now");
    const del = h("button", { type: "button", class: "secondary", "data-delete": p.key, "aria-label": "Delete " + p.key }, "Delete");
    train.addEventListener("click", guard(train, list, async () => {
      await api("POST", base + "/" + encodeURIComponent(p.id) + "/train");
      await draw(0);
    }));
    del.addEventListener("click", guard(del, list, async () => {
      if (!confirm("Delete the predictive trait " + p.key + "? Its model and its scores on profiles are removed.")) return;
      await api("DELETE", base + "/" + encodeURIComponent(p.id));
      usageChanged();
      await draw(0);
    }));
    return [h("code", null, p.key), h("span", null, kindLabels[p.kind] || p.kind, h("br"), h("span", { class: "muted" }, goal(p))),
      statusBadge(p.status || "unknown"), details(p), h("span", null, train, del)];
  };

  // create posts a prediction, then shows it (its first run follows at once).
  const create = async (body) => {
    if (!body.key) throw new Error("Name the trait key.");
    try {
      await api("POST", base, body);
    } catch (e) {
      if (e.code === "entitlement_exceeded") {
        throw new Error("Your workspace has no predictive trait left (" + e.message + "). Delete one below to set up another.");
      }
      throw e;
    }
    usageChanged();
    await draw(0);
  };
  churnGo.addEventListener("click", guarded(churnGo, churnBox, async () => {
    const event = churnEvent.value.trim();
    if (!event) throw new Error("Name the event whose absence means churn (e.g. Order Completed).");
    await create({ kind: "churn", key: churnKey.value.trim(), event, window_days: Number(churnWindow.value) });
  }));
  ltvGo.addEventListener("click", guarded(ltvGo, ltvBox, async () => {
    const event = ltvEvent.value.trim();
    if (!event) throw new Error("Name the purchase event (e.g. Order Completed).");
    const body = { kind: "ltv", key: ltvKey.value.trim(), purchase_event: event, revenue_property: ltvProperty.value };
    if (ltvCurrency.value.trim()) body.currency = ltvCurrency.value.trim().toUpperCase();
    await create(body);
  }));
  goalGo.addEventListener("click", guard(goalGo, goalBox, async () => {
    const evs = goalEvents.value.split(",").map((e) => e.trim()).filter(Boolean);
    if (evs.length < 1 || evs.length > 2) throw new Error("Name one or two events, comma-separated.");
    const body = { kind: goalKind.value, key: goalKey.value.trim(), events: evs, window_days: Number(goalWindow.value) };
    if (goalProperty.value) body.property = goalProperty.value;
    await create(body);
  }));

  // The list's error stays in the section: identifiers and computed traits work without it.
  await draw(0).catch((e) => list.replaceChildren(errorBox(e)));
  return h("section", { id: "predictive-traits", "aria-labelledby": "h-predictive" },
    h("h2", { id: "h-predictive" }, "Predictive traits"),
    h("div", { class: "notice", id: "predictions-need-data" },
      h("strong", null, "Predictions require event data in your sources. "),
      "After data is flowing into your source, it can take up to 48 hours for predictions to be ready. Each needs at least 100 customers who reached its goal and 100 who did not, a history of three times its window, and at least 5 event types; anonymous profiles are not used."),
    h("details", { id: "predictive-setup" }, h("summary", null, "Set up predictive traits"),
      h("p", null, "Select up to two traits. Recommended: ", h("strong", null, "Likelihood to Churn"), " and ", h("strong", null, "Predicted Lifetime Value"), "."),
      eventList, churnBox, ltvBox, goalBox),
    list);
}

// goal describes what a prediction predicts.
function goal(p) {
  const win = p.window_days ? " within " + p.window_days + " days" : "";
  switch (p.kind) {
    case "churn":
      return "no " + (p.event || (p.events || [])[0] || "event") + win;
    case "ltv":
      return "spend (" + (p.revenue_property || "revenue") + (p.currency ? ", " + p.currency : "") + ") of " + (p.purchase_event || (p.events || [])[0] || "purchases") + " in 120 days";
    default:
      return (p.events || []).join(" or ") + (p.property ? " with " + p.property : "") + win;
  }
}

// details is what a prediction's status calls for: what is missing, its run under way, its
// quality and scores once trained, its failure.
function details(p) {
  const box = h("div", { class: "prediction-details" });
  const when = (t) => new Date(t).toLocaleString();
  const unmet = (p.requirements || []).filter((r) => !r.met);
  if (p.status === "waiting_for_data" || unmet.length) {
    box.append(h("p", null, p.status === "waiting_for_data" ? "Waiting for data:" : "The last run found missing:"), h("ul", { class: "unmet" }, unmet.map((r) => h("li", { "data-rule": r.rule }, r.detail || r.rule))));
    if (p.status === "waiting_for_data" && p.next_run_at) box.append(h("p", { class: "muted" }, "Checked again " + when(p.next_run_at) + ", or now with Train now."));
  }
  if (p.status === "training") {
    const pr = p.progress;
    box.append(h("p", { class: "muted" }, pr ? "Running: " + pr.step + (pr.profiles_loaded ? " (" + pr.profiles_loaded + " profiles loaded)" : "") + "…" : "Training is queued…"));
  }
  if (p.status === "failed" || p.error) box.append(h("p", { class: "error" }, p.error || "Training failed: train again, or delete it and set it up again."));
  if (p.quality) {
    const q = p.quality;
    box.append(h("p", { class: "quality" }, "Quality ", h("strong", { "data-grade": q.grade }, q.grade || "?"),
      " · AUC ", num(q.auc), q.lift_top_20 != null ? " · lift in the top 20 % " + num(q.lift_top_20) + "×" : ""));
  }
  if (p.status === "ready" || p.scored_at) {
    box.append(h("p", { class: "scored" }, String(p.profiles_scored ?? 0), " profiles scored",
      p.scored_at ? ", " + when(p.scored_at) : "", p.trained_at ? " (trained " + when(p.trained_at) + ")" : ""));
  }
  if (p.anonymous_profiles) box.append(h("p", { class: "muted" }, p.anonymous_profiles + " anonymous profiles left out (predictions use identified customers only)."));
  if (p.top_features && p.top_features.length) {
    box.append(h("p", null, "Top features:"), h("ol", { class: "features" }, p.top_features.slice(0, 5).map((f) =>
      h("li", null, h("code", null, f.name), " ", f.weight >= 0 ? "▲ " : "▼ ", num(Math.abs(f.weight))))));
  }
  return box;
}

const num = (x) => (typeof x === "number" && isFinite(x) ? x.toFixed(2) : "–");

// seenEvents lists the track events the space's sources sent recently (their debuggers), to
// suggest; best effort: none when a debugger cannot be read.
async function seenEvents(sp) {
  const sources = ((await api("GET", ws("/sources"))).sources || []).filter((s) => s.space_id === sp);
  const names = new Set();
  await Promise.all(sources.map(async (s) => {
    try {
      const r = await api("GET", ws("/sources/" + encodeURIComponent(s.id) + "/debugger?limit=200"));
      for (const e of r.entries || []) {
        const n = e.normalised;
        if (n && n.type === "track" && n.event && e.status !== "rejected") names.add(n.event);
      }
    } catch { /* no suggestions from this source */ }
  }));
  return [...names].sort();
}
