// The voxshift migration dashboard: log in with an admin token, poll GET /admin/v1/dashboard, draw
// it, and (for operators) send the rollout commands and the kill switch. Plain ES2020, no build.
//
// Numbers: every figure's element carries the API's value as JSON in `data-value` (exactly what the
// API sent: tests compare it with the API's document) and shows it as text with these rules:
// counts, milliseconds, ratings and percentages (0..100) as the API gives them; rates (0..1) as a
// percentage with two decimals (`(v * 100).toFixed(2) + " %"`); null as "—".

import { lineChart } from "./chart.js";

const TOKEN_KEY = "voxshift.dashboard.token";
const POLL_MS = 2500;
const HISTORY_MS = 15 * 60 * 1000; // the client-side series the charts draw
const PER_MINUTE_SPAN_MS = 60 * 1000;
const MIN_RATE_SPAN_MS = 5 * 1000;
const SYSTEMS = [
  ["voice_v2", "v2"],
  ["legacy", "legacy"],
];
const ACTIONS = {
  pause: { title: "Pause the rollout", text: "The controller stops promoting; traffic stays where it is.", path: "/admin/v1/rollout/pause" },
  resume: { title: "Resume the rollout", text: "The controller evaluates and promotes again.", path: "/admin/v1/rollout/resume" },
  promote: { title: "Promote to the next step", text: "Moves more traffic to voice_v2 now.", path: "/admin/v1/rollout/promote" },
  rollback: { title: "Roll back", text: "Moves traffic back to the previous step.", path: "/admin/v1/rollout/rollback" },
  kill: { title: "Throw the kill switch", text: "Every user goes back to the legacy service at once (VOICE_V2_ENABLED=false).", path: "/admin/v1/flags/kill" },
};

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  whoami: null,
  timer: null,
  inFlight: false,
  history: [], // [{t, metrics}]
  pendingAction: null,
};

// --- API --------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body = undefined, token = state.token } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ApiError(0, `the server cannot be reached (${err.message})`);
  }
  let doc = null;
  try {
    doc = await response.json();
  } catch (_) {
    doc = null;
  }
  if (!response.ok) {
    const message = doc && doc.error && doc.error.message ? doc.error.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return doc;
}

// --- formatting -------------------------------------------------------------------------------

const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const FORMATS = {
  raw: (v) => String(v),
  rate: (v) => `${(v * 100).toFixed(2)} %`,
  percent: (v) => `${v} %`,
  bool: (v) => (v ? "true" : "false"),
};

function show(node, value, kind = "raw") {
  node.dataset.value = JSON.stringify(value === undefined ? null : value);
  node.textContent = value === null || value === undefined ? "—" : FORMATS[kind](value);
  return node;
}

function setValue(id, value, kind = "raw") {
  const node = $(id);
  if (node) show(node, value, kind);
}

function cell(testid, value, kind = "raw") {
  const td = document.createElement("td");
  td.setAttribute("data-testid", testid);
  return show(td, value, kind);
}

function textCell(text, testid = null) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (testid) td.setAttribute("data-testid", testid);
  return td;
}

function row(...cells) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}

// A moment (unix seconds or an ISO 8601 string) as "YYYY-MM-DD HH:MM:SSZ" in UTC.
function when(at) {
  if (at === null || at === undefined) return "—";
  const d = isNum(at) ? new Date(at * 1000) : new Date(String(at));
  return Number.isNaN(d.getTime()) ? String(at) : d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

const get = (obj, ...keys) => keys.reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), obj);

// --- panels -----------------------------------------------------------------------------------

function phaseName(p) {
  return typeof p === "string" ? p : p && p.name;
}

