// The cutover dashboard: reads /api/dashboard every 2 seconds and draws it.
// Read-only; every value reaches the page through textContent, never as HTML.
"use strict";

const REFRESH_MS = 2000;
const HOUR_MS = 3600 * 1000;
const $ = (id) => document.getElementById(id);

// The token, when the server needs one: opened as /#token=..., kept for the
// tab's session and out of the address bar (a fragment never reaches a server).
function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("cutover-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("cutover-token") || "";
}

let token = takeToken();
let previous = null; // the last document, for rates
let timer = null;

async function refresh() {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  try {
    const resp = await fetch("/api/dashboard", { headers, cache: "no-store" });
    if (resp.status === 401) {
      $("main").hidden = true;
      $("token-form").hidden = false;
      showError(token ? "the token was refused" : "");
      return;
    }
    if (!resp.ok) {
      throw new Error((await resp.text()) || resp.statusText);
    }
    const doc = await resp.json();
    $("token-form").hidden = true;
    showError("");
    draw(doc);
    previous = doc;
    $("main").hidden = false;
    document.body.dataset.loaded = doc.generated_at;
  } catch (err) {
    showError("cannot read the task's status: " + err.message + " (retrying)");
  } finally {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function num(n) {
  return n === undefined || n === null ? "–" : Number(n).toLocaleString("en-US");
}

function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function secs(s) {
  if (s === undefined || s === null) return "–";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 120) return s.toFixed(s < 10 ? 2 : 1) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}

function time(t) {
  return t ? new Date(t).toLocaleTimeString("en-GB") : "";
}

function phaseClass(phase) {
  switch (phase) {
    case "cdc": case "switched": return "ok";
    case "switching": case "rolling back": case "loading": case "schema": case "postdata": return "run";
    case "rolled back": case "finishing": return "warn";
    default: return "";
  }
}

function draw(doc) {
  const st = doc.status;
  $("phase").textContent = st.phase;
  $("phase").className = "badge " + phaseClass(st.phase);
  $("stands").textContent = st.stands || "";
  const sd = st.sides;
  $("sides").textContent = sd ? "live: " + sd.live + "; " + sd.other + (sd.other_closed ? " closed" : " OPEN to the applications") : "";
  $("sides").className = sd && !sd.other_closed ? "sides-open" : "muted";
  $("freshness").textContent = "updated " + time(doc.generated_at);
  $("next").textContent = st.next || "";

  const warnings = $("warnings");
  warnings.replaceChildren(...(st.warnings || []).map((w) => el("li", w)));
  if (st.source_error) warnings.append(el("li", st.source_error));

  const cdc = st.cdc;
  const limit = doc.limits.max_latency_seconds;
  setCard("latency-source", cdc ? secs(cdc.source_latency_seconds) : "–", cdc && cdc.source_latency_seconds > limit ? "warn" : "");
  setCard("latency-target", cdc ? secs(cdc.target_latency_seconds) : "–", cdc && cdc.target_latency_seconds > limit ? "warn" : "");
  setCard("pending", cdc ? num(cdc.pending_transactions) : "–");
  $("latency-source").dataset.seconds = cdc ? cdc.source_latency_seconds : "";
  $("latency-target").dataset.seconds = cdc ? cdc.target_latency_seconds : "";
  const src = st.source;
  setCard("retained-wal", src ? bytes(src.retained_wal_bytes) : "–", src && src.retained_wal_bytes > doc.limits.retained_wal_warning_bytes ? "bad" : "");
  $("retained-wal").dataset.bytes = src ? src.retained_wal_bytes : "";
  $("slot").textContent = st.slot ? st.slot + (src ? (src.slot_active ? ", streaming" : src.slot_exists ? ", no task streaming" : ", missing") : "") : "";
  setCard("exceptions-count", num(st.apply_exceptions), st.apply_exceptions > 0 ? "bad" : "");
  setCard("applied", cdc ? cdc.applied_position : st.position || "–");
  $("replication").textContent = st.replication ? "replication: " + st.replication : "";

  drawChart(doc.latency_history, limit, new Date(doc.generated_at).getTime());
  drawRun(doc.run, new Date(doc.generated_at).getTime());
  drawTables(st.tables, doc);
  drawExceptions(doc.apply_exceptions);
}

function setCard(id, text, cls) {
  $(id).textContent = text;
  $(id).className = "value" + (id === "applied" ? " small" : "") + (cls ? " " + cls : "");
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// The last hour of latency: a line per side, broken where the task did not record
// (it was stopped), with cutover.max_latency as a dashed line.
function drawChart(points, limit, now) {
  const chart = $("chart");
  const W = 900, H = 220, L = 56, R = 10, T = 10, B = 24;
  const from = now - HOUR_MS;
  let top = Math.max(1, limit * 1.2);
  for (const p of points) top = Math.max(top, p.source_latency_seconds * 1.1, p.target_latency_seconds * 1.1);
  const x = (t) => L + ((t - from) / HOUR_MS) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    parts.push(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    parts.push(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, secs(v)));
  }
  for (let m = 60; m >= 0; m -= 15) {
    const t = now - m * 60000;
    parts.push(svg("text", { x: x(t), y: H - 6, "text-anchor": "middle", class: "axis" }, m === 0 ? "now" : "-" + m + " min"));
  }
  if (limit > 0) parts.push(svg("line", { x1: L, x2: W - R, y1: y(limit), y2: y(limit), class: "limit" }));
  let drawn = 0, lastAt = "", lastTarget = "";
  for (const side of ["source", "target"]) {
    let d = "";
    let last = null;
    drawn = 0;
    for (const p of points) {
      const t = new Date(p.at).getTime();
      if (t < from) continue;
      const v = p[side + "_latency_seconds"];
      d += (last === null || t - last > 15000 ? "M" : "L") + x(t).toFixed(1) + " " + y(v).toFixed(1) + " ";
      last = t;
      drawn++;
      if (side === "target") { lastAt = p.at; lastTarget = v; }
    }
    if (d) parts.push(svg("path", { d, class: side }));
  }
  chart.replaceChildren(...parts);
  // What the chart drew, for a test to hold against latency_history.
  chart.dataset.points = drawn;
  chart.dataset.lastAt = lastAt;
  chart.dataset.lastTarget = lastTarget;
}

function drawRun(run, now) {
  const section = $("run-section");
  if (!run) { section.hidden = true; return; }
  section.hidden = false;
  const kind = run.kind === "rollback" ? "Rollback" : "Switch";
  $("run-title").textContent = kind + " " + run.id + (run.dry_run ? " (dry run)" : "");
  $("run-outcome").textContent = run.outcome;
  $("run-outcome").className = "outcome " + run.outcome.replace(/ /g, "-");
  const parts = run.reason ? [run.reason] : [];
  if (run.downtime_seconds !== undefined) {
    parts.push("write downtime " + secs(run.downtime_seconds) + " (the tool's own: " + secs(run.tool_downtime_seconds) + ")");
  } else if (run.blocked_at && run.outcome === "running") {
    parts.push("writes blocked for " + secs((now - new Date(run.blocked_at).getTime()) / 1000) + " so far");
  }
  if (run.expected_downtime_seconds !== undefined) parts.push("expected " + secs(run.expected_downtime_seconds));
  $("run-summary").textContent = parts.join(" · ");
  const rows = (run.steps || []).map((s) => {
    const tr = el("tr");
    tr.dataset.step = s.step;
    if (s.outcome === "running") tr.className = "running";
    tr.append(el("td", s.seq), el("td", s.title));
    const oc = el("td");
    oc.append(el("span", s.outcome, "outcome " + s.outcome.replace(/ /g, "-")));
    tr.append(oc);
    const end = s.ended_at ? new Date(s.ended_at).getTime() : now;
    tr.append(el("td", secs((end - new Date(s.started_at).getTime()) / 1000), "num"));
    const detail = el("td", null, "detail");
    if (s.error) detail.append(el("div", s.error, "err"));
    if (s.detail) detail.append(el("div", s.detail));
    tr.append(detail);
    return tr;
  });
  $("steps").tBodies[0].replaceChildren(...rows);
}

// Throughput: rows a second while a table loads; changes a second in CDC, from the
// change counters of the last two readings.
function throughput(t, doc) {
  const now = new Date(doc.generated_at).getTime();
  if (t.state === "loading" && t.started_at) {
    const s = (now - new Date(t.started_at).getTime()) / 1000;
    return s > 0 ? num(Math.round(t.rows / s)) + " rows/s" : "";
  }
  if (!previous) return "";
  const before = previous.status.tables.find((p) => p.schema === t.schema && p.table === t.table);
  if (!before) return "";
  const dt = (now - new Date(previous.generated_at).getTime()) / 1000;
  const changes = (x) => x.inserts + x.updates + x.deletes + x.truncates;
  if (dt <= 0) return "";
  return num(Math.round((changes(t) - changes(before)) / dt)) + " changes/s";
}

function drawTables(tables, doc) {
  const rows = tables.map((t) => {
    const name = t.schema + "." + t.table;
    const tr = el("tr");
    tr.dataset.table = name;
    const cell = (col, text, cls) => { const td = el("td", text, cls); td.dataset.col = col; return td; };
    let validation = t.validation;
    if (t.validation === "mismatched") validation += " (" + num(t.validation_mismatches) + " rows)";
    tr.append(
      cell("table", name),
      cell("state", t.state + (t.error ? ": " + t.error : "")),
      cell("rows", num(t.rows), "num"),
      cell("size", bytes(t.bytes), "num"),
      cell("throughput", throughput(t, doc), "num"),
      cell("inserts", num(t.inserts), "num"),
      cell("updates", num(t.updates), "num"),
      cell("deletes", num(t.deletes), "num"),
      cell("truncates", num(t.truncates), "num"),
      cell("validation", validation, "v-" + t.validation.replace(/ /g, "-")),
    );
    return tr;
  });
  $("tables").tBodies[0].replaceChildren(...rows);
}

function drawExceptions(list) {
  $("no-exceptions").hidden = list.length > 0;
  $("exceptions").hidden = list.length === 0;
  $("exceptions").tBodies[0].replaceChildren(...list.map((e) => {
    const tr = el("tr");
    tr.dataset.id = e.id;
    tr.append(el("td", e.id), el("td", e.table), el("td", e.operation), el("td", e.error, "detail"),
      el("td", e.position), el("td", e.policy), el("td", time(e.created_at)));
    return tr;
  }));
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token-input").value.trim();
  sessionStorage.setItem("cutover-token", token);
  // A token pasted into the address of an open page.
window.addEventListener("hashchange", () => {
  token = takeToken();
  refresh();
});

refresh();
});

// A token pasted into the address of an open page.
window.addEventListener("hashchange", () => {
  token = takeToken();
  refresh();
});

refresh();
