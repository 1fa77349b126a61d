// The l3map ops console. Plain DOM, no framework, nothing fetched but this
// server's JSON. Every value from the store (ticket text, comment bodies,
// API answers) goes into the page as text (textContent), never as markup.
"use strict";

const POLL_MS = 3000;
let me = null;
let lastJson = "";
let timer = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    // ARIA states are the words "true" and "false", never absent.
    if (k.startsWith("aria-") && typeof v === "boolean") { e.setAttribute(k, String(v)); continue; }
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick") e.addEventListener("click", v);
    else if (k === "onsubmit") e.addEventListener("submit", v);
    else if (k === "onchange") e.addEventListener("change", v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function say(text) {
  const s = document.getElementById("status");
  s.textContent = text;
  clearTimeout(say.t);
  say.t = setTimeout(() => { s.textContent = ""; }, 6000);
}

function when(ms) {
  if (ms === null || ms === undefined) return "";
  const at = new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  return at + " (" + age(Date.now() - ms) + " ago)";
}

// What an action writes, in words.
function writes(op) {
  if (!op || typeof op !== "object") return "";
  switch (op.op) {
    case "zendesk_status": return "status → " + op.status + " (" + op.category + ")";
    case "salesforce_status": return op.object + " status → " + op.value;
    case "zendesk_field": return "field " + op.field + " = " + JSON.stringify(op.value);
    case "salesforce_field": return op.object + "." + op.field + " = " + JSON.stringify(op.value);
    case "zendesk_comment": case "salesforce_comment": {
      const b = String(op.body || "");
      return "private note: " + (b.length > 80 ? b.slice(0, 80) + "…" : b);
    }
    case "zendesk_group": return "group → " + op.group;
    default: return JSON.stringify(op);
  }
}

function age(ms) {
  if (ms === null || ms === undefined) return "—";
  const s = Math.round(ms / 1000);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return Math.round(s / 3600) + " h";
}

async function api(path, opts) {
  const o = Object.assign({ credentials: "same-origin", headers: {} }, opts || {});
  if (o.body !== undefined) {
    o.method = o.method || "POST";
    o.headers["Content-Type"] = "application/json";
    if (me && me.csrf) o.headers["X-L3map-Csrf"] = me.csrf;
    o.body = JSON.stringify(o.body);
  }
  const r = await fetch(path, o);
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (r.status === 401 && path !== "/ui/login") { me = null; showSignIn(); throw new Error("signed out"); }
  if (!r.ok) throw new Error((body && body.message) || ("HTTP " + r.status));
  return body;
}

function route() {
  const h = location.hash.replace(/^#\/?/, "");
  const [page, ...rest] = h.split("/");
  const [name, query] = (page || "graph").split("?");
  const params = new URLSearchParams(query || "");
  return { page: name || "graph", arg: decodeURIComponent(rest.join("/").split("?")[0] || ""), params };
}

function confirmWith(text, okLabel, danger) {
  const d = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const ok = document.getElementById("confirm-ok");
  ok.textContent = okLabel;
  ok.className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = "cancel";
    d.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

// ---------------------------------------------------------------- sign in

function showSignIn() {
  stopPolling();
  document.getElementById("nav").hidden = true;
  document.getElementById("who").textContent = "";
  const view = document.getElementById("view");
  const input = el("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const err = el("p", { class: "bad", id: "signin-error", role: "alert" });
  const form = el("form", { class: "signin", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api("/ui/login", { body: { token: input.value } });
      input.value = "";
      await start();
    } catch (x) { err.textContent = x.message; input.focus(); }
  } },
    el("h2", {}, "Sign in"),
    el("p", {}, "Use the token of your [ops.NAME] entry in l3map.toml. It is sent once; the browser keeps a signed session cookie, never the token."),
    el("label", { for: "token" }, "Ops token"), input, err,
    el("p", {}, el("button", { type: "submit", class: "primary" }, "Sign in")));
  view.replaceChildren(form);
  input.focus();
}

async function signOut() {
  await fetch("/ui/logout", { method: "POST", credentials: "same-origin" });
  me = null;
  showSignIn();
}

// ---------------------------------------------------------------- pages

const pages = {
  graph: { title: "Status graph", load: (r) => api("/ui/api/overview?window=" + encodeURIComponent(r.params.get("window") || "1h")), render: renderGraph },
  dead: { title: "Dead letters", load: (r) => {
    const q = new URLSearchParams();
    if (r.params.get("reason")) q.set("reason", r.params.get("reason"));
    if (r.params.get("before")) q.set("before", r.params.get("before"));
    return api("/ui/api/dead?" + q);
  }, render: renderDead },
  trail: { title: "Audit trail", load: (r) => r.arg ? api("/ui/api/trail/" + r.arg.split("/").map(encodeURIComponent).join("/")) : Promise.resolve(null), render: renderTrail },
  reloads: { title: "Reloads", load: async (r) => {
    const list = await api("/ui/api/reloads");
    const from = r.params.get("from"), to = r.params.get("to");
    let diff = null;
    if (from && to) {
      try { diff = await api("/ui/api/diff?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to)); }
      catch (x) { diff = { error: x.message }; }
    }
    return { list, diff, from, to };
  }, render: renderReloads },
  budgets: { title: "Budgets", load: () => api("/ui/api/budgets"), render: renderBudgets },
};

function focusKey() {
  const a = document.activeElement;
  return a && a.dataset ? a.dataset.key || (a.id ? "#" + a.id : null) : null;
}

function restoreFocus(key) {
  if (!key) return;
  const t = key.startsWith("#") ? document.getElementById(key.slice(1))
    : document.querySelector('[data-key="' + CSS.escape(key) + '"]');
  if (t) t.focus();
}

async function show(force) {
  if (!me) return;
  const r = route();
  const p = pages[r.page] || pages.graph;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.page === r.page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  let data;
  try { data = await p.load(r); } catch (x) {
    if (!me) return;
    // Said in place of the page, never over another record's data.
    lastJson = "";
    const view = document.getElementById("view");
    view.replaceChildren(el("section", { "aria-labelledby": "page-title" },
      el("h2", { id: "page-title", tabindex: "-1" }, p.title),
      p === pages.trail ? trailForm(r) : null,
      el("p", { class: "bad", role: "alert" }, "Could not load this page: " + x.message)));
    return;
  }
  const json = JSON.stringify(data);
  if (!force && json === lastJson) return;
  lastJson = json;
  const key = focusKey();
  const view = document.getElementById("view");
  const body = el("section", { "aria-labelledby": "page-title" }, el("h2", { id: "page-title", tabindex: "-1" }, p.title));
  p.render(body, data, r);
  view.replaceChildren(body);
  document.title = p.title + " · l3map ops console";
  restoreFocus(key);
}

function stopPolling() { clearInterval(timer); timer = null; }

function startPolling() {
  stopPolling();
  timer = setInterval(() => {
    if (document.hidden || document.getElementById("confirm").open) return;
    show(false);
  }, POLL_MS);
}

// ---------------------------------------------------------------- graph

function renderGraph(body, d, r) {
  const w = d.window;
  const select = el("select", { id: "window", onchange: (e) => { location.hash = "#/graph?window=" + e.target.value; } },
    (me.windows || []).map((x) => el("option", { value: x, selected: x === w }, "last " + x)));
  body.append(el("div", { class: "row" }, el("label", { for: "window" }, "Window"), select,
    el("span", { class: "muted" }, "revision " + d.revision + " · since " + when(d.since_ms))));
  for (const t of d.tables) {
    body.append(el("h3", {}, "statuses " + t.connection));
    body.append(drawTable(t));
    const rows = t.edges.concat(t.off_table).filter((e) => e.decided || e.refused);
    body.append(el("table", {},
      el("caption", { class: "muted" }, rows.length ? "Moves in the window" : "No moves in the window"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "From"), el("th", { scope: "col" }, "To"),
        el("th", { scope: "col", class: "num" }, "Decided"), el("th", { scope: "col", class: "num" }, "Refused"),
        el("th", { scope: "col" }, "Condition"))),
      el("tbody", {}, rows.map((e) => el("tr", {}, el("td", {}, e.from), el("td", {}, e.to),
        el("td", { class: "num" }, e.decided), el("td", { class: "num" + (e.refused ? " bad" : "") }, e.refused),
        el("td", {}, e.when || (t.edges.includes(e) ? "" : "not in the table")))))));
  }
  body.append(el("h3", {}, "Refusals in the window"));
  if (!d.refusals.length) { body.append(el("p", { class: "muted" }, "None.")); return; }
  body.append(el("table", {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "What"), el("th", { scope: "col" }, "Why"),
      el("th", { scope: "col" }, "Rule"), el("th", { scope: "col", class: "num" }, "Count"))),
    el("tbody", {}, d.refusals.map((x) => el("tr", {},
      el("td", {}, (x.connection ? x.connection + ": " : "") + x.subject), el("td", {}, x.reason),
      el("td", {}, el("code", {}, x.source_loc || "—")), el("td", { class: "num" }, x.n))))));
}