// One phase of the plan on the timeline: its percentages (each step's, the current one marked),
// how long it lasts at least, and whether it waits for an operator's approval.
function phaseDetails(p, currentStep) {
  const pct = (x) => {
    if (isNum(x.percentage)) return `${x.percentage} %`;
    if (isNum(x.stt_percentage) || isNum(x.tts_percentage)) return `STT ${x.stt_percentage ?? 0} % · TTS ${x.tts_percentage ?? 0} %`;
    return null;
  };
  const steps = Array.isArray(p.steps) && p.steps.length ? p.steps : [p];
  const line = document.createElement("span");
  line.className = "pct";
  steps.forEach((step, j) => {
    const text = pct(step);
    if (text === null) return;
    if (line.childNodes.length) line.append(" → ");
    const part = document.createElement("span");
    part.textContent = text;
    if (currentStep === j) part.className = "current-step";
    line.append(part);
  });
  const out = line.childNodes.length ? [line] : [];
  const durations = steps.map((step) => step.min_duration ?? p.min_duration).filter((d) => d);
  if (durations.length) {
    const small = document.createElement("span");
    small.className = "meta";
    small.textContent = `at least ${durations.join(" + ")}${p.approval ? " · approval" : ""}`;
    out.push(small);
  }
  return out;
}

function renderRollout(rollout, plan) {
  rollout = rollout || {};
  setValue("rollout-state", rollout.state ?? null);
  setValue("rollout-phase", rollout.phase ?? null);
  const step = $("rollout-step");
  show(step, rollout.step ?? null);
  if (isNum(rollout.step) && isNum(rollout.steps) && rollout.steps > 0) {
    step.textContent = `${rollout.step + 1} of ${rollout.steps}`;
  }
  // What the rollout targets; the flags panel shows what is in force (0 behind the kill switch).
  setValue("rollout-stt-percentage", get(rollout, "percentages", "stt") ?? null, "percent");
  setValue("rollout-tts-percentage", get(rollout, "percentages", "tts") ?? null, "percent");
  const rollbacks = $("rollout-rollbacks");
  show(rollbacks, rollout.rollbacks ?? null);
  if (isNum(rollout.max_rollbacks)) rollbacks.textContent += ` of ${rollout.max_rollbacks}`;

  // The plan document (phases with their percentages and steps) when the API sends it, else the
  // status's list of phase names.
  const planPhases = get(plan, "phases");
  const phases = Array.isArray(planPhases) && planPhases.length ? planPhases : get(rollout, "plan", "phases") || [];
  const current = rollout.phase ?? null;
  const currentIndex = isNum(rollout.phase_index) ? rollout.phase_index : phases.map(phaseName).indexOf(current);
  const items = phases.map((p, i) => {
    const name = phaseName(p);
    const li = document.createElement("li");
    li.setAttribute("data-testid", `timeline-phase-${name}`);
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    li.append(label);
    if (p && typeof p === "object") li.append(...phaseDetails(p, i === currentIndex ? rollout.step : null));
    if (currentIndex >= 0 && i < currentIndex) li.className = "done";
    if (i === currentIndex) {
      li.className = "current";
      li.setAttribute("aria-current", "step");
    }
    return li;
  });
  $("timeline").replaceChildren(...items);

  const criteria = Array.isArray(rollout.criteria) ? rollout.criteria : [];
  $("criteria-note").textContent = isNum(rollout.evaluated_at) ? `evaluated ${when(rollout.evaluated_at)}` : "";
  const rows = criteria.map((c, i) => {
    const verdict = textCell(c.verdict, `criterion-${i}-verdict`);
    verdict.className = `verdict ${c.verdict || ""}`;
    verdict.dataset.value = JSON.stringify(c.verdict ?? null);
    const metric = textCell(c.metric + (c.dry_run ? " (dry run)" : ""), `criterion-${i}-metric`);
    metric.dataset.value = JSON.stringify(c.metric ?? null);
    const samples = cell(`criterion-${i}-samples`, c.samples ?? null);
    if (isNum(c.min_samples)) samples.textContent += ` / ${c.min_samples}`;
    const tr = row(
      metric,
      textCell(c.operation ?? "all", `criterion-${i}-operation`),
      cell(`criterion-${i}-value`, c.value ?? null),
      cell(`criterion-${i}-threshold`, c.threshold ?? null),
      samples,
      verdict,
      textCell(c.detail ?? "", `criterion-${i}-detail`),
    );
    tr.setAttribute("data-testid", `criterion-${i}`);
    return tr;
  });
  if (!rows.length) rows.push(row(emptyCell(7, "no criteria: the rollout is not running")));
  $("criteria-body").replaceChildren(...rows);
}

