// Paragon preference console: sliders -> POST /recommend -> top-K, validation metrics, point on the Pareto plot.
// Plain JS, no external assets (machines may be offline). Text from the data is set with textContent only.
"use strict";

const state = { objectives: [], grid: [], sequence: 0, timer: null };
const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function weights() {
  return state.objectives.map((o) => Number($(`w-${o.name}`).value));
}

function normalised(values) {
  const total = values.reduce((a, b) => a + b, 0);
  return values.map((v) => (total > 0 ? v / total : 0));
}

function showWeights() {
  const shares = normalised(weights());
  state.objectives.forEach((o, i) => {
    $(`share-${o.name}`).textContent = `${Number($(`w-${o.name}`).value).toFixed(2)} \u2192 ${shares[i].toFixed(2)}`;
  });
}

function buildSliders() {
  const box = $("sliders");
  state.objectives.forEach((o, i) => {
    const row = element("div", "slider");
    const label = element("label", "", o.name);
    label.htmlFor = `w-${o.name}`;
    const share = element("span", "weight");
    share.id = `share-${o.name}`;
    const input = element("input");
    Object.assign(input, { type: "range", min: "0", max: "1", step: "0.01", id: `w-${o.name}` });
    input.value = i === 0 ? "1" : "0";
    input.setAttribute("aria-label", `${o.name} weight`);
    input.addEventListener("input", () => { showWeights(); schedule(); });
    row.append(label, share, input);
    box.append(row);
  });
  showWeights();
}

function requestBody() {
  const body = { preference: weights(), k: Number($("k").value) || 10, exclude_seen: $("exclude-seen").checked };
  if (document.querySelector("input[name=who]:checked").value === "user") {
    body.user = $("user").value;
  } else {
    body.history = $("history").value.split(/[\s,]+/).filter((t) => t.length > 0);
  }
  return body;
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(recommend, 60);
}

async function recommend() {
  const sequence = ++state.sequence;
  document.body.dataset.state = "loading";
  let response, payload;
  try {
    response = await fetch("/recommend", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify(requestBody()) });
    payload = await response.json();
  } catch (error) {
    payload = { detail: String(error) };
    response = { ok: false };
  }
  if (sequence !== state.sequence) return; // a newer request is on its way
  if (!response.ok) {
    showError(payload.detail);
  } else {
    showError(null);
    render(payload);
  }
  document.body.dataset.requests = String(Number(document.body.dataset.requests) + 1);
  document.body.dataset.state = "ready";
}

function showError(detail) {
  const box = $("error");
  box.hidden = !detail;
  box.textContent = !detail ? "" : Array.isArray(detail) ? detail.map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ")
                                                         : String(detail);
}

function render(payload) {
  const list = $("items");
  list.replaceChildren();
  const categories = new Set();
  for (const item of payload.items) {
    const row = element("li");
    row.dataset.item = item.item;
    row.dataset.categories = item.categories.join("|");
    row.append(element("span", "score", item.score.toFixed(3)), element("span", "title", item.title || `item ${item.item}`),
               element("span", "token", `#${item.item}`), element("br"));
    for (const category of item.categories) {
      categories.add(category);
      row.append(element("span", "chip", category));
    }
    list.append(row);
  }
  $("k-label").textContent = String(payload.items.length);
  const shares = payload.preference.map((w, i) => `${payload.objectives[i]} ${w.toFixed(2)}`).join(", ");
  $("summary").textContent = `${categories.size} distinct categories \u00b7 w = ${shares} \u00b7 adapter ` +
    `${payload.cached ? "cached" : "generated"} \u00b7 ${payload.latency_ms.toFixed(1)} ms`;
  $("summary").dataset.categories = String(categories.size);
  renderMetrics(payload.validation);
  renderPareto(payload.validation);
}