function drawTable(t) {
  const W = 190, H = 44;
  const pos = {};
  for (const n of t.nodes) pos[n.name] = n;
  const s = svg("svg", { width: t.width, height: t.height, viewBox: "0 0 " + t.width + " " + t.height, role: "img",
    "aria-label": "Status graph of " + t.connection + " (the table below lists the same counts)" });
  s.append(svg("defs", {}, svg("marker", { id: "arrow-" + t.connection, viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#6b7280" }))));
  const edges = t.edges.concat(t.off_table.map((e) => Object.assign({ off: true }, e)));
  for (const e of edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const back = x2 <= x1;
    const sx = back ? a.x + W / 2 : x1, sy = back ? a.y + H : y1;
    const ex = back ? b.x + W / 2 : x2, ey = back ? b.y + H : y2;
    const mx = (sx + ex) / 2, my = back ? Math.max(sy, ey) + 28 : (sy + ey) / 2;
    const d = back ? `M${sx},${sy} Q${mx},${my} ${ex},${ey}` : `M${sx},${sy} C${mx},${sy} ${mx},${ey} ${ex},${ey}`;
    const cls = "edge" + (e.off ? " refused" : e.decided ? " busy" : "");
    s.append(svg("path", { d, class: cls, "stroke-width": e.decided ? 2 : 1, "marker-end": "url(#arrow-" + t.connection + ")" },
      svg("title", {}, e.from + " → " + e.to + ": " + e.decided + " decided, " + e.refused + " refused")));
    if (e.decided || e.refused) {
      const label = (e.decided ? "✓" + e.decided : "") + (e.decided && e.refused ? " " : "") + (e.refused ? "✗" + e.refused : "");
      s.append(svg("text", { x: mx, y: back ? my - 4 : my - 4, class: "count", "text-anchor": "middle",
        fill: e.refused ? "#b91c1c" : "#1d4ed8" }, label));
    }
  }
  for (const n of t.nodes) {
    const g = svg("g", {});
    g.append(svg("rect", { x: n.x, y: n.y, width: W, height: H, rx: 8, fill: n.fill, stroke: n.stroke, "stroke-width": n.terminal ? 3 : 1.5 }));
    g.append(svg("text", { x: n.x + 10, y: n.y + 18 }, n.name));
    if (n.label) g.append(svg("text", { x: n.x + 10, y: n.y + 34, class: "label" }, n.label));
    g.append(svg("title", {}, n.name + " (" + n.category + ")" + (n.terminal ? ", terminal" : "")));
    s.append(g);
  }
  return el("div", { class: "graph" }, s);
}

// ---------------------------------------------------------------- dead letters

function trailLink(record) {
  return el("a", { href: "#/trail/" + record, "data-key": "trail-" + record }, record);
}

function renderDead(body, d, r) {
  const reason = r.params.get("reason") || "";
  const total = d.groups.reduce((n, g) => n + g.n, 0);
  body.append(el("p", {}, total === 0 ? "No dead letters: every action was applied or is still being tried."
    : (d.groups_capped ? "At least " : "") + total + (total === 1 ? " dead letter" : " dead letters") + ", by reason. Retry reads the record again and sends what the rules still write; Drop deletes the action for good."));
  const chips = el("div", { class: "chips", role: "group", "aria-label": "Filter by reason" },
    el("button", { "aria-pressed": reason === "", "data-key": "reason-all", onclick: () => { location.hash = "#/dead"; } }, "all"),
    d.groups.map((g) => {
      const k = g.parked || "unclassified";
      return el("button", { "aria-pressed": reason === k, "data-key": "reason-" + k,
        onclick: () => { location.hash = "#/dead?reason=" + encodeURIComponent(k); } }, k + " (" + g.n + ")");
    }));
  body.append(chips);
  if (reason && me.actions && d.groups.some((x) => (x.parked || "unclassified") === reason)) {
    const g = d.groups.find((x) => (x.parked || "unclassified") === reason);
    body.append(el("p", {}, el("button", { class: "primary", "data-key": "bulk-retry", onclick: async () => {
      const n = g ? g.n : 0;
      if (!(await confirmWith("Retry all " + n + " dead letters parked for " + reason + "? Each record is read again and decided again; only what the rules still write is sent.", "Retry " + n, false))) return;
      try { const x = await api("/ui/api/dead/retry", { body: { reason } }); say("Retried " + x.retried + (x.more ? "; more remain, press again" : "")); show(true); }
      catch (x) { say("Retry failed: " + x.message); }
    } }, "Retry every dead letter parked for " + reason)));
  }
  if (!d.rows.length) return;
  body.append(el("table", { id: "dead-table" },
    el("thead", {}, el("tr", {}, ["Id", "Record", "Writes", "Rule", "Where", "Reason", "API answer", "Tries", "Parked", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, d.rows.map((row) => el("tr", { "data-id": row.id },
      el("td", { class: "num" }, row.id),
      el("td", {}, trailLink(row.record)),
      el("td", {}, writes(row.op), el("br"), el("span", { class: "muted" }, "on " + row.connection)),
      el("td", {}, row.rule),
      el("td", {}, el("code", { class: "loc" }, row.source_loc)),
      el("td", {}, row.parked || "unclassified"),
      el("td", { class: "answer" }, row.last_error || ""),
      el("td", { class: "num" }, row.attempts),
      el("td", {}, when(row.updated_ms)),
      el("td", {}, me.actions ? el("div", { class: "row" },
        el("button", { "data-key": "retry-" + row.id, "aria-label": "Retry action " + row.id, onclick: () => act(row, "retry") }, "Retry"),
        el("button", { class: "danger", "data-key": "drop-" + row.id, "aria-label": "Drop action " + row.id, onclick: () => act(row, "drop") }, "Drop"))
        : el("span", { class: "muted" }, "read-only")))))));
  if (d.next) body.append(el("p", {}, el("a", { href: "#/dead?" + new URLSearchParams(Object.assign(reason ? { reason } : {}, { before: d.next })) }, "Older dead letters")));
}

async function act(row, what) {
  const text = what === "retry"
    ? "Retry action " + row.id + " (" + writes(row.op) + " on " + row.connection + " record " + row.record + ")? l3map reads the record again and decides again against it: only what the rules still write is sent, and what a person changed meanwhile stays."
    : "Drop action " + row.id + " (" + writes(row.op) + " on " + row.connection + " record " + row.record + ")? It is deleted and never sent.";
  if (!(await confirmWith(text, what === "retry" ? "Retry" : "Drop", what === "drop"))) return;
  try {
    await api("/ui/api/actions/" + row.id + "/" + what, { body: {} });
    say((what === "retry" ? "Retried" : "Dropped") + " action " + row.id);
    await show(true);
    // Back to the page's heading, never onto another row's button (a
    // second Enter must not act on another letter).
    const title = document.getElementById("page-title");
    if (title) title.focus();
  } catch (x) {
    say("Could not " + what + " action " + row.id + ": " + x.message);
    await show(true);
    const title = document.getElementById("page-title");
    if (title) title.focus();
  }
}

// ---------------------------------------------------------------- audit trail

function trailForm(r) {
  const input = el("input", { id: "record", value: r.arg || "", placeholder: "4211 or Case/5003000000D8cuI", "aria-describedby": "record-help" });
  return el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) location.hash = "#/trail/" + input.value.trim(); } },
    el("label", { for: "record" }, "Ticket or record"), input, el("button", { type: "submit" }, "Show"));
}

// An action's state in words: a settled one was applied or superseded.
function settled(a, tries) {
  if (a.state === "dead") return "dead letter";
  if (a.state !== "done") return a.state === "sending" ? "being sent" : "waiting";
  const last = (tries || []).slice(-1)[0];
  return last && last.outcome === "superseded" ? "superseded (not sent)" : "applied";
}

function renderTrail(body, d, r) {
  body.append(trailForm(r));
  body.append(el("p", { id: "record-help", class: "muted" }, "Every event about the record, the revision and rule that decided it, and every action with its idempotency key, tries and the API's answers."));
  if (!d) return;
  const t = d.trail;
  const tries = {};
  for (const a of t.attempts) (tries[a.action_id] = tries[a.action_id] || []).push(a);
  body.append(el("h3", {}, "Actions (" + t.actions.length + (t.more ? "+" : "") + ")"));
  if (!t.actions.length) body.append(el("p", { class: "muted" }, "No action was decided for " + d.record + "."));
  else body.append(el("table", { id: "trail-actions" },
    el("thead", {}, el("tr", {}, ["Id", "Decided", "Action", "State", "Rule", "Where", "Revision", "Idempotency key", "Tries and answers"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, t.actions.map((a) => el("tr", {},
      el("td", { class: "num" }, a.id), el("td", {}, when(a.created_ms)),
      el("td", {}, a.kind + " on " + a.connection, el("details", {}, el("summary", {}, "what it sends"), el("pre", {}, JSON.stringify(a.op, null, 2)))),
      el("td", { class: a.state === "dead" ? "bad" : a.state === "done" ? "good" : "" }, settled(a, tries[a.id])),
      el("td", {}, a.rule), el("td", {}, el("code", {}, a.source_loc)), el("td", {}, el("code", {}, a.revision)),
      el("td", {}, el("code", {}, a.key)),
      el("td", {}, el("ol", {}, (tries[a.id] || []).map((x) => el("li", {}, when(x.at_ms) + " · try " + x.attempt + " · " + x.outcome + (x.answer ? ": " : ""), x.answer ? el("span", { class: "answer" }, x.answer) : null)))))))));
  body.append(el("h3", {}, "Events (" + t.events.length + (t.more ? "+" : "") + ")"));
  if (!t.events.length) { body.append(el("p", { class: "muted" }, "No event about " + d.record + " is in the store.")); return; }
  body.append(el("table", { id: "trail-events" },
    el("thead", {}, el("tr", {}, ["Received", "Event", "Source", "Revision", "Refused", "Event as recorded"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, t.events.map((e) => {
      let refused = [];
      try { refused = JSON.parse(e.refused); } catch (_) { refused = []; }
      return el("tr", {}, el("td", {}, when(e.received_ms)), el("td", {}, el("code", {}, e.key)), el("td", {}, e.source),
        el("td", {}, el("code", {}, e.revision)),
        el("td", {}, refused.length ? el("ul", {}, refused.map((x) => el("li", {}, x.what + ": " + x.reason))) : "—"),
        el("td", {}, el("details", {}, el("summary", {}, "show"), el("pre", {}, e.event))));
    }))));
}

// ---------------------------------------------------------------- reloads

function renderReloads(body, d) {
  const rows = d.list.reloads;
  body.append(el("p", {}, "Live now: ", el("code", {}, d.list.live)));
  const live = [...new Set(rows.filter((x) => x.outcome === "live").map((x) => x.revision))];
  if (live.length >= 2) {
    const from = el("select", { id: "diff-from" }, live.map((x, i) => el("option", { value: x, selected: (d.from ? x === d.from : i === 1) }, x)));
    const to = el("select", { id: "diff-to" }, live.map((x, i) => el("option", { value: x, selected: (d.to ? x === d.to : i === 0) }, x)));
    body.append(el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); location.hash = "#/reloads?from=" + encodeURIComponent(from.value) + "&to=" + encodeURIComponent(to.value); } },
      el("label", { for: "diff-from" }, "Compare"), from, el("label", { for: "diff-to" }, "with"), to, el("button", { type: "submit" }, "Show diff")));
  }
  if (d.diff) {
    body.append(el("h3", {}, "Diff " + d.from + " → " + d.to));
    if (d.diff.error) body.append(el("p", { class: "bad" }, d.diff.error));
    else if (!d.diff.files.length) body.append(el("p", { class: "muted" }, "The two revisions have the same files."));
    for (const f of (d.diff.files || [])) {
      body.append(el("h4", {}, f.path));
      body.append(el("pre", { class: "diff" }, f.diff.split("\n").map((line) =>
        el("span", { class: line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, line + "\n"))));
    }
  }
  body.append(el("table", { id: "reloads-table" },
    el("thead", {}, el("tr", {}, ["When", "Replica", "Cause", "Revision", "Outcome", "Diagnostics"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((x) => el("tr", {},
      el("td", {}, when(x.at_ms)), el("td", {}, x.replica), el("td", {}, x.cause), el("td", {}, el("code", {}, x.revision)),
      el("td", { class: x.outcome === "live" ? "good" : "bad" }, x.outcome === "live" ? "went live" : "refused"),
      el("td", {}, x.diagnostics ? el("details", { open: x === rows.find((y) => y.outcome === "refused") }, el("summary", {}, "diagnostics"),
        el("pre", { class: "diagnostics" }, x.diagnostics)) : "—"))))));
}

// ---------------------------------------------------------------- budgets

function renderBudgets(body, d) {
  body.append(el("h3", {}, "Request budgets (per token)"));
  if (!d.tokens.length) body.append(el("p", { class: "muted" }, "No request has been made yet."));
  else body.append(el("table", {},
    el("thead", {}, el("tr", {}, ["Connections", "Token (fingerprint)", "Limit", "Used (this process)", "Remaining (API said)", "Paused for", "429s"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, d.tokens.map((t) => el("tr", {}, el("td", {}, (t.connections || []).join(", ") || "—"), el("td", {}, el("code", {}, t.key)),
      el("td", { class: "num" }, t.limit + " / " + age(t.window_ms)), el("td", { class: "num" }, t.used),
      el("td", { class: "num" }, t.remaining === null ? "—" : t.remaining), el("td", {}, t.paused_ms ? age(t.paused_ms) : "—"),
      el("td", { class: "num" + (t.rate_limited ? " bad" : "") }, t.rate_limited))))));
  const q = d.queue;
  body.append(el("h3", {}, "Outbox"));
  body.append(el("table", {}, el("tbody", {},
    el("tr", {}, el("th", { scope: "row" }, "Waiting"), el("td", { class: "num" }, q.pending)),
    el("tr", {}, el("th", { scope: "row" }, "Being sent"), el("td", { class: "num" }, q.sending)),
    el("tr", {}, el("th", { scope: "row" }, "Dead letters"), el("td", { class: "num" + (q.dead ? " bad" : "") }, q.dead)),
    el("tr", {}, el("th", { scope: "row" }, "Oldest waiting"), el("td", { class: "num" }, age(q.oldest_age_ms))))));
  if (q.by_connection && q.by_connection.length) {
    body.append(el("table", {}, el("thead", {}, el("tr", {}, Object.keys(q.by_connection[0]).map((k) => el("th", { scope: "col" }, k.replace(/_/g, " "))))),
      el("tbody", {}, q.by_connection.map((c) => el("tr", {}, Object.values(c).map((v) => el("td", {}, v === null ? "—" : String(v))))))));
  }
  if (d.fleet) {
    body.append(el("h3", {}, "Fleet"));
    const ar = d.fleet.active_revision;
    body.append(el("p", {}, "Deciding by: ", el("code", {}, ar ? (ar.revision || JSON.stringify(ar)) : "—")));
    body.append(el("table", {}, el("thead", {}, el("tr", {}, ["Replica", "Host", "Revision", "Heartbeat", "Load error"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, d.fleet.replicas.map((r) => el("tr", {}, el("td", {}, el("code", {}, r.id)), el("td", {}, r.host),
        el("td", {}, el("code", {}, r.revision || "—")), el("td", {}, age(r.heartbeat_age_ms) + " ago"), el("td", { class: r.load_error ? "bad" : "" }, r.load_error || "—"))))));
    body.append(el("table", {}, el("thead", {}, el("tr", {}, Object.keys(d.fleet.leases[0] || { lease: "" }).map((k) => el("th", { scope: "col" }, k.replace(/_/g, " "))))),
      el("tbody", {}, d.fleet.leases.map((l) => el("tr", {}, Object.values(l).map((v) => el("td", {}, v === null ? "—" : String(v))))))));
  }
}

// ---------------------------------------------------------------- start

async function start() {
  try { me = await api("/ui/api/whoami"); } catch (_) { return; }
  document.getElementById("nav").hidden = false;
  const who = document.getElementById("who");
  who.replaceChildren("Signed in as ", el("strong", {}, me.name), me.actions ? "" : " (read-only)", " ",
    el("button", { onclick: signOut, id: "signout" }, "Sign out"));
  lastJson = "";
  await show(true);
  const title = document.getElementById("page-title");
  if (title) title.focus();
  startPolling();
}

window.addEventListener("hashchange", () => { lastJson = ""; show(true).then(() => document.getElementById("main").focus()); });
document.addEventListener("DOMContentLoaded", start);