function emptyCell(span, text) {
  const td = textCell(text);
  td.colSpan = span;
  td.className = "empty";
  return td;
}

function renderFlags(flags) {
  flags = flags || {};
  const config = flags.config && typeof flags.config === "object" ? flags.config : flags;
  setValue("flag-enabled", config.enabled ?? null, "bool");
  const kill = $("flag-kill-switch");
  if (typeof config.enabled === "boolean") {
    kill.dataset.value = JSON.stringify(!config.enabled);
    kill.textContent = config.enabled ? "off" : "THROWN: everyone on legacy";
    kill.className = config.enabled ? "v" : "v alarm";
  } else {
    show(kill, null);
  }
  setValue("flag-stt-percentage", get(config, "percentages", "stt") ?? null, "percent");
  setValue("flag-tts-percentage", get(config, "percentages", "tts") ?? null, "percent");
  setValue("flag-version", config.version ?? null);
  const features = config.features && typeof config.features === "object" ? config.features : {};
  $("flag-features").replaceChildren(
    ...Object.entries(features).map(([name, on]) => {
      const li = document.createElement("li");
      li.setAttribute("data-testid", `flag-feature-${name}`);
      li.dataset.value = JSON.stringify(on);
      li.className = on ? "on" : "off";
      li.textContent = `${name}: ${on ? "on" : "off"}`;
      return li;
    }),
  );
}

function operationsOf(metrics) {
  const ops = Object.keys(get(metrics, "latency_metrics") || {});
  return ops.length ? ops : ["stt", "tts"];
}

function requestsOf(metrics, op, system) {
  const v = get(metrics, "system_comparison", op, "requests", system);
  return isNum(v) ? v : null;
}

// Requests per minute from this tab's polls: the change in the window's request count between a
// poll and the oldest poll of the minute before it (at least 5 s back), scaled to a minute and
// rounded to 0.1. null until there are two polls 5 s apart, or when the window dropped an hour.
function perMinuteAt(index, op, system) {
  const h = state.history;
  const last = h[index];
  const base = h.find((s) => last.t - s.t <= PER_MINUTE_SPAN_MS);
  if (!base || last.t - base.t < MIN_RATE_SPAN_MS) return null;
  const now = requestsOf(last.metrics, op, system);
  const then = requestsOf(base.metrics, op, system);
  if (now === null || then === null || now < then) return null;
  return Math.round(((now - then) * 60000 * 10) / (last.t - base.t)) / 10;
}

function perMinute(op, system) {
  return state.history.length ? perMinuteAt(state.history.length - 1, op, system) : null;
}

function renderTraffic(metrics) {
  const hours = get(metrics, "window_hours");
  $("window-note").textContent = isNum(hours) ? `(last ${hours} h)` : "";
  const rows = operationsOf(metrics).map((op) =>
    row(
      textCell(op.toUpperCase()),
      ...SYSTEMS.map(([sys, short]) => cell(`metric-${op}-${short}-requests`, requestsOf(metrics, op, sys))),
      ...SYSTEMS.map(([sys, short]) => cell(`metric-${op}-${short}-per-minute`, perMinute(op, sys))),
      cell(`metric-${op}-v2-share`, get(metrics, "system_comparison", op, "voice_v2_share") ?? null, "rate"),
    ),
  );
  $("traffic-body").replaceChildren(...rows);
}

function renderLatency(metrics) {
  const rows = [];
  for (const op of operationsOf(metrics)) {
    for (const [sys, short] of SYSTEMS) {
      const lat = get(metrics, "latency_metrics", op, sys) || {};
      rows.push(
        row(
          textCell(op.toUpperCase()),
          textCell(sys),
          cell(`metric-${op}-${short}-p50`, lat.p50_ms ?? null),
          cell(`metric-${op}-${short}-p95`, lat.p95_ms ?? null),
          cell(`metric-${op}-${short}-p99`, lat.p99_ms ?? null),
          cell(`metric-${op}-${short}-error-rate`, get(metrics, "error_rates", op, sys) ?? null, "rate"),
        ),
      );
    }
  }
  $("latency-body").replaceChildren(...rows);
}