function renderMetrics(validation) {
  $("metrics-note").textContent = `of the bundle's grid adapter nearest to your preference: w = ` +
    `[${validation.preference.map((w) => w.toFixed(2)).join(", ")}]`;
  const table = $("metrics");
  table.replaceChildren();
  const tracked = new Set(state.objectives.map((o) => o.metric));
  for (const [name, value] of Object.entries(validation.metrics).sort()) {
    const row = element("tr");
    row.append(element("td", "", tracked.has(name) ? `${name} \u2605` : name),
               element("td", "", value === null ? "\u2013" : value.toFixed(4)));
    table.append(row);
  }
}

function renderPareto(validation) {
  const svg = $("pareto");
  const [a, b] = state.objectives;
  if (!a || !b) return;
  const points = state.grid.map((g) => ({ x: g.metrics[a.metric], y: g.metrics[b.metric], w: g.preference }))
    .filter((p) => p.x !== null && p.y !== null && p.x !== undefined && p.y !== undefined);
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const pad = (lo, hi) => (hi - lo || Math.abs(hi) || 1) * 0.08;
  const [x0, x1] = [Math.min(...xs) - pad(Math.min(...xs), Math.max(...xs)), Math.max(...xs) + pad(Math.min(...xs), Math.max(...xs))];
  const [y0, y1] = [Math.min(...ys) - pad(Math.min(...ys), Math.max(...ys)), Math.max(...ys) + pad(Math.min(...ys), Math.max(...ys))];
  const sx = (x) => 40 + ((x - x0) / (x1 - x0)) * 270, sy = (y) => 214 - ((y - y0) / (y1 - y0)) * 194;
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attributes, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attributes)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  svg.replaceChildren();
  const front = points.slice().sort((p, q) => p.x - q.x).map((p) => `${sx(p.x)},${sy(p.y)}`).join(" ");
  svg.append(node("polyline", { class: "front", points: front }));
  for (const p of points) {
    const dot = node("circle", { class: "grid-point", cx: sx(p.x), cy: sy(p.y), r: 3 });
    dot.append(node("title", {}, `w = [${p.w.map((w) => w.toFixed(2)).join(", ")}]`));
    svg.append(dot);
  }
  const x = validation.metrics[a.metric], y = validation.metrics[b.metric];
  if (x !== null && y !== null && x !== undefined && y !== undefined) {
    svg.append(node("circle", { class: "current", id: "current-point", cx: sx(x), cy: sy(y), r: 5.5 }));
  }
  svg.append(node("text", { x: 110, y: 234 }, `${a.metric} (${a.name}) \u2192`));
  svg.append(node("text", { x: 40, y: 12 }, `\u2191 ${b.metric} (${b.name})`));
  const tick = (x, y, value, anchor) => svg.append(node("text", { x, y, "text-anchor": anchor }, value.toFixed(3)));
  tick(36, 234, x0, "start");
  tick(310, 234, x1, "end");
  tick(34, 214, y0, "end");
  tick(34, 24, y1, "end");
}

async function userTokens() {
  // GET /users is off unless the service enables it (serve_list_users): then the user is typed, not picked.
  try {
    return (await getJson("/users?limit=1000")).users;
  } catch (error) {
    return [];
  }
}

async function start() {
  try {
    const [health, objectives, users] = await Promise.all([getJson("/health"), getJson("/objectives"),
                                                           userTokens()]);
    $("about").textContent = `${health.model} on ${health.dataset} \u00b7 ${health.users} users, ${health.items} items` +
      ` \u00b7 ${health.generator} generator`;
    state.objectives = objectives.objectives;
    state.grid = objectives.grid;
    $("k").max = String(objectives.max_k);
    $("k").value = String(objectives.default_k);
    for (const token of users) $("user-tokens").append(element("option", "", token));
    if (users.length > 0) $("user").value = users[0];
    buildSliders();
    for (const id of ["user", "history", "k", "exclude-seen"]) $(id).addEventListener("input", schedule);
    for (const radio of document.querySelectorAll("input[name=who]")) radio.addEventListener("change", schedule);
    $("history").addEventListener("focus", () => { document.querySelector("input[value=history]").checked = true; });
    $("user").addEventListener("focus", () => { document.querySelector("input[value=user]").checked = true; });
    await recommend();
  } catch (error) {
    showError(String(error));
    document.body.dataset.state = "ready";
  }
}

start();