function renderHealth(metrics) {
  const rows = operationsOf(metrics).map((op) =>
    row(
      textCell(op.toUpperCase()),
      cell(`metric-${op}-fallbacks`, get(metrics, "fallback_rates", op, "fallbacks") ?? null),
      cell(`metric-${op}-fallback-rate`, get(metrics, "fallback_rates", op, "rate") ?? null, "rate"),
      cell(`metric-${op}-total-failures`, get(metrics, "total_failures", op) ?? null),
      cell(`metric-${op}-shadow-agreement`, get(metrics, "shadow", op, "agreement_rate") ?? null, "rate"),
      cell(`metric-${op}-shadow-comparisons`, get(metrics, "shadow", op, "comparisons") ?? null),
      cell(`metric-${op}-cache-hit-rate`, get(metrics, "cache_hit_rates", op, "rate") ?? null, "rate"),
      cell(`metric-${op}-cache-lookups`, get(metrics, "cache_hit_rates", op, "lookups") ?? null),
    ),
  );
  $("health-body").replaceChildren(...rows);
}

function feedbackRows(feedback) {
  if (Array.isArray(feedback)) return feedback;
  if (feedback && typeof feedback === "object") {
    for (const key of ["ratings", "summaries", "stats", "by_system"]) {
      if (Array.isArray(feedback[key])) return feedback[key];
    }
  }
  return [];
}

function renderFeedback(feedback) {
  const rows = feedbackRows(feedback).map((r) => {
    const key = `${r.system}-${r.operation ?? "all"}`;
    const ci = Array.isArray(r.ci95) ? r.ci95 : isNum(r.low) && isNum(r.high) ? [r.low, r.high] : null;
    return row(
      textCell(r.system),
      textCell(r.operation ?? "all"),
      cell(`feedback-${key}-count`, r.count ?? null),
      cell(`feedback-${key}-mean`, r.mean ?? null),
      textCell(ci ? `${ci[0]} – ${ci[1]}` : "—", `feedback-${key}-ci95`),
    );
  });
  if (!rows.length) rows.push(row(emptyCell(5, "no ratings yet")));
  $("feedback-body").replaceChildren(...rows);
}

function atCell(at) {
  const td = textCell(when(at), "audit-at");
  td.dataset.value = JSON.stringify(at ?? null);
  td.title = String(at ?? "");
  return td;
}

function renderAudit(audit) {
  const entries = Array.isArray(audit) ? audit : Array.isArray(get(audit, "entries")) ? audit.entries : [];
  const rows = entries.map((e) => {
    const tr = row(
      atCell(e.at),
      textCell(e.kind, "audit-kind"),
      textCell(e.actor, "audit-actor"),
      textCell(e.reason, "audit-reason"),
      textCell(e.summary, "audit-summary"),
    );
    tr.setAttribute("data-testid", "audit-row");
    return tr;
  });
  if (!rows.length) rows.push(row(emptyCell(5, "nothing audited yet")));
  $("audit-body").replaceChildren(...rows);
}

// Provider availability (seed: "Monitoring Blind Spots") as the replica that answered sees it: its
// engines, their circuit breakers (keyed by provider name) and the optional backends.
function renderReadiness(ready) {
  ready = ready || {};
  setValue("ready-status", ready.status ?? null);
  $("ready-status").className = ready.status === "ready" ? "v" : "v alarm";
  const degraded = Array.isArray(ready.degraded) ? ready.degraded : [];
  $("ready-degraded").dataset.value = JSON.stringify(degraded);
  $("ready-degraded").textContent = degraded.length ? degraded.join(", ") : "none";
  const breakers = ready.breakers && typeof ready.breakers === "object" ? ready.breakers : {};
  const engines = ready.engines && typeof ready.engines === "object" ? Object.entries(ready.engines) : [];
  const rows = engines.map(([name, info]) => {
    const provider = name.includes(":") ? name.split(":").slice(1).join(":") : name;
    const available = cell(`engine-${name}`, info.available ?? null, "bool");
    available.className = info.available ? "" : "alarm";
    return row(
      textCell(name),
      available,
      textCell(breakers[provider] ?? "—", `breaker-${name}`),
      textCell(info.reason ?? ""),
    );
  });
  if (!rows.length) rows.push(row(emptyCell(4, "no engine information")));
  $("providers-body").replaceChildren(...rows);
  const deps = ready.dependencies && typeof ready.dependencies === "object" ? Object.entries(ready.dependencies) : [];
  const depRows = deps.map(([name, d]) =>
    row(textCell(name), cell(`dependency-${name}`, d.up ?? null, "bool"), cell(`dependency-${name}-fallbacks`, d.fallbacks ?? null), textCell(d.error ?? "")),
  );
  if (!depRows.length) depRows.push(row(emptyCell(4, "no optional backend configured")));
  $("dependencies-body").replaceChildren(...depRows);
}

async function readiness() {
  try {
    const response = await fetch("/readyz", { cache: "no-store", credentials: "omit" });
    return await response.json(); // 503 while loading carries the same document
  } catch (_) {
    return { status: "unreachable" };
  }
}

function chartHost(id) {
  let host = $(id);
  if (!host) {
    host = document.createElement("figure");
    host.id = id;
    host.className = "chart-host";
    host.setAttribute("data-testid", id);
    $("charts").append(host);
  }
  return host;
}

function renderCharts() {
  const h = state.history;
  if (!h.length) return;
  for (const op of operationsOf(h[h.length - 1].metrics)) {
    const latency = [];
    for (const [sys, short] of SYSTEMS) {
      for (const p of ["p50", "p95", "p99"]) {
        latency.push({
          name: `${short} ${p}`,
          cls: `${short} ${p}`,
          points: h.map((s) => [s.t, get(s.metrics, "latency_metrics", op, sys, `${p}_ms`) ?? null]),
        });
      }
    }
    const latHost = chartHost(`chart-${op}-latency`);
    latHost.dataset.points = String(h.length);
    lineChart(latHost, latency, { title: `${op.toUpperCase()} latency (ms)` });

    const rates = SYSTEMS.map(([sys, short]) => ({
      name: `${short} requests/min`,
      cls: short,
      points: h.map((s, i) => [s.t, perMinuteAt(i, op, sys)]),
    }));
    const rateHost = chartHost(`chart-${op}-requests`);
    rateHost.dataset.points = String(h.length);
    lineChart(rateHost, rates, { title: `${op.toUpperCase()} requests per minute` });

    const errors = SYSTEMS.map(([sys, short]) => ({
      name: `${short} error rate`,
      cls: short,
      points: h.map((s) => [s.t, get(s.metrics, "error_rates", op, sys) ?? null]),
    }));
    const errHost = chartHost(`chart-${op}-error-rate`);
    errHost.dataset.points = String(h.length);
    lineChart(errHost, errors, { title: `${op.toUpperCase()} error rate`, rate: true });
  }
}

function render(doc) {
  const metrics = doc.metrics || {};
  const now = Date.now();
  state.history.push({ t: now, metrics });
  while (state.history.length && now - state.history[0].t > HISTORY_MS) state.history.shift();

  renderRollout(doc.rollout, doc.plan);
  renderFlags(doc.flags);
  renderTraffic(metrics);
  renderLatency(metrics);
  renderHealth(metrics);
  renderFeedback(doc.feedback);
  renderAudit(doc.audit);
  renderCharts();
  const updated = $("last-update");
  updated.textContent = `updated ${new Date(now).toTimeString().slice(0, 8)}`;
  updated.dataset.polls = String(Number(updated.dataset.polls || "0") + 1);
  if (doc.whoami) renderWho(doc.whoami);
}

// --- polling ----------------------------------------------------------------------------------

function schedule(ms = POLL_MS) {
  clearTimeout(state.timer);
  state.timer = setTimeout(poll, ms);
}

async function poll() {
  if (!state.token) return;
  if (document.hidden) return schedule(); // resumed by visibilitychange
  if (state.inFlight) return;
  state.inFlight = true;
  try {
    const [doc, ready] = await Promise.all([api("/admin/v1/dashboard"), readiness()]);
    $("poll-error").hidden = true;
    render(doc);
    renderReadiness(ready);
  } catch (err) {
    if (err.status === 401) {
      logout(`Logged out: ${err.message}`);
      return;
    }
    const banner = $("poll-error");
    banner.textContent = `Refresh failed: ${err.message}`;
    banner.hidden = false;
  } finally {
    state.inFlight = false;
  }
  if (state.token) schedule();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.token) schedule(0);
});

// --- log in / out -----------------------------------------------------------------------------

function renderWho(who) {
  state.whoami = who;
  $("whoami-name").textContent = who.name;
  $("whoami-role").textContent = who.role;
  $("who").hidden = false;
  $("operator-actions").hidden = who.role !== "operator";
}

async function login(token) {
  const who = await api("/admin/v1/whoami", { token });
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  renderWho(who);
  $("login").hidden = true;
  $("board").hidden = false;
  schedule(0);
}

function logout(message = null) {
  clearTimeout(state.timer);
  state.token = null;
  state.whoami = null;
  state.history = [];
  sessionStorage.removeItem(TOKEN_KEY);
  $("board").hidden = true;
  $("who").hidden = true;
  $("operator-actions").hidden = true;
  $("charts").replaceChildren();
  $("action-result").hidden = true;
  $("last-update").dataset.polls = "0";
  $("login").hidden = false;
  $("token").value = "";
  const error = $("login-error");
  error.textContent = message || "";
  error.hidden = !message;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  const error = $("login-error");
  error.hidden = true;
  try {
    await login(token);
    $("token").value = "";
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});

$("logout").addEventListener("click", () => logout());

// --- operator actions ---------------------------------------------------------------------------

function openAction(name) {
  const action = ACTIONS[name];
  state.pendingAction = name;
  $("confirm-title").textContent = action.title;
  $("confirm-text").textContent = action.text;
  $("confirm-reason").value = "";
  $("confirm-check").checked = false;
  $("confirm-error").hidden = true;
  $("confirm").dataset.action = name;
  $("confirm").showModal();
  $("confirm-reason").focus();
}

for (const button of document.querySelectorAll("button.action")) {
  button.addEventListener("click", () => openAction(button.dataset.action));
}

// What an accepted command did, from the API's answer: a rollout outcome (changed, state,
// transition) or a flag change (changed, changes, warnings).
function describeOutcome(title, answer) {
  const parts = [`${title}: ${answer.changed === false ? "nothing to do" : "done"}`];
  if (answer.state) parts.push(`rollout ${answer.state}`);
  if (Array.isArray(answer.changes) && answer.changes.length) parts.push(answer.changes.join("; "));
  if (Array.isArray(answer.warnings)) parts.push(...answer.warnings.map((w) => `warning: ${w}`));
  return parts.join(" · ");
}

$("confirm-cancel").addEventListener("click", () => $("confirm").close());

$("confirm-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = state.pendingAction;
  const reason = $("confirm-reason").value.trim();
  const error = $("confirm-error");
  if (!reason || !$("confirm-check").checked) {
    error.textContent = "A reason and the confirmation are required.";
    error.hidden = false;
    return;
  }
  const ok = $("confirm-ok");
  ok.disabled = true;
  const result = $("action-result");
  try {
    const answer = (await api(ACTIONS[name].path, { method: "POST", body: { reason } })) || {};
    result.textContent = describeOutcome(ACTIONS[name].title, answer);
    result.dataset.state = "ok";
    result.dataset.changed = JSON.stringify(answer.changed ?? null);
    result.className = "result ok";
  } catch (err) {
    if (err.status === 401) {
      $("confirm").close();
      logout(`Logged out: ${err.message}`);
      return;
    }
    result.textContent = `${ACTIONS[name].title}: ${err.message}`;
    result.dataset.state = "error";
    result.className = "result error";
  } finally {
    ok.disabled = false;
  }
  result.dataset.action = name;
  result.hidden = false;
  $("confirm").close();
  schedule(0);
});

// --- start ----------------------------------------------------------------------------------------

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  login(saved).catch((err) => logout(err.status === 401 ? `Logged out: ${err.message}` : err.message));
}
