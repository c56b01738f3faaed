// Ferrogrid operator UI: every action goes through the REST admin API, either with the session
// cookie of a password sign-in (changes carry its anti-CSRF token) or with the bearer token the
// operator signed in with (kept in sessionStorage, for this browser session only).
"use strict";

const TOKEN_KEY = "ferrogrid-token";
const OPERATOR_KEY = "ferrogrid-operator";
const CSRF_KEY = "ferrogrid-csrf";
// The signed-in caller (GET /admin/api/whoami): subject, role, actions.
let me = null;
// A one-time password just used to sign in, kept only until it is changed or the user signs out.
let oneTimePassword = null;

// The credentials of a request: the bearer token, or (a session) the anti-CSRF token on changes.
function authHeaders(method = "GET") {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) return { Authorization: "Bearer " + token };
  const csrf = sessionStorage.getItem(CSRF_KEY);
  return csrf && !["GET", "HEAD"].includes(method) ? { "X-CSRF-Token": csrf } : {};
}

// Whether the signed-in caller's role allows `action` (pages and buttons it may not use are
// not shown; the API refuses them anyway).
function may(action) {
  return !!me && me.actions.includes(action);
}
const $ = (sel, root = document) => root.querySelector(sel);

// An element; `needs: "<action>"` hides it from a caller whose role lacks that action.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "needs") { if (!may(v)) node.hidden = true; }
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

class Unauthorized extends Error {}

async function api(method, path, body, extraHeaders = {}) {
  const headers = { ...authHeaders(method), ...extraHeaders };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) throw new Unauthorized("the credentials are not accepted");
  const text = await response.text();
  let data = text;
  try { data = JSON.parse(text); } catch (_) { /* not JSON: keep the text */ }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// Ask before an action that cannot be undone: a modal dialog that keeps the focus inside it
// (Tab and Shift+Tab go round its buttons), closes on Escape (as Cancel) and gives the focus
// back to where it was.
function confirmAction(text) {
  const dialog = $("#confirm");
  const before = document.activeElement;
  $("#confirm-text").textContent = text;
  // A value left by an earlier answer must not answer this one (Escape does not set it).
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (before && before.isConnected) before.focus();
      resolve(dialog.returnValue === "ok");
    }, { once: true });
    dialog.showModal();
    // Cancel first: Enter on an unread question changes nothing.
    dialog.querySelector("button[value=cancel]").focus();
  });
}

$("#confirm").addEventListener("keydown", (e) => {
  if (e.key !== "Tab") return;
  const buttons = [...$("#confirm").querySelectorAll("button")];
  const at = buttons.indexOf(document.activeElement);
  const next = e.shiftKey ? (at <= 0 ? buttons.length - 1 : at - 1) : (at === buttons.length - 1 || at < 0 ? 0 : at + 1);
  e.preventDefault();
  buttons[next].focus();
});

function message(container, text, bad = false) {
  container.replaceChildren(el("div", { class: bad ? "message bad" : "message", role: "status" }, text));
}

// A time in the operator's zone, its UTC value on hover ("" for none).
function timeEl(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const utc = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  return el("time", { datetime: d.toISOString(), title: utc }, d.toLocaleString());
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// Line diff (longest common subsequence): what an edit changes in a payload.
function diffLines(before, after) {
  const a = before.split("\n"), b = after.split("\n");
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push(["+", b[j]]); j++; }
    else { out.push(["-", a[i]]); i++; }
  }
  return out;
}

// ---- status header, from /metrics ----
function metricSum(text, name) {
  let sum = 0, seen = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = line.match(/^([a-z_]+)(\{[^}]*\})?\s+(\S+)/);
    if (m && m[1] === name) { sum += Number(m[3]); seen = true; }
  }
  return seen ? sum : null;
}

// The newest repair-queue entry announced (its id; undefined: not yet looked at this sign-in),
// and the sign-in a status refresh belongs to (an answer for an earlier one is dropped).
let lastAnnounced;
let statusEpoch = 0;

// The header's figures, from what the caller's role may read (nothing is asked that it may not).
async function refreshStatus() {
  const read = (action, method, path, none) => (may(action) ? api(method, path) : Promise.resolve(none));
  const epoch = statusEpoch;
  try {
    const [text, parked, newest] = await Promise.all([
      read("metrics_read", "GET", "/metrics", ""),
      read("output_repair_read", "GET", "/admin/api/output-repair", {}),
      read("repair_read", "GET", "/admin/api/repair?first=1", {}),
    ]);
    if (epoch !== statusEpoch) return;
    const figures = [
      ["received", metricSum(text, "ferrogrid_objects_received_total")],
      ["stored", metricSum(text, "ferrogrid_objects_stored_total")],
      ["in repair", metricSum(text, "ferrogrid_repair_queue_depth")],
      ["output repair", parked.total ?? null],
      ["in flight", metricSum(text, "ferrogrid_objects_in_flight")],
      ["jobs running", metricSum(text, "ferrogrid_jobs_running")],
    ];
    const entry = newest.items && newest.items[0];
    const last = entry && entry.error;
    // Screen readers hear of a new entry's error (the figures change too often to be read out;
    // what stood when the page opened is not news).
    const newestId = entry ? entry.id : null;
    if (lastAnnounced !== undefined && newestId && newestId !== lastAnnounced && last) $("#status-announce").textContent = `New repair-queue error: ${last}`;
    lastAnnounced = newestId;
    $("#status").replaceChildren(...figures.filter(([, v]) => v !== null).map(([k, v]) =>
      el("span", { class: "badge" }, k + " ", el("b", { "data-figure": k }, String(v)))),
      ...(last ? [el("span", { class: "badge bad" }, "last error ", el("span", { id: "last-error", title: last }, last.length > 60 ? last.slice(0, 57) + "..." : last))] : []));
  } catch (e) {
    if (e instanceof Unauthorized) signOut("You are signed out: your credentials are no longer accepted.");
  }
}

// ---- Repair ----
const repairState = { filter: "", from: "", to: "", after: null, pages: [], selected: null };

function repairQuery(extra = {}) {
  const q = new URLSearchParams();
  if (repairState.filter) q.set("filter", repairState.filter);
  if (repairState.from) q.set("from", new Date(repairState.from).toISOString());
  if (repairState.to) q.set("to", new Date(repairState.to).toISOString());
  for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined) q.set(k, v);
  return q.toString();
}

async function renderRepair(page) {
  // `#/repair?id=...` (a link from the data explorer): that entry's details open.
  const asked = new URLSearchParams((location.hash.split("?")[1]) || "").get("id");
  if (asked) {
    repairState.selected = asked;
    // Taken once: Apply, paging and other rows work as on the plain page from now on.
    history.replaceState(null, "", "#/repair");
  }
  const filterInput = el("input", { id: "repair-filter", type: "search", placeholder: "any text", value: repairState.filter });
  const fromInput = el("input", { id: "repair-from", type: "datetime-local", value: repairState.from });
  const toInput = el("input", { id: "repair-to", type: "datetime-local", value: repairState.to });
  const sampleSize = el("input", { id: "repair-sample-size", type: "number", min: "1", value: "10", class: "narrow" });
  const note = el("div", { id: "repair-message" });
  const apply = () => {
    repairState.filter = filterInput.value.trim();
    repairState.from = fromInput.value;
    repairState.to = toInput.value;
    repairState.pages = [];
    repairState.after = null;
    renderRepair(page);
  };
  const body = el("tbody", { id: "repair-rows" });
  const details = el("div", { id: "repair-details" });
  page.replaceChildren(
    el("h1", {}, "Repair queue"),
    el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); apply(); } },
      el("label", {}, "Filter", filterInput),
      el("label", {}, "From", fromInput),
      el("label", {}, "To", toInput),
      el("button", { id: "repair-apply", type: "submit" }, "Apply"),
      el("button", { needs: "repair_operate", id: "repair-retry-all", type: "button", onclick: () => bulk("retry-all") }, "Try again all"),
      el("label", {}, "Sample", sampleSize),
      el("button", { needs: "repair_operate", id: "repair-retry-sample", type: "button", class: "secondary", onclick: () => retrySample(Number(sampleSize.value) || 10) }, "Retry sample"),
      el("button", { needs: "repair_operate", id: "repair-delete-all", type: "button", class: "danger", onclick: () => bulk("delete-all") }, "Delete all"),
    ),
    note,
    el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "repair-table" },
      el("thead", {}, el("tr", {}, ["Time", "Id", "Source", "Routing key", "Status", "Error", "Attempts"].map((h) => el("th", { scope: "col" }, h)))),
      body)),
    el("div", { class: "toolbar" },
      el("button", { id: "repair-first-page", type: "button", class: "secondary", onclick: () => { repairState.pages = []; repairState.after = null; renderRepair(page); } }, "First page"),
      el("button", { id: "repair-next-page", type: "button", class: "secondary", disabled: true }, "Next page")),
    details,
  );

  async function bulk(kind) {
    const what = repairState.filter || repairState.from || repairState.to ? "every entry matching the filter" : "every entry";
    if (!(await confirmAction(kind === "retry-all" ? `Try again ${what}?` : `Delete ${what}? This cannot be undone.`))) return;
    try {
      const r = kind === "retry-all"
        ? await api("POST", "/admin/api/repair/retry-all?" + repairQuery())
        : await api("DELETE", "/admin/api/repair?" + repairQuery());
      message(note, kind === "retry-all" ? `${r.retried} entries are being tried again.` : `${r.deleted} entries deleted.`);
      setTimeout(() => loadRows(), 500);
    } catch (e) { message(note, e.message, true); }
  }

  async function retrySample(n) {
    try {
      const list = await api("GET", "/admin/api/repair?" + repairQuery({ first: n }));
      let stored = 0, failed = 0;
      for (const entry of list.items) {
        const outcome = await api("POST", `/admin/api/repair/${entry.id}/retry`);
        if (outcome.status === "repair") failed++; else stored++;
      }
      message(note, `Sample of ${list.items.length}: ${stored} went through, ${failed} still fail.`, failed > 0);
      loadRows();
    } catch (e) { message(note, e.message, true); }
  }

  async function loadRows() {
    let list;
    try { list = await api("GET", "/admin/api/repair?" + repairQuery({ first: 20, after: repairState.after })); }
    catch (e) { if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted."); return message(note, e.message, true); }
    if (!body.isConnected) return; // the operator went to another page meanwhile
    const open = (entry) => { repairState.selected = entry.id; showDetails(entry.id, details, loadRows).then(() => details.focus()); };
    body.replaceChildren(...list.items.map((entry) => el("tr", {
      class: "row" + (repairState.selected === entry.id ? " selected" : ""), "data-id": entry.id,
      onclick: () => open(entry),
    },
      el("td", {}, timeEl(entry.created_at)),
      // The id opens the details from the keyboard too (the row is for the mouse).
      el("td", { class: "mono" }, el("button", { type: "button", class: "link open-entry", "aria-label": `Open entry ${entry.id}`,
        onclick: (e) => { e.stopPropagation(); open(entry); } }, entry.id)),
      el("td", {}, `${entry.source} (${entry.input})`),
      el("td", {}, entry.routing_key ?? ""),
      el("td", {}, entry.status),
      el("td", { class: "error" }, entry.error ?? ""),
      el("td", {}, String(entry.attempts)))));
    if (list.items.length === 0) body.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "empty" }, repairState.filter || repairState.from || repairState.to
      ? "No entry matches: change the filter or the times, or clear them and Apply."
      : "The repair queue is empty: objects that fail processing wait here until they are fixed and tried again.")));
    if (repairState.selected && repairState.selected !== asked && !list.items.some((e) => e.id === repairState.selected)) {
      repairState.selected = null;
      details.replaceChildren();
    }
    const next = $("#repair-next-page", page);
    next.disabled = !list.cursor;
    next.onclick = () => { repairState.pages.push(repairState.after); repairState.after = list.cursor; loadRows(); };
  }
  await loadRows();
  if (repairState.selected) await showDetails(repairState.selected, details, loadRows);
}

async function showDetails(id, container, reload) {
  let entry;
  try { entry = await api("GET", `/admin/api/repair/${encodeURIComponent(id)}`); }
  catch (e) { container.replaceChildren(); repairState.selected = null; return; }
  const original = pretty(entry.payload);
  const editor = el("textarea", { id: "payload-editor", rows: String(Math.min(24, original.split("\n").length + 2)), spellcheck: "false", "aria-labelledby": "payload-title" });
  editor.value = original;
  const diff = el("div", { id: "payload-diff", class: "diff" });
  const note = el("div", { id: "details-message" });
  const retryEdited = el("button", { needs: "repair_operate", id: "retry-edited", type: "button", disabled: true }, "Retry edited");
  const showDiff = () => {
    const changed = editor.value !== original;
    retryEdited.disabled = !changed;
    if (!changed) { diff.replaceChildren("No changes."); return; }
    diff.replaceChildren(...diffLines(original, editor.value).filter(([op]) => op !== " ").map(([op, line]) =>
      el("span", { class: op === "+" ? "add" : "del" }, op + " " + line)));
  };
  editor.addEventListener("input", showDiff);
  const outcome = (r) => {
    if (r.status === "repair") return message(note, "Still failing: " + r.error, true);
    // It left the repair queue: the details go, the outcome stays on the page.
    repairState.selected = null;
    container.replaceChildren();
    message($("#repair-message"), `Entry ${id}: ` + (r.status === "stored" ? `stored as ${r.type}, version ${r.version}.` : `${r.status}.`));
  };
  retryEdited.onclick = async () => {
    let payload;
    try { payload = JSON.parse(editor.value); } catch (e) { return message(note, "The edited payload is not JSON: " + e.message, true); }
    const by = sessionStorage.getItem(OPERATOR_KEY) || "web ui";
    try { outcome(await api("POST", `/admin/api/repair/${encodeURIComponent(id)}/retry`, { payload, by })); reload(); }
    catch (e) { message(note, e.message, true); }
  };
  const history = (entry.history || []).map((h) =>
    el("li", {}, timeEl(h.at), ` ${h.event}` + (h.by ? ` by ${h.by}` : "") + (h.error ? `: ${h.error}` : "")));
  container.replaceChildren(
    el("h2", {}, "Entry " + entry.id),
    el("dl", {},
      el("dt", {}, "Status"), el("dd", { id: "details-status" }, entry.status),
      el("dt", {}, "Error"), el("dd", { id: "details-error", class: "error" }, entry.error ?? ""),
      el("dt", {}, "Stage"), el("dd", {}, entry.stage ?? ""),
      el("dt", {}, "Function"), el("dd", {}, entry.function ?? ""),
      el("dt", {}, "Routing key"), el("dd", {}, entry.routing_key ?? ""),
      el("dt", {}, "Attempts"), el("dd", {}, String(entry.attempts)),
      el("dt", {}, "Received"), el("dd", {}, timeEl(entry.created_at), ` from ${entry.input}`),
      el("dt", {}, "Path"), el("dd", {}, journalLink(entry.id, "Its journal timeline"))),
    el("h2", { id: "payload-title" }, "Payload (edit to fix it, then Retry edited)"),
    editor,
    el("h2", {}, "Changes"),
    diff,
    el("div", { class: "toolbar" },
      el("button", { needs: "repair_operate", id: "retry-one", type: "button", onclick: async () => {
        try { outcome(await api("POST", `/admin/api/repair/${encodeURIComponent(id)}/retry`)); reload(); } catch (e) { message(note, e.message, true); }
      } }, "Try again"),
      retryEdited,
      el("button", { needs: "repair_operate", id: "delete-one", type: "button", class: "danger", onclick: async () => {
        if (!(await confirmAction(`Delete entry ${id}? This cannot be undone.`))) return;
        try { await api("DELETE", `/admin/api/repair/${encodeURIComponent(id)}`); container.replaceChildren(); repairState.selected = null; reload(); }
        catch (e) { message(note, e.message, true); }
      } }, "Delete")),
    note,
    el("h2", {}, "History"),
    el("ol", { id: "details-history" }, history));
  container.className = "details";
  // Focusable as a whole, so that opening it from the keyboard brings the reader to it.
  container.tabIndex = -1;
  container.setAttribute("aria-label", `Repair entry ${entry.id}`);
  container.setAttribute("role", "region");
  showDiff();
}

// ---- Failed jobs and Output repair: queues of parked work with the same actions ----
const PARKED_PAGE = 50;

function parkedPage(spec) {
  return async function (page) {
    const note = el("div", { id: `${spec.id}-message` });
    const body = el("tbody", { id: `${spec.id}-rows` });
    const details = el("pre", { id: `${spec.id}-details`, class: "payload", hidden: true });
    const filter = el("input", { id: `${spec.id}-filter`, type: "search", placeholder: "Filter by any text", "aria-label": "Filter" });
    // `#/output?id=...` (a link from the data explorer): filtered to that entry.
    filter.value = new URLSearchParams((location.hash.split("?")[1]) || "").get("id") || "";
    const from = spec.times ? el("input", { id: `${spec.id}-from`, type: "datetime-local", "aria-label": "From" }) : null;
    const to = spec.times ? el("input", { id: `${spec.id}-to`, type: "datetime-local", "aria-label": "To" }) : null;
    const query = () => {
      const q = new URLSearchParams();
      if (filter.value) q.set("filter", filter.value);
      if (from && from.value) q.set("from", new Date(from.value).toISOString());
      if (to && to.value) q.set("to", new Date(to.value).toISOString());
      const text = q.toString();
      return text ? "?" + text : "";
    };
    // What the list shows and the actions on all act on: the filter as last applied (not what is
    // typed in the boxes since).
    let applied = query();
    const failed = (e) => {
      if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
      message(note, e.message, true);
    };
    const act = async (method, path, done) => {
      try { message(note, done(await api(method, path))); } catch (e) { return failed(e); }
      await load();
    };
    const summary = el("div", { id: `${spec.id}-summary` });
    // Pages of PARKED_PAGE, newest first: the cursors of the pages before this one.
    const paging = { after: null, pages: [] };
    const prev = el("button", { id: `${spec.id}-prev-page`, type: "button", class: "secondary", disabled: true, onclick: () => { paging.after = paging.pages.pop() ?? null; load(); } }, "Previous page");
    const next = el("button", { id: `${spec.id}-next-page`, type: "button", class: "secondary", disabled: true }, "Next page");
    const load = async () => { try { await show(); } catch (e) { failed(e); } };
    const apply = () => { applied = query(); paging.after = null; paging.pages = []; load(); };
    const show = async () => {
      if (spec.summary) summary.replaceChildren(await spec.summary());
      const q = applied;
      const list = await api("GET", spec.base + q + (q ? "&" : "?") + `first=${PARKED_PAGE}` + (paging.after ? `&after=${encodeURIComponent(paging.after)}` : ""));
      prev.disabled = !paging.pages.length;
      next.disabled = !list.cursor;
      next.onclick = () => { paging.pages.push(paging.after); paging.after = list.cursor; load(); };
      body.replaceChildren(...list.items.map((item) => el("tr", { "data-id": item.id, class: "row" },
        ...spec.columns.map(([, cell, cls]) => el("td", cls ? { class: cls } : {}, cell(item))),
        el("td", { class: "actions" },
          el("button", { type: "button", class: "secondary", onclick: () => { details.textContent = pretty(item); details.hidden = false; } }, "Details"), " ",
          el("button", { needs: spec.operate, type: "button", class: "secondary", onclick: () => act("POST", `${spec.base}/${item.id}/retry`, () => "Queued again.") }, "Try again"), " ",
          el("button", { needs: spec.operate, type: "button", class: "danger", onclick: async () => {
            if (await confirmAction(`Delete ${spec.what} ${item.id}?`)) await act("DELETE", `${spec.base}/${item.id}`, () => "Deleted.");
          } }, "Delete")))));
      if (!list.items.length) body.replaceChildren(el("tr", {}, el("td", { colspan: String(spec.columns.length + 1), class: "empty" }, q ? "No entry matches: change the filter or the times." : spec.empty)));
    };
    const scope = () => (applied ? `every ${spec.what} matching the filter` : `every ${spec.what}`);
    page.replaceChildren(el("h1", {}, spec.title),
      summary,
      el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); apply(); } },
        filter,
        ...(spec.times ? [el("label", {}, "From ", from), el("label", {}, "To ", to)] : []),
        el("button", { id: `${spec.id}-apply`, type: "submit", class: "secondary" }, "Apply"),
        el("button", { needs: spec.operate, id: `${spec.id}-retry-all`, type: "button", onclick: async () => {
          const on = applied;
          if (await confirmAction(`Try ${scope()} again?`)) await act("POST", `${spec.base}/retry-all${on}`, (r) => `${r.retried} queued again.`);
        } }, "Try again all"),
        el("button", { needs: spec.operate, id: `${spec.id}-delete-all`, type: "button", class: "danger", onclick: async () => {
          const on = applied;
          if (await confirmAction(`Delete ${scope()}?`)) await act("DELETE", spec.base + on, (r) => `${r.deleted} deleted.`);
        } }, "Delete all")),
      note,
      el("div", { class: "table-wrap", tabindex: "0" }, el("table", {},
        el("thead", {}, el("tr", {}, [...spec.columns.map(([h]) => h), ""].map((h) => el("th", { scope: "col" }, h)))), body)),
      el("div", { class: "toolbar pager" }, prev, next),
      details);
    await load();
  };
}

const renderJobs = parkedPage({
  id: "jobs", title: "Failed jobs", base: "/admin/api/jobs/failed", operate: "jobs_operate", what: "failed job", empty: "No failed job: jobs that fail (a script's push_job, a task's run) wait here to be tried again.",
  columns: [
    ["Failed", (job) => timeEl(job.failed_at || job.created_at)],
    ["Job", (job) => job.name],
    ["Args", (job) => JSON.stringify(job.args), "mono"],
    ["Error", (job) => job.error ?? "", "error"],
    ["Attempts", (job) => String(job.attempts)],
  ],
});

// Each output's queue: what waits for it (retrying or not yet sent), since when, and what is parked.
async function outputQueues() {
  const { items } = await api("GET", "/admin/api/output-queues");
  if (!items.length) return el("p", { class: "empty" }, "No output is replicated to: the configuration's output_processor section names none.");
  return el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "output-queues" },
    el("thead", {}, el("tr", {}, ...["Output", "Mode", "Waiting", "Oldest waiting since", "Parked"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...items.map((q) => el("tr", { "data-output": q.output },
      el("td", {}, q.output), el("td", {}, q.mode), el("td", {}, String(q.waiting)),
      el("td", {}, timeEl(q.oldest_queued_at)), el("td", {}, String(q.parked)))))));
}

const renderOutputRepair = parkedPage({
  id: "output", title: "Output repair", base: "/admin/api/output-repair", operate: "output_repair_operate", what: "output repair entry", times: true,
  empty: "Nothing waits for an output: deliveries an output refuses or cannot take are parked here.", summary: outputQueues,
  columns: [
    ["Queued", (d) => timeEl(d.created_at)],
    ["Output", (d) => d.output],
    ["Routing key", (d) => d.routing_key],
    ["Status", (d) => d.status],
    ["Error", (d) => d.error ?? "", "error"],
    ["Attempts", (d) => String(d.attempts)],
    ["Object", (d) => (d.source && may("repair_read") ? journalLink(d.source, "Journal") : "")],
  ],
});

// ---- Tasks ----
async function renderTasks(page) {
  const note = el("div", { id: "tasks-message" });
  const body = el("tbody", { id: "tasks-rows" });
  const load = async () => {
    const { tasks } = await api("GET", "/admin/api/tasks");
    body.replaceChildren(...tasks.map((t) => {
      const last = t.runs[0];
      return el("tr", { "data-task": t.name },
        el("td", {}, t.name), el("td", {}, t.kind),
        el("td", { class: "mono" }, t.schedule ?? (t.pause_sec != null ? `pause ${t.pause_sec} s` : "")),
        el("td", {}, t.state),
        el("td", {}, timeEl(t.next_run_at)),
        el("td", {}, ...(last ? [`${last.status} `, timeEl(last.started_at)] : [])),
        el("td", { class: last && last.error ? "error" : "mono" }, last ? (last.error ?? last.result ?? "") : ""),
        el("td", {},
          el("button", { needs: "tasks_operate", type: "button", onclick: async () => {
            try { await api("POST", `/admin/api/tasks/${encodeURIComponent(t.name)}/start`); message(note, `${t.name} started.`); setTimeout(load, 300); }
            catch (e) { message(note, e.message, true); }
          } }, "Start"), " ",
          el("button", { needs: "tasks_operate", type: "button", class: "secondary", onclick: async () => {
            try { await api("POST", `/admin/api/tasks/${encodeURIComponent(t.name)}/stop`); message(note, `${t.name} stopped.`); load(); }
            catch (e) { message(note, e.message, true); }
          } }, "Stop")));
    }));
    if (!tasks.length) body.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "empty" }, "No task is configured: add one to the configuration's tasks section (a cron schedule or a pause) and apply it.")));
  };
  page.replaceChildren(el("h1", {}, "Tasks"), note, el("div", { class: "table-wrap", tabindex: "0" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Task", "Kind", "Schedule", "State", "Next run", "Last run", "Result or error", ""].map((h) => el("th", { scope: "col" }, h)))), body)));
  await load();
}

// ---- Model ----
const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

// The model as a diagram: a box per type (kind, name, fields, indexes; the primary key first),
// an arrow per relation labelled with its name and cardinality, a dashed line from a type to
// the records its fields hold. Boxes go on a grid in declaration order (a type's nested records
// follow it); arrows between the same two boxes bend apart; a relation to its own type loops.
function modelDiagram(types) {
  const CH = 7.2, LH = 16, PAD = 8, GAP_X = 110;
  // Room between rows for the loops of relations to their own type (drawn over the box, their
  // labels stacked above them).
  const loops = Math.max(0, ...types.map((t) => t.relations.filter((r) => r.to === t.name).length));
  const GAP_Y = Math.max(80, 60 + loops * LH);
  const boxes = types.map((t) => {
    const fields = t.fields.map((f) => `${f.name}: ${f.type}${f.optional ? "?" : ""}`);
    const indexes = t.indexes.map((i) => `${i.primary ? "key" : "index"} ${i.name}(${i.parts.join(", ")})`);
    const longest = Math.max(t.name.length, t.kind.length + 4, ...fields.map((l) => l.length), ...indexes.map((l) => l.length));
    const height = (2 + fields.length + indexes.length) * LH + 2 * PAD + (indexes.length ? 6 : 0);
    return { t, fields, indexes, w: Math.max(150, Math.ceil(longest * CH) + 2 * PAD), h: height };
  });
  const cols = Math.max(1, Math.ceil(Math.sqrt(boxes.length)));
  const colW = [], rowH = [];
  boxes.forEach((b, i) => {
    const c = i % cols, r = Math.floor(i / cols);
    colW[c] = Math.max(colW[c] ?? 0, b.w);
    rowH[r] = Math.max(rowH[r] ?? 0, b.h);
  });
  const offset = (sizes, gap, n) => sizes.slice(0, n).reduce((a, v) => a + v + gap, 40);
  const at = new Map();
  boxes.forEach((b, i) => {
    const c = i % cols, r = Math.floor(i / cols);
    b.x = offset(colW, GAP_X, c) + (colW[c] - b.w) / 2;
    b.y = offset(rowH, GAP_Y, r);
    at.set(b.t.name, b);
  });
  const width = offset(colW, GAP_X, colW.length) - GAP_X + 40;
  const height = offset(rowH, GAP_Y, rowH.length) - GAP_Y + 40;

  // Edges: relations, then what fields hold; those between the same two boxes are spread.
  const edges = [];
  for (const t of types) {
    for (const r of t.relations) if (at.has(r.to)) edges.push({ kind: "relation", from: t.name, to: r.to, label: `${r.name} (${r.many ? "many" : "one"})`, id: `${t.name}.${r.name}`, many: r.many });
    for (const h of t.contains) if (at.has(h.type)) edges.push({ kind: "contains", from: t.name, to: h.type, label: h.field, id: `${t.name}.${h.field}` });
  }
  const pairs = new Map();
  for (const e of edges) {
    const key = [e.from, e.to].sort().join("\u0000");
    if (!pairs.has(key)) pairs.set(key, []);
    pairs.get(key).push(e);
  }
  const center = (b) => [b.x + b.w / 2, b.y + b.h / 2];
  // Where the line from the box's center toward (px, py) leaves the box.
  const border = (b, px, py) => {
    const [cx, cy] = center(b);
    const dx = px - cx, dy = py - cy;
    if (!dx && !dy) return [cx, cy];
    const t = Math.min(dx ? (b.w / 2) / Math.abs(dx) : Infinity, dy ? (b.h / 2) / Math.abs(dy) : Infinity);
    return [cx + dx * t, cy + dy * t];
  };
  const drawn = [], labels = [];
  // What the labels take, so that the picture holds them all.
  const extent = [[0, 0, width, height]];
  for (const group of pairs.values()) {
    group.forEach((e, k) => {
      const a = at.get(e.from), b = at.get(e.to);
      let d, lx, ly, anchor = "middle";
      if (a === b) {
        // Loops spread along the box's top, their labels stacked above them.
        const x = a.x + ((k + 1) * a.w) / (group.length + 1), y = a.y;
        d = `M ${x - 12} ${y} C ${x - 34} ${y - 46}, ${x + 34} ${y - 46}, ${x + 12} ${y}`;
        lx = x; ly = y - 40 - (group.length - 1 - k) * LH;
        extent.push([x - 40, y - 50, x + 40, y]);
      } else {
        // One normal for the pair (from the box first in name order), so opposite arrows part.
        const [first, second] = [a, b].sort((p, q) => (p.t.name < q.t.name ? -1 : 1));
        const [x1, y1] = center(first), [x2, y2] = center(second);
        const len = Math.hypot(x2 - x1, y2 - y1) || 1;
        const [nx, ny] = [-(y2 - y1) / len, (x2 - x1) / len];
        const bend = (k - (group.length - 1) / 2) * 46;
        const [ax, ay] = center(a), [bx, by] = center(b);
        const cx = (ax + bx) / 2 + nx * bend, cy = (ay + by) / 2 + ny * bend;
        const [sx, sy] = border(a, cx, cy), [tx, ty] = border(b, cx, cy);
        d = `M ${sx} ${sy} Q ${cx} ${cy} ${tx} ${ty}`;
        lx = 0.25 * sx + 0.5 * cx + 0.25 * tx; ly = 0.25 * sy + 0.5 * cy + 0.25 * ty;
        // The label beside the curve, on the side it bends to: arrows that part keep their
        // labels apart too.
        const side = bend < 0 ? -1 : 1;
        const [ox, oy] = [nx * side, ny * side];
        if (Math.abs(ox) > Math.abs(oy)) { anchor = ox > 0 ? "start" : "end"; lx += ox > 0 ? 6 : -6; ly += 4; }
        else ly += oy > 0 ? 14 : -6;
      }
      const lw = e.label.length * CH;
      const left = anchor === "start" ? lx : anchor === "end" ? lx - lw : lx - lw / 2;
      extent.push([left, ly - LH, left + lw, ly + 4]);
      drawn.push(svg("g", { class: `edge ${e.kind}`, "data-edge": e.id, "data-from": e.from, "data-to": e.to },
        svg("title", {}, e.kind === "relation" ? `${e.from} → ${e.to}: ${e.label}` : `${e.from}.${e.label} holds ${e.to}`),
        svg("path", { d, fill: "none", "marker-end": e.kind === "relation" ? `url(#arrow-${e.many ? "many" : "one"})` : undefined })));
      // Labels go on top of the boxes, so that none is hidden under one.
      labels.push(svg("text", { x: lx, y: ly, "text-anchor": anchor, class: `edge-label ${e.kind}`, "data-label-for": e.id }, e.label));
    });
  }
  const boxNodes = boxes.map((b) => {
    const lines = [];
    let y = b.y + PAD + LH - 3;
    lines.push(svg("text", { x: b.x + b.w / 2, y, "text-anchor": "middle", class: "type-kind" }, `«${b.t.kind}»`));
    y += LH;
    lines.push(svg("text", { x: b.x + b.w / 2, y, "text-anchor": "middle", class: "type-name" }, b.t.name));
    const rule = (yy) => svg("line", { x1: b.x, x2: b.x + b.w, y1: yy, y2: yy, class: "type-rule" });
    lines.push(rule(y + 6));
    y += 4;
    for (const f of b.fields) { y += LH; lines.push(svg("text", { x: b.x + PAD, y, class: "type-field" }, f)); }
    if (b.indexes.length) {
      lines.push(rule(y + 7));
      y += 6;
      for (const i of b.indexes) { y += LH; lines.push(svg("text", { x: b.x + PAD, y, class: "type-index" }, i)); }
    }
    return svg("g", { class: `type-box ${b.t.kind.toLowerCase()}`, "data-type": b.t.name },
      svg("title", {}, b.t.doc ? `${b.t.kind} ${b.t.name}: ${b.t.doc}` : `${b.t.kind} ${b.t.name}`),
      svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 6 }), lines);
  });
  const marker = (id, path) => svg("marker", { id, viewBox: "0 0 12 10", refX: 11, refY: 5, markerWidth: 12, markerHeight: 10, orient: "auto-start-reverse" },
    svg("path", { d: path }));
  const [minX, minY] = [Math.min(...extent.map((e) => e[0])) - 10, Math.min(...extent.map((e) => e[1])) - 10];
  const [maxX, maxY] = [Math.max(...extent.map((e) => e[2])) + 10, Math.max(...extent.map((e) => e[3])) + 10];
  const [viewW, viewH] = [Math.ceil(maxX - minX), Math.ceil(maxY - minY)];
  const relations = edges.filter((e) => e.kind === "relation").length;
  const summary = `${types.length} type(s): ${types.map((t) => t.name).join(", ")}; ${relations} relation(s)`;
  return el("figure", { class: "model-figure" },
    el("div", { class: "table-wrap", tabindex: "0" },
      svg("svg", { id: "model-diagram", role: "img", "aria-label": `The model: ${summary}`, viewBox: `${Math.floor(minX)} ${Math.floor(minY)} ${viewW} ${viewH}`, width: viewW, height: viewH },
        svg("defs", {}, marker("arrow-one", "M 0 0 L 12 5 L 0 10 z"), marker("arrow-many", "M 0 0 L 6 5 L 0 10 z M 6 0 L 12 5 L 6 10 z")),
        drawn, boxNodes, labels)),
    el("figcaption", { id: "model-summary", class: "hint" }, summary));
}

// The Types section: the diagram, with the text form a click away (the choice is remembered).
function modelTypes(model) {
  const types = model.types ?? [];
  if (!types.length) return [el("p", { id: "model-text" }, "No types: the configuration has no `types` section.")];
  const text = el("pre", { id: "model-text" }, model.text);
  const figure = modelDiagram(types);
  const toggle = el("button", { type: "button", class: "secondary", id: "model-show" });
  const show = (asText) => {
    text.hidden = !asText;
    figure.hidden = asText;
    toggle.textContent = asText ? "Show as a diagram" : "Show as text";
    try { localStorage.setItem("ferrogrid.model.view", asText ? "text" : "diagram"); } catch { /* not remembered */ }
  };
  toggle.addEventListener("click", () => show(figure.hidden === false));
  let chosen = null;
  try { chosen = localStorage.getItem("ferrogrid.model.view"); } catch { /* the diagram then */ }
  show(chosen === "text");
  return [el("div", { class: "toolbar" }, toggle), figure, text];
}

async function renderModel(page) {
  const [model, indexes, unlinked] = await Promise.all([
    api("GET", "/admin/api/model"), api("GET", "/admin/api/indexes"), api("GET", "/admin/api/unlinked")]);
  const building = indexes.items.filter((i) => i.state === "building");
  const indexRows = indexes.items.map((i) => el("tr", { "data-index": `${i.type}.${i.index}` },
    el("td", {}, i.type), el("td", {}, i.index),
    el("td", { class: i.state === "building" ? "error" : "" },
      i.state === "building" ? `building: ${i.versions_done ?? 0} versions done` : "ready")));
  const result = el("div", { id: "unlinked-result" });
  const clear = (type, drop) => async () => {
    const what = drop ? `Drop the unlinked type ${type}: delete its data and forget it?` : `Truncate the unlinked type ${type}: delete its data?`;
    if (!(await confirmAction(what))) return;
    try {
      const r = drop ? await api("DELETE", `/admin/api/unlinked/${encodeURIComponent(type)}`)
        : await api("POST", `/admin/api/unlinked/${encodeURIComponent(type)}/truncate`);
      await renderModel(page);
      message($("#unlinked-result", page), `${drop ? "Dropped" : "Truncated"} ${type}: ${r.keys_deleted} keys deleted.`);
    } catch (e) { message(result, e.message, true); }
  };
  const unlinkedRows = unlinked.items.map((u) => el("tr", { "data-unlinked": u.type },
    el("td", {}, u.type), el("td", {}, String(u.versions) + (u.more ? "+" : "")),
    el("td", {}, el("button", { needs: "config_apply", type: "button", class: "secondary", onclick: clear(u.type, false) }, "Truncate"), " ",
      el("button", { needs: "config_apply", type: "button", class: "danger", onclick: clear(u.type, true) }, "Drop"))));
  page.replaceChildren(el("h1", {}, "Model"),
    el("h2", {}, "Types"),
    ...modelTypes(model),
    el("h2", {}, "Indexes"),
    building.length ? el("p", { id: "index-building", class: "hint" }, `${building.length} index(es) being built; queries naming them answer INDEX_BUILDING until they are ready.`) : "",
    el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "index-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Type"), el("th", { scope: "col" }, "Index"), el("th", { scope: "col" }, "State"))),
      el("tbody", {}, indexRows))),
    el("h2", {}, "Unlinked types"),
    el("p", { class: "hint" }, "Types with stored data that the model no longer has. A model that brings a type back finds its data again."),
    unlinked.items.length ? el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "unlinked-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Type"), el("th", { scope: "col" }, "Stored versions"), el("th", { scope: "col" }, ""))),
      el("tbody", {}, unlinkedRows))) : el("p", { id: "no-unlinked" }, "None."),
    result);
  if (building.length) setTimeout(() => { if (location.hash.startsWith("#/model") && page.isConnected) renderModel(page).catch(() => {}); }, 2000);
}

// ---- Configuration ----
// A tar (ustar) of the chosen files, gzip-compressed by the browser: what PUT /admin/api/config takes.
async function tarGz(files) {
  const enc = new TextEncoder();
  const parts = [];
  const field = (buf, at, len, text) => { const b = enc.encode(text); buf.set(b.slice(0, len), at); };
  const octal = (n, len) => n.toString(8).padStart(len - 1, "0") + "\0";
  for (const { name, data } of files) {
    const header = new Uint8Array(512);
    let path = name, prefix = "";
    if (enc.encode(path).length > 100) {
      // ustar: a prefix of up to 155 bytes and a name of up to 100, split at a "/".
      const cut = [...path].map((c, i) => (c === "/" ? i : -1)).filter((i) => i > 0)
        .find((i) => enc.encode(path.slice(0, i)).length <= 155 && enc.encode(path.slice(i + 1)).length <= 100);
      if (cut === undefined) throw new Error(`${name}: the path is too long for a tar archive; upload a zip instead`);
      prefix = path.slice(0, cut); path = path.slice(cut + 1);
    }
    field(header, 0, 100, path);
    field(header, 100, 8, octal(0o644, 8));
    field(header, 108, 8, octal(0, 8));
    field(header, 116, 8, octal(0, 8));
    field(header, 124, 12, octal(data.length, 12));
    field(header, 136, 12, octal(0, 12));
    field(header, 148, 8, "        ");
    header[156] = "0".charCodeAt(0);
    field(header, 257, 6, "ustar\0");
    field(header, 263, 2, "00");
    field(header, 345, 155, prefix);
    let sum = 0;
    for (const b of header) sum += b;
    field(header, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    parts.push(header, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  const stream = new Blob(parts).stream().pipeThrough(new CompressionStream("gzip"));
  return new Blob([await new Response(stream).arrayBuffer()]);
}

async function putConfig(body, contentType, dryRun) {
  const response = await fetch("/admin/api/config" + (dryRun ? "?dry_run=true" : ""), {
    method: "PUT",
    headers: { ...authHeaders("PUT"), "Content-Type": contentType },
    body,
  });
  if (response.status === 401) throw new Unauthorized("the credentials are not accepted");
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  return { ok: response.ok, status: response.status, data };
}

function planView(data) {
  const list = (items) => items && items.length ? items.join(", ") : "none";
  const m = data.migration || {};
  return el("dl", { id: "config-plan" },
    el("dt", {}, "Files changed"), el("dd", {}, `added: ${list(data.changed.added)}; removed: ${list(data.changed.removed)}; modified: ${list(data.changed.modified)}`),
    el("dt", {}, "Sections changed"), el("dd", {}, list(data.sections_changed)),
    el("dt", {}, "Indexes to build"), el("dd", {}, list(m.build)),
    el("dt", {}, "Indexes removed"), el("dd", {}, list(m.drop)),
    el("dt", {}, "New types"), el("dd", {}, list(m.new_types)),
    el("dt", {}, "Unlinked types"), el("dd", {}, list(m.unlinked_types)),
    el("dt", {}, "At the next start"), el("dd", {}, list(data.at_next_start)),
    el("dt", {}, "Ignored files"), el("dd", {}, list(data.ignored)));
}

async function renderConfig(page) {
  const listed = await api("GET", "/admin/api/config");
  const picker = el("input", { id: "config-files", type: "file", multiple: true, accept: ".zip,.gz,.tgz,.yml,.yaml,.json,.avsc,.rhai,.wsdl,.xml" });
  const folder = el("input", { id: "config-folder", type: "file", webkitdirectory: true, multiple: true });
  const result = el("div", { id: "config-result" });
  let pending = null; // { body, contentType }

  async function choose(fileList) {
    const files = [...fileList];
    if (!files.length) return;
    const single = files.length === 1 ? files[0] : null;
    try {
      if (single && /\.zip$/i.test(single.name)) pending = { body: single, contentType: "application/zip" };
      else if (single && /\.(tar\.gz|tgz|gz)$/i.test(single.name)) pending = { body: single, contentType: "application/gzip" };
      else {
        const entries = await Promise.all(files.map(async (f) => ({ name: f.webkitRelativePath || f.name, data: new Uint8Array(await f.arrayBuffer()) })));
        pending = { body: await tarGz(entries), contentType: "application/gzip" };
      }
    } catch (e) { return message(result, e.message, true); }
    await check();
  }

  async function check() {
    try {
      const r = await putConfig(pending.body, pending.contentType, true);
      if (!r.ok) return problems(r);
      if (r.data.unchanged) return message(result, `This is the active configuration (version ${r.data.version}): nothing to apply.`);
      result.replaceChildren(el("div", { class: "message", role: "status" }, "The configuration passed every check. What applying it changes:"),
        planView(r.data),
        el("div", { class: "toolbar" }, el("button", { needs: "config_apply", id: "config-apply", type: "button", onclick: apply }, "Apply")));
    } catch (e) {
      if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
      message(result, e.message, true);
    }
  }

  function problems(r) {
    result.replaceChildren(el("div", { class: "message bad", role: "alert" }, r.data.error || `refused (${r.status})`),
      el("ul", { id: "config-problems" }, (r.data.problems || []).map((p) => el("li", { class: "mono" }, p))));
  }

  async function apply() {
    try {
      const r = await putConfig(pending.body, pending.contentType, false);
      if (!r.ok) return problems(r);
      await renderConfig(page);
      const warnings = r.data.warnings || [];
      message($("#config-result", page), `Applied: version ${r.data.version} is active (${r.data.took_ms} ms).` +
        (warnings.length ? " With problems: " + warnings.join("; ") : ""), warnings.length > 0);
    } catch (e) { message(result, e.message, true); }
  }

  async function rollback(version) {
    if (!(await confirmAction(`Apply version ${version} again (as a new version)?`))) return;
    try {
      const r = await api("POST", `/admin/api/config/rollback/${version}`);
      await renderConfig(page);
      message($("#config-result", page), r.unchanged ? `Version ${version} is the active configuration already.` : `Rolled back: version ${r.version} (the files of ${version}) is active.`);
    } catch (e) {
      message(result, e.message, true);
    }
  }

  async function download(version) {
    let response;
    try { response = await fetch(`/admin/api/config/${version}/archive`, { headers: authHeaders() }); }
    catch (e) { return message(result, `download failed: ${e.message}`, true); }
    if (!response.ok) return message(result, `download failed: ${response.status}`, true);
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: `ferrogrid-config-v${version}.tar.gz` });
    document.body.append(link); link.click(); link.remove();
  }

  const compare = el("div", { id: "config-diff" });
  const fromSel = el("select", { id: "diff-from", "aria-label": "From version" }, listed.versions.map((v) => el("option", { value: v.version }, `v${v.version}`)));
  const toSel = el("select", { id: "diff-to", "aria-label": "To version" }, listed.versions.map((v) => el("option", { value: v.version }, `v${v.version}`)));
  if (listed.versions.length > 1) fromSel.value = listed.versions[1].version;
  async function showDiff() {
    let a, b;
    try { [a, b] = await Promise.all([api("GET", `/admin/api/config/${fromSel.value}`), api("GET", `/admin/api/config/${toSel.value}`)]); }
    catch (e) { return compare.replaceChildren(el("div", { class: "message bad", role: "alert" }, e.message)); }
    const names = [...new Set([...Object.keys(a.files), ...Object.keys(b.files)])].sort();
    const changed = names.filter((n) => a.files[n] !== b.files[n]);
    if (!changed.length) return compare.replaceChildren(el("p", {}, "The two versions have the same files."));
    compare.replaceChildren(...changed.map((n) => el("div", { class: "details", "data-file": n },
      el("h2", {}, n + (a.files[n] === undefined ? " (added)" : b.files[n] === undefined ? " (removed)" : "")),
      el("div", { class: "diff" }, diffLines(a.files[n] ?? "", b.files[n] ?? "").filter(([k]) => k !== " ").map(([k, line]) =>
        el("span", { class: k === "+" ? "add" : "del" }, `${k} ${line}`))))));
  }

  const rows = listed.versions.map((v) => el("tr", { "data-version": v.version },
    el("td", {}, `v${v.version}` + (v.version === listed.active ? " (active)" : "")),
    el("td", {}, v.applied_at), el("td", {}, v.applied_by), el("td", {}, v.how),
    el("td", { class: "mono" }, [...v.changed.added.map((f) => "+" + f), ...v.changed.removed.map((f) => "-" + f), ...v.changed.modified.map((f) => "~" + f)].join(" ")),
    el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => download(v.version) }, "Download"), " ",
      v.version === listed.active ? "" : el("button", { needs: "config_apply", type: "button", class: "secondary", "data-rollback": v.version, onclick: () => rollback(v.version) }, "Roll back to this"))));

  picker.addEventListener("change", () => choose(picker.files));
  folder.addEventListener("change", () => choose(folder.files));
  page.replaceChildren(el("h1", {}, "Configuration"),
    el("p", { needs: "config_apply", class: "hint" }, "Upload a zip or tar.gz of a configuration folder, or the folder's files: it is checked first, and you see what applying it changes before you confirm. It is applied without a restart."),
    el("div", { needs: "config_apply", id: "config-upload", class: "toolbar" },
      el("label", {}, "Archive or files", picker),
      el("label", {}, "A folder", folder)),
    result,
    el("h2", {}, "Versions"),
    el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "config-versions" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Version"), el("th", { scope: "col" }, "Applied"), el("th", { scope: "col" }, "By"), el("th", { scope: "col" }, "How"), el("th", { scope: "col" }, "Files"), el("th", { scope: "col" }, ""))),
      el("tbody", {}, rows))),
    el("h2", {}, "Compare two versions"),
    el("div", { class: "toolbar" }, fromSel, toSel, el("button", { id: "diff-show", type: "button", class: "secondary", onclick: showDiff }, "Show changes")),
    compare);
}

// ---- Test ----
const TEST_SAMPLES = {
  json: '{\n  "id": 1,\n  "username": "John Smith"\n}',
  soap: '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">\n  <soap:Body>\n    <Connect>\n      <User><id>1</id><username>John Smith</username></User>\n    </Connect>\n  </soap:Body>\n</soap:Envelope>',
};

// POST a SOAP envelope to /soap?sync=true and read the outcome (or the Fault) from the answer.
async function postSoap(xml) {
  const response = await fetch("/soap?sync=true", {
    method: "POST",
    headers: { ...authHeaders("POST"), "Content-Type": "text/xml; charset=utf-8" },
    body: xml,
  });
  if (response.status === 401) throw new Unauthorized("the credentials are not accepted");
  const doc = new DOMParser().parseFromString(await response.text(), "application/xml");
  const field = (name) => doc.getElementsByTagNameNS("*", name)[0]?.textContent ?? null;
  if (!response.ok) throw new Error(field("faultstring") || field("Text") || `${response.status} ${response.statusText}`);
  return { status: field("status"), routing_key: field("routing_key"), type: field("type"), version: field("version"), error: field("error") };
}

async function renderTest(page) {
  const input = el("textarea", { id: "test-body", rows: "12", spellcheck: "false", "aria-label": "Body to send" });
  input.value = TEST_SAMPLES.json;
  const kind = el("select", { id: "test-kind", "aria-label": "Input", onchange: () => { input.value = TEST_SAMPLES[kind.value]; } },
    el("option", { value: "json" }, "JSON — POST /http"),
    el("option", { value: "soap" }, "SOAP — POST /soap"));
  const result = el("div", { id: "test-result" });
  page.replaceChildren(el("h1", {}, "Test an object"),
    el("p", { class: "hint" }, "Posts the body through the real input (POST /http?sync=true or POST /soap?sync=true) and shows what happened to it."),
    el("div", { class: "toolbar" }, kind),
    input,
    el("div", { class: "toolbar" }, el("button", { id: "test-send", type: "button", onclick: async () => {
      try {
        const r = kind.value === "soap" ? await postSoap(input.value) : await api("POST", "/http?sync=true", input.value);
        if (r.status === "stored") message(result, `Stored as ${r.type} (routing key ${r.routing_key}), version ${r.version}.`);
        else if (r.status === "routed") message(result, `Routed to an output (routing key ${r.routing_key}).`);
        else message(result, `Kept in the repair queue (routing key ${r.routing_key ?? "none"}): ${r.error}`, true);
        if (r.id && may("repair_read")) result.append(" ", journalLink(r.id, "Its journal timeline"));
      } catch (e) {
        if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
        message(result, "Refused: " + e.message, true);
      }
    } }, "Send")),
    result);
}


// ---- Settings: users, tokens, roles, data actions, password policy, audit log ----
// Each tab is shown to a role that may read it; its buttons to one that may change it.
const settingsTabs = [
  ["users", "Users", "users_read"],
  ["tokens", "Tokens", "tokens_read"],
  ["roles", "Roles", "roles_read"],
  ["data-actions", "Data actions", "roles_read"],
  ["password-policy", "Password policy", null],
  ["notifications", "Notifications", "config_read"],
  ["audit", "Audit log", "audit_log_read"],
];

function table(id, headers, rows, empty) {
  const body = el("tbody", {}, rows.length ? rows : [el("tr", {}, el("td", { colspan: String(headers.length), class: "empty" }, empty))]);
  return el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id }, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))), body));
}

// A secret shown once, with a note that it is not shown again.
function secretOnce(note, what, secret) {
  note.replaceChildren(el("div", { class: "message", role: "status" }, `${what} — shown once, copy it now: `,
    el("code", { id: "shown-secret", class: "mono" }, secret)));
}

async function renderSettings(page) {
  const tabs = settingsTabs.filter(([, , action]) => action === null || may(action));
  const asked = (location.hash.match(/^#\/settings\/([\w-]+)/) || [])[1];
  const tab = tabs.find(([id]) => id === asked) || tabs[0];
  const note = el("div", { id: "settings-message" });
  const content = el("div", { id: `settings-${tab[0]}` });
  page.replaceChildren(el("h1", {}, "Settings"),
    el("nav", { class: "tabs" }, tabs.map(([id, title]) => el("a", { href: `#/settings/${id}`, "data-tab": id, class: id === tab[0] ? "active" : "" }, title))),
    note, content);
  const act = async (f, done) => {
    try { const r = await f(); if (done) done(r); await renderSettingsTab(tab[0], content, note, act); }
    catch (e) { if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted."); message(note, e.message, true); }
  };
  await renderSettingsTab(tab[0], content, note, act);
}

// Repair-queue notifications (TDG's Settings > Mail server and Subscribers): who gets a mail
// when objects enter the repair queue, and through which SMTP server. Read by config_read,
// changed by config_apply; the password is never shown (left empty, it stays).
function notifierForm(n, act, note) {
  const server = n.mail_server || {};
  const field = (id, label, value, attrs = {}) => {
    const input = el("input", { id, "aria-label": label, ...attrs });
    input.value = value == null ? "" : String(value);
    return [input, el("label", {}, label + " ", input)];
  };
  const [url, urlLabel] = field("notifier-url", "SMTP server", server.url, { placeholder: "smtp://mail.example.com:25" });
  const [from, fromLabel] = field("notifier-from", "From", server.from, { placeholder: "Ferrogrid <grid@example.com>" });
  const [user, userLabel] = field("notifier-username", "User name", server.username);
  const [password, passwordLabel] = field("notifier-password", "Password", "", { type: "password", placeholder: server.password_set ? "unchanged" : "" });
  const [timeout, timeoutLabel] = field("notifier-timeout", "Timeout (s)", server.timeout ?? 5, { type: "number", min: "1" });
  const [interval, intervalLabel] = field("notifier-interval", "At most one mail every (s)", n.interval_seconds, { type: "number", min: "1" });
  const [link, linkLabel] = field("notifier-link", "Web UI address", n.link, { placeholder: "https://grid.example.com" });
  const users = (n.users || []).map((u) => ({ id: u.id, name: u.name, addr: u.addr }));
  const rows = el("tbody", {});
  const drawUsers = () => rows.replaceChildren(...(users.length ? users.map((u, i) => el("tr", { "data-subscriber": u.addr },
    el("td", {}, u.name), el("td", {}, u.addr),
    el("td", {}, el("button", { needs: "config_apply", type: "button", class: "danger", onclick: () => { users.splice(i, 1); drawUsers(); } }, "Remove")))) :
    [el("tr", {}, el("td", { colspan: "3" }, "Nobody gets notices yet: add a subscriber."))]));
  drawUsers();
  const [name, nameLabel] = field("subscriber-name", "Name", "");
  const [addr, addrLabel] = field("subscriber-addr", "E-mail", "", { type: "email" });
  const addUser = el("button", { needs: "config_apply", id: "subscriber-add", type: "button", class: "secondary", onclick: () => {
    if (!addr.value) return message(note, "A subscriber needs an e-mail address.", true);
    const ids = users.map((u) => Number(u.id)).filter((x) => !Number.isNaN(x));
    users.push({ id: (ids.length ? Math.max(...ids) : 0) + 1, name: name.value || addr.value, addr: addr.value });
    name.value = ""; addr.value = ""; drawUsers();
  } }, "Add subscriber");
  const save = () => {
    const mail = url.value ? { url: url.value, from: from.value, username: user.value || null, timeout: Number(timeout.value) || 5 } : null;
    if (mail && password.value) mail.password = password.value;
    act(() => api("PUT", "/admin/api/notifier", { mail_server: mail, users, interval_seconds: Number(interval.value) || 60, link: link.value || null }),
      () => message(note, "The notification settings are saved."));
  };
  return el("div", {},
    el("p", { class: "hint" }, n.source === "api" ? "Set here, over the configuration's notifier section." : "From the configuration's notifier section; saving here puts these in its place."),
    el("form", { id: "notifier-form", class: "details", onsubmit: (e) => { e.preventDefault(); save(); } },
      el("div", { class: "toolbar" }, urlLabel, fromLabel),
      el("div", { class: "toolbar" }, userLabel, passwordLabel, timeoutLabel),
      el("div", { class: "toolbar" }, intervalLabel, linkLabel),
      el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "subscribers-table" }, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Subscriber"), el("th", { scope: "col" }, "E-mail"), el("th", { scope: "col" }, ""))), rows)),
      el("div", { needs: "config_apply", class: "toolbar" }, nameLabel, addrLabel, addUser),
      el("div", { needs: "config_apply", class: "toolbar" }, el("button", { id: "notifier-save", type: "submit" }, "Save"),
        n.source === "api" ? el("button", { id: "notifier-reset", type: "button", class: "secondary", onclick: () =>
          act(() => api("DELETE", "/admin/api/notifier"), () => message(note, "Back to the configuration's notifier section.")) }, "Back to the configuration's") : "")));
}

// The password policy form (TDG's Settings > Password Policy): for users_admin; it applies to
// passwords set from then on.
function policyForm(p, act, note) {
  const minLength = el("input", { id: "policy-min-length", type: "number", min: "1", max: "1024", "aria-label": "Least length" });
  minLength.value = String(p.password_policy.min_length);
  const boxes = ["lower", "upper", "digits", "symbols"].map((c) => {
    const box = el("input", { type: "checkbox", id: `policy-${c}`, "data-class": c });
    box.checked = Boolean(p.password_policy.include[c]);
    return el("label", {}, box, " " + c);
  });
  const include = () => Object.fromEntries(boxes.map((l) => { const b = l.querySelector("input"); return [b.dataset.class, b.checked]; }));
  return el("form", { needs: "users_admin", id: "password-policy-form", class: "details", onsubmit: (e) => { e.preventDefault();
      act(() => api("PUT", "/admin/api/password-policy", { min_length: Number(minLength.value), include: include() }), () => message(note, "The password policy is saved; it applies to passwords set from now on.")); } },
    el("div", { class: "toolbar" }, el("label", {}, "Least length ", minLength)),
    el("div", { class: "checks" }, boxes),
    el("div", { class: "toolbar" }, el("button", { id: "policy-save", type: "submit" }, "Save policy"),
      p.overridden ? el("button", { id: "policy-reset", type: "button", class: "secondary", onclick: () =>
        act(() => api("DELETE", "/admin/api/password-policy"), () => message(note, "Back to the configuration's password policy.")) }, "Back to the configuration's") : ""));
}

async function roleOptions(select) {
  const roles = may("roles_read") ? await api("GET", "/admin/api/roles") : [{ name: "admin" }, { name: "supervisor" }, { name: "user" }];
  select.replaceChildren(...roles.map((r) => el("option", { value: r.name }, r.name)));
  select.value = "user";
}

async function renderSettingsTab(tab, content, note, act) {
  if (tab === "users") {
    const users = await api("GET", "/admin/api/users");
    const login = el("input", { id: "user-login", placeholder: "login", "aria-label": "Login" });
    const email = el("input", { id: "user-email", placeholder: "e-mail (optional)", "aria-label": "E-mail" });
    const password = el("input", { id: "user-password", type: "password", placeholder: "password (empty: a one-time one)", "aria-label": "Password", autocomplete: "new-password" });
    const role = el("select", { id: "user-role", "aria-label": "Role" });
    await roleOptions(role);
    content.replaceChildren(
      el("form", { needs: "users_admin", class: "toolbar", onsubmit: (e) => { e.preventDefault(); act(() => api("POST", "/admin/api/users", { login: login.value, email: email.value || null, role: role.value, password: password.value || null }),
        (u) => { if (u.password) secretOnce(note, `User ${u.login} created with the one-time password`, u.password); else if (u.password_sent_to) message(note, `User ${u.login} created; the one-time password was mailed to ${u.password_sent_to}.`); else message(note, `User ${u.login} created.`); }); } },
        login, email, password, role, el("button", { id: "user-create", type: "submit" }, "Create user")),
      table("users-table", ["Login", "Role", "State", "Last sign-in", "Failed attempts", ""], users.map((u) => el("tr", { "data-login": u.login },
        el("td", {}, u.login), el("td", {}, u.role), el("td", {}, u.state + (u.state_reason ? ` (${u.state_reason})` : "")),
        el("td", {}, timeEl(u.last_login)), el("td", {}, String(u.failed_login_attempts)),
        el("td", { hidden: u.login === me.subject },
          el("button", { needs: "users_admin", type: "button", class: "secondary", onclick: () => act(() => api("POST", `/admin/api/users/${encodeURIComponent(u.login)}/${u.state === "blocked" ? "unblock" : "block"}`)) }, u.state === "blocked" ? "Unblock" : "Block"), " ",
          el("button", { needs: "users_admin", type: "button", class: "secondary", onclick: () => act(() => api("POST", `/admin/api/users/${encodeURIComponent(u.login)}/reset-password`),
            (r) => r.password_sent_to ? message(note, `A new one-time password of ${u.login} was mailed to ${r.password_sent_to}.`) : secretOnce(note, `New one-time password of ${u.login}`, r.password)) }, "Reset password"), " ",
          el("button", { needs: "users_admin", type: "button", class: "danger", onclick: async () => { if (await confirmAction(`Delete user ${u.login}?`)) act(() => api("DELETE", `/admin/api/users/${encodeURIComponent(u.login)}`)); } }, "Delete")))),
        "No users yet."));
  } else if (tab === "tokens") {
    const tokens = await api("GET", "/admin/api/tokens");
    const name = el("input", { id: "token-name", placeholder: "name", "aria-label": "Name" });
    const expires = el("input", { id: "token-expires", type: "number", min: "0", placeholder: "expires in s (0: never)", "aria-label": "Expires in" });
    const role = el("select", { id: "token-role", "aria-label": "Role" });
    await roleOptions(role);
    content.replaceChildren(
      el("form", { needs: "tokens_admin", class: "toolbar", onsubmit: (e) => { e.preventDefault(); act(() => api("POST", "/admin/api/tokens", { name: name.value, role: role.value, expires_in: Number(expires.value) || 0 }),
        (t) => secretOnce(note, `Token ${t.name} created`, t.token)); } },
        name, role, expires, el("button", { id: "token-create", type: "submit" }, "Create token")),
      table("tokens-table", ["Name", "Role", "State", "Expires", ""], tokens.map((t) => el("tr", { "data-token": t.name },
        el("td", {}, t.name), el("td", {}, t.role), el("td", {}, t.state + (t.expired ? " (expired)" : "")), el("td", {}, t.expires_at ? timeEl(t.expires_at) : "never"),
        el("td", { hidden: t.name === me.subject },
          el("button", { needs: "tokens_admin", type: "button", class: "secondary", onclick: () => act(() => api("POST", `/admin/api/tokens/${encodeURIComponent(t.name)}/${t.state === "blocked" ? "unblock" : "block"}`)) }, t.state === "blocked" ? "Unblock" : "Block"), " ",
          el("button", { needs: "tokens_admin", type: "button", class: "danger", onclick: async () => { if (await confirmAction(`Delete token ${t.name}?`)) act(() => api("DELETE", `/admin/api/tokens/${encodeURIComponent(t.name)}`)); } }, "Delete")))),
        "No tokens."));
  } else if (tab === "roles") {
    const [roles, actions, data] = await Promise.all([api("GET", "/admin/api/roles"), api("GET", "/admin/api/actions"), api("GET", "/admin/api/data-actions")]);
    const name = el("input", { id: "role-name", placeholder: "name", "aria-label": "Name" });
    const boxes = actions.map((a) => el("label", { class: "check", title: a.description }, el("input", { type: "checkbox", value: a.name, "data-action": a.name }), a.name));
    const dataBoxes = data.map((d) => el("label", { class: "check" }, el("input", { type: "checkbox", value: d.name, "data-data-action": d.name }), d.name));
    const checked = (list) => list.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    content.replaceChildren(
      el("form", { needs: "roles_admin", class: "details", onsubmit: (e) => { e.preventDefault(); act(() => api("POST", "/admin/api/roles", { name: name.value, actions: checked(boxes), data_actions: checked(dataBoxes) }), () => message(note, `Role ${name.value} created.`)); } },
        el("div", { class: "toolbar" }, name, el("button", { id: "role-create", type: "submit" }, "Create role")),
        el("p", { class: "hint" }, "Actions"), el("div", { class: "checks" }, boxes),
        el("p", { class: "hint" }, "Data actions"), el("div", { class: "checks" }, dataBoxes.length ? dataBoxes : "none yet")),
      table("roles-table", ["Role", "Actions", "Data actions", ""], roles.map((r) => el("tr", { "data-role": r.name },
        el("td", {}, r.name + (r.built_in ? " (built in)" : "")), el("td", { class: "mono" }, r.actions.join(" ")), el("td", {}, r.data_actions.join(", ")),
        el("td", {}, r.built_in ? "" : el("button", { needs: "roles_admin", type: "button", class: "danger", onclick: async () => { if (await confirmAction(`Delete role ${r.name}?`)) act(() => api("DELETE", `/admin/api/roles/${encodeURIComponent(r.name)}`)); } }, "Delete")))),
        "No roles."));
  } else if (tab === "data-actions") {
    const data = await api("GET", "/admin/api/data-actions");
    const name = el("input", { id: "data-action-name", placeholder: "name", "aria-label": "Name" });
    const rights = el("textarea", { id: "data-action-rights", rows: "3", "aria-label": "Rights", spellcheck: "false" });
    rights.value = '{"Book": {"read": true, "write": false}}';
    content.replaceChildren(
      el("form", { needs: "roles_admin", class: "details", onsubmit: (e) => { e.preventDefault();
        act(() => api("POST", "/admin/api/data-actions", { name: name.value, aggregates: JSON.parse(rights.value) }), () => message(note, `Data action ${name.value} created.`)); } },
        el("p", { class: "hint" }, "Read and write rights per aggregate type, as JSON."), rights,
        el("div", { class: "toolbar" }, name, el("button", { id: "data-action-create", type: "submit" }, "Create data action"))),
      table("data-actions-table", ["Data action", "Rights", ""], data.map((d) => el("tr", { "data-name": d.name },
        el("td", {}, d.name), el("td", { class: "mono" }, Object.entries(d.aggregates).map(([t, r]) => `${t}: ${[r.read && "read", r.write && "write"].filter(Boolean).join("+") || "none"}`).join(", ")),
        el("td", {}, el("button", { needs: "roles_admin", type: "button", class: "danger", onclick: async () => { if (await confirmAction(`Delete data action ${d.name}?`)) act(() => api("DELETE", `/admin/api/data-actions/${encodeURIComponent(d.name)}`)); } }, "Delete")))),
        "No data actions."));
  } else if (tab === "notifications") {
    content.replaceChildren(notifierForm(await api("GET", "/admin/api/notifier"), act, note));
  } else if (tab === "password-policy") {
    const p = await api("GET", "/admin/api/password-policy");
    const classes = Object.entries(p.password_policy.include).filter(([, on]) => on).map(([c]) => c);
    const row = (k, v) => [el("dt", {}, k), el("dd", {}, v == null ? "not set" : String(v))];
    content.replaceChildren(el("div", { class: "details" }, el("dl", { id: "password-policy" },
      row("Least length", p.password_policy.min_length), row("Must include", classes.join(", ") || "nothing"),
      row("Lock-out after failed attempts", p.block_after_n_failed_attempts), row("Between own password changes (s)", p.password_change_timeout_seconds),
      row("Blocked after unused for (s)", p.ban_inactive_more_seconds), row("One-time passwords only", p.only_one_time_passwords),
      row("Session lifetime (s)", p.session_lifetime_seconds)),
      el("p", { class: "hint" }, p.overridden
        ? "The password policy is an administrator's, over the configuration's; the rest is the configuration's account_manager section."
        : "Set in the configuration's account_manager section (Configuration page).")),
      policyForm(p, act, note));
  } else if (tab === "audit") {
    const subject = el("input", { id: "audit-subject", placeholder: "subject", "aria-label": "Subject" });
    const text = el("input", { id: "audit-text", type: "search", placeholder: "text", "aria-label": "Text" });
    const severity = el("select", { id: "audit-severity", "aria-label": "Severity" }, ["", "VERBOSE", "INFO", "WARNING", "ALARM"].map((v) => el("option", { value: v }, v || "any severity")));
    const from = el("input", { id: "audit-from", type: "datetime-local", "aria-label": "From" });
    const to = el("input", { id: "audit-to", type: "datetime-local", "aria-label": "To" });
    const rows = el("div", {});
    // Pages of 100, newest first: the cursors (entry ids) of the pages before this one.
    // The filter last applied (pages follow it, not what is typed since).
    const paging = { after: null, pages: [], filter: new URLSearchParams() };
    const applyFilter = () => {
      const f = new URLSearchParams();
      if (subject.value) f.set("subject", subject.value);
      if (text.value) f.set("text", text.value);
      if (severity.value) f.set("severity", severity.value);
      if (from.value) f.set("from", new Date(from.value).toISOString());
      if (to.value) f.set("to", new Date(to.value).toISOString());
      Object.assign(paging, { after: null, pages: [], filter: f });
    };
    const shown = (promise) => promise.catch((err) => {
      if (err instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
      message(note, err.message, true);
    });
    const prev = el("button", { id: "audit-prev-page", type: "button", class: "secondary", disabled: true, onclick: () => { paging.after = paging.pages.pop() ?? null; shown(load()); } }, "Previous page");
    const next = el("button", { id: "audit-next-page", type: "button", class: "secondary", disabled: true }, "Next page");
    const load = async () => {
      const q = new URLSearchParams(paging.filter);
      q.set("first", "101");
      if (paging.after) q.set("after", paging.after);
      const got = await api("GET", "/admin/api/audit?" + q);
      const events = got.slice(0, 100);
      prev.disabled = !paging.pages.length;
      next.disabled = got.length <= 100;
      next.onclick = () => { paging.pages.push(paging.after); paging.after = events[events.length - 1].id; shown(load()); };
      rows.replaceChildren(table("audit-table", ["Time", "Severity", "Subject", "Source", "Action", "Object", "Outcome", "Message"], events.map((e) => el("tr", {},
        el("td", {}, timeEl(e.time)), el("td", {}, e.severity), el("td", {}, e.subject), el("td", {}, e.source), el("td", {}, e.action),
        el("td", { class: "mono" }, e.object), el("td", {}, e.outcome), el("td", { class: "mono" }, e.message))), "No entries."));
    };
    content.replaceChildren(
      el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); applyFilter(); shown(load()); } }, subject, text, severity, from, to, el("button", { id: "audit-apply", type: "submit" }, "Apply")),
      el("div", { class: "toolbar" }, el("button", { needs: "audit_log_admin", id: "audit-clear", type: "button", class: "danger", onclick: async () => {
        if (await confirmAction("Clear the audit log? The clear itself is recorded.")) act(() => api("DELETE", "/admin/api/audit"), (r) => message(note, `${r.removed} entries removed.`));
      } }, "Clear the log")),
      rows,
      el("div", { class: "toolbar pager" }, prev, next));
    await load();
  }
}



// ---- Data explorer: browse a type, query by an index, open an object and walk its versions ----
// Reads go through GET /data (the types the caller may read) and GET /data/{type}; edits are
// GraphQL mutations (POST /graphql), so they get the same checks as any other client's.
const dataState = { types: null, type: "", index: "", op: "==", value: "", deleted: false, after: null, pages: [] };
const STRING_KINDS = new Set(["string", "Date", "Time", "DateTime", "Decimal"]);
const PAGE_SIZE = 20;

// The JSON text of what the operator typed for an index of `parts` (exact: numbers stay text,
// so integers past 2^53 reach the server as typed); throws with what is wrong.
function keyText(parts, raw) {
  const text = raw.trim();
  if (parts.length > 1) {
    let list;
    try { list = JSON.parse(text); } catch (_) { list = null; }
    if (!Array.isArray(list)) throw new Error(`a composite index takes a JSON array of ${parts.length} values, e.g. [1, "a"]`);
    return text;
  }
  const kind = parts[0].kind;
  if (STRING_KINDS.has(kind)) return JSON.stringify(raw);
  if (kind === "boolean") {
    if (text !== "true" && text !== "false") throw new Error(`${parts[0].path} is a boolean: true or false`);
    return text;
  }
  const integral = kind === "long" || kind === "int";
  if (!(integral ? /^-?\d+$/ : /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/).test(text)) {
    throw new Error(`${parts[0].path} is ${integral ? "an integer" : "a number"} (${kind}): "${raw}" is not one`);
  }
  return text;
}

// Every leaf of `value` as path -> JSON text (objects by field, arrays by position).
function leaves(value, path = "", out = new Map()) {
  if (value !== null && typeof value === "object" && Object.keys(value).length) {
    for (const [k, v] of Object.entries(value)) leaves(v, Array.isArray(value) ? `${path}[${k}]` : (path ? `${path}.${k}` : k), out);
  } else {
    out.set(path || "(whole)", JSON.stringify(value));
  }
  return out;
}

// The fields that differ between two objects: [path, before, after] (undefined: absent).
function fieldDiff(a, b) {
  const x = leaves(a), y = leaves(b);
  const paths = [...new Set([...x.keys(), ...y.keys()])];
  return paths.filter((p) => x.get(p) !== y.get(p)).map((p) => [p, x.get(p), y.get(p)]);
}

// Whether `value` holds an integer JavaScript may have rounded (past 2^53): such objects are not
// edited here (the editor would write the rounded value back).
function roundsIntegers(value) {
  if (typeof value === "number") return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (value && typeof value === "object") return Object.values(value).some(roundsIntegers);
  return false;
}

async function dataTypes() {
  if (!dataState.types) dataState.types = (await api("GET", "/data")).types;
  return dataState.types;
}

const dataLink = (type, keyJson, text) =>
  el("a", { href: `#/data?type=${encodeURIComponent(type)}&key=${encodeURIComponent(keyJson)}`, class: "object-link" }, text);

async function renderData(page) {
  // Read again: the model or the caller's rights may have changed since sign-in (kept as they
  // were when the read fails).
  const types = (await api("GET", "/data")).types;
  dataState.types = types;
  const params = new URLSearchParams((location.hash.split("?")[1]) || "");
  if (!types.length) {
    page.replaceChildren(el("h1", {}, "Data"), el("p", { class: "empty" }, "Your role may read no type of the model: ask an administrator for data actions that read one."));
    return;
  }
  if (params.get("type") && params.get("key") !== null) return renderObject(page, types, params.get("type"), params.get("key"));
  if (!types.some((t) => t.name === dataState.type)) Object.assign(dataState, { type: types[0].name, index: "", value: "", after: null, pages: [] });
  // The type the form shows (`chosen`) and the one the table holds (`type`, applied by Query).
  const type = () => types.find((t) => t.name === dataState.type);
  const chosen = () => types.find((t) => t.name === typeSelect.value) || type();
  const typeSelect = el("select", { id: "data-type" }, ...types.map((t) => el("option", { value: t.name }, t.name)));
  const indexSelect = el("select", { id: "data-index" });
  const opSelect = el("select", { id: "data-op" });
  const value = el("input", { id: "data-value", type: "search", placeholder: "value" });
  const deleted = el("input", { id: "data-deleted", type: "checkbox" });
  const note = el("div", { id: "data-message" });
  const head = el("thead");
  const body = el("tbody", { id: "data-rows" });
  const hint = el("p", { class: "hint", id: "data-hint" });
  const fillIndexes = () => {
    const t = chosen();
    indexSelect.replaceChildren(el("option", { value: "" }, "(all, by primary key)"),
      ...t.indexes.map((i) => el("option", { value: i.name }, `${i.name} (${i.parts.map((p) => `${p.path}: ${p.kind}`).join(", ")})` + (i.primary ? " — primary" : ""))));
    indexSelect.value = t.indexes.some((i) => i.name === dataState.index) ? dataState.index : "";
    fillOps();
  };
  const fillOps = () => {
    const index = chosen().indexes.find((i) => i.name === indexSelect.value);
    const op = opSelect.value || dataState.op;
    opSelect.replaceChildren(...(index ? index.operators : ["=="]).map((o) => el("option", { value: o }, o)));
    opSelect.value = index && index.operators.includes(op) ? op : "==";
    opSelect.disabled = value.disabled = !index;
    hint.textContent = !index ? "Every object of the type, in primary-key order."
      : index.parts.length > 1 ? "A composite index: a JSON array of its parts' values (a prefix works with > < >= <=)."
      : opSelect.value === "like" ? "like: % matches any run of characters, _ exactly one." : "";
  };
  typeSelect.value = dataState.type;
  value.value = dataState.value;
  deleted.checked = dataState.deleted;
  typeSelect.onchange = () => { indexSelect.value = ""; fillIndexes(); };
  indexSelect.onchange = fillOps;
  opSelect.onchange = fillOps;
  fillIndexes();

  const query = () => {
    const t = type();
    const q = new URLSearchParams({ first: String(PAGE_SIZE + 1) });
    const index = t.indexes.find((i) => i.name === dataState.index);
    if (index) q.set("filter", `[[${JSON.stringify(index.name)}, ${JSON.stringify(dataState.op)}, ${keyText(index.parts, dataState.value)}]]`);
    if (dataState.deleted) q.set("dont_skip_deleted", "true");
    if (dataState.after) q.set("after", dataState.after);
    return `/data/${encodeURIComponent(t.name)}?${q}`;
  };
  const load = async () => {
    const t = type();
    let items, more;
    try { items = await api("GET", query()); more = items.length > PAGE_SIZE; items = items.slice(0, PAGE_SIZE); }
    catch (e) {
      if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
      body.replaceChildren();
      return message(note, e.message, true);
    }
    note.replaceChildren();
    const columns = t.fields.map((f) => f.name).slice(0, 6);
    head.replaceChildren(el("tr", {}, ...columns.map((c) => el("th", { scope: "col" }, c)), el("th", { scope: "col" }, "Version"), el("th", { scope: "col" }, "")));
    body.replaceChildren(...items.map((item) => el("tr", { class: item.deleted ? "deleted" : "", "data-key": item.key_text ?? "" },
      ...columns.map((c) => el("td", { class: "mono" }, item.object[c] === undefined ? "" : JSON.stringify(item.object[c]))),
      el("td", {}, versionTime(item.version_text), item.deleted ? " (deleted)" : ""),
      el("td", {}, item.key_text !== null ? dataLink(t.name, item.key_text, "Open") : ""))));
    if (!items.length) {
      const filtered = !!dataState.index;
      body.replaceChildren(el("tr", {}, el("td", { colspan: String(columns.length + 2), class: "empty" },
        filtered ? "No object matches: try another operator or value, or query without an index." : `No ${t.name} is stored yet: objects appear here once an input stores them.`)));
    }
    const next = $("#data-next-page", page);
    next.disabled = !more;
    next.onclick = () => { dataState.pages.push(dataState.after); dataState.after = items[items.length - 1].cursor; load(); };
    $("#data-prev-page", page).disabled = !dataState.pages.length;
    $("#data-page-number", page).textContent = `Page ${dataState.pages.length + 1}`;
  };
  const apply = () => {
    Object.assign(dataState, { type: typeSelect.value, index: indexSelect.value, op: opSelect.value, value: value.value, deleted: deleted.checked, after: null, pages: [] });
    try { query(); } catch (e) { body.replaceChildren(); return message(note, e.message, true); }
    load();
  };
  page.replaceChildren(
    el("h1", {}, "Data"),
    el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); apply(); } },
      el("label", {}, "Type", typeSelect),
      el("label", {}, "Index", indexSelect),
      el("label", {}, "Operator", opSelect),
      el("label", {}, "Value", value),
      el("label", { class: "check" }, deleted, "Show deleted"),
      el("button", { id: "data-query", type: "submit" }, "Query")),
    hint, note,
    el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "data-table" }, head, body)),
    el("div", { class: "toolbar pager" },
      el("button", { id: "data-prev-page", type: "button", class: "secondary", onclick: () => { dataState.after = dataState.pages.pop() ?? null; load(); } }, "Previous page"),
      el("span", { id: "data-page-number" }),
      el("button", { id: "data-next-page", type: "button", class: "secondary" }, "Next page")));
  try { query(); } catch (_) { Object.assign(dataState, { index: "", after: null, pages: [] }); indexSelect.value = ""; fillOps(); }
  await load();
}

// A version (nanoseconds since the epoch, as text) as a time element: local, UTC on hover.
function versionTime(versionText) {
  const ms = Number(BigInt(versionText) / 1000000n);
  const node = timeEl(new Date(ms).toISOString());
  node.title = `version ${versionText}, ${node.title}`;
  return node;
}

// One object: its current state, its versions with a field diff between any two, what the
// journal links to it (repair-queue entries, output deliveries), and edits for writers.
async function renderObject(page, types, typeName, keyJson) {
  const t = types.find((x) => x.name === typeName);
  if (!t) { page.replaceChildren(el("h1", {}, "Data"), el("div", { class: "message bad", role: "alert" }, `${typeName} is not a type you may read.`)); return; }
  const primary = t.indexes.find((i) => i.primary);
  // The key (from the link) must be a whole primary key: one value, or an array of one value per
  // part. A shorter array would match every object it is a prefix of.
  let key;
  try { key = JSON.parse(keyJson); } catch (_) { key = undefined; }
  const whole = primary.parts.length > 1
    ? Array.isArray(key) && key.length === primary.parts.length && key.every((v) => v === null || typeof v !== "object")
    : key !== undefined && (key === null || typeof key !== "object");
  if (!whole) {
    page.replaceChildren(el("h1", {}, "Data"), el("div", { class: "message bad", role: "alert" },
      `${keyJson} is not a primary key of ${t.name}: ${primary.parts.length > 1 ? `a JSON array of ${primary.parts.length} values (${primary.parts.map((p) => p.path).join(", ")})` : `one ${primary.parts[0].kind} value`}.`));
    return;
  }
  const filter = `[[${JSON.stringify(primary.name)}, "==", ${keyJson}]]`;
  const base = `/data/${encodeURIComponent(t.name)}?filter=${encodeURIComponent(filter)}&dont_skip_deleted=true`;
  const versions = [];
  let after = null;
  const more = async () => {
    const got = await api("GET", `${base}&all_versions=true&first=${PAGE_SIZE + 1}` + (after ? `&after=${encodeURIComponent(after)}` : ""));
    const shown = got.slice(0, PAGE_SIZE);
    versions.push(...shown);
    after = got.length > PAGE_SIZE ? shown[shown.length - 1].cursor : null;
  };
  await more();
  const back = el("a", { href: "#/data", id: "data-back" }, `Back to ${t.name} objects`);
  if (!versions.length) {
    page.replaceChildren(el("h1", {}, `${t.name} ${keyJson}`), back, el("p", { class: "empty" }, "No version of this object is stored (a wrong key, or it was deleted for good)."));
    return;
  }
  const current = versions[0];
  const note = el("div", { id: "object-message" });
  const diffView = el("div", { id: "version-diff" });
  const versionBody = el("tbody", { id: "version-rows" });
  const pick = { a: versions.length > 1 ? 1 : 0, b: 0 };
  const showDiff = () => {
    const [va, vb] = [versions[pick.a], versions[pick.b]];
    // A tombstone keeps the object's last state: its fields compare as they are.
    const changes = fieldDiff(va.object, vb.object);
    const label = (v) => `version ${v.version_text}` + (v.deleted ? " (deleted)" : "");
    diffView.replaceChildren(
      el("p", { class: "hint" }, `From ${label(va)} to ${label(vb)}.`),
      changes.length ? el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "diff-table" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Field"), el("th", { scope: "col" }, "From"), el("th", { scope: "col" }, "To"))),
        el("tbody", {}, ...changes.map(([path, before, after]) => el("tr", { "data-field": path, class: before === undefined ? "added" : after === undefined ? "removed" : "changed" },
          el("td", { class: "mono" }, path),
          el("td", { class: "mono del" }, before ?? "(absent)"),
          el("td", { class: "mono add" }, after ?? "(absent)"))))))
        : el("p", { class: "empty" }, pick.a === pick.b ? "The same version on both sides: pick two different ones."
          : va.deleted !== vb.deleted ? "No field differs: one of them is the deletion (a tombstone keeps the last state)." : "No field differs."));
  };
  const paintVersions = () => {
    versionBody.replaceChildren(...versions.map((v, i) => el("tr", { "data-version": v.version_text, class: v.deleted ? "deleted" : "" },
      el("td", {}, el("input", { type: "radio", name: "diff-a", "aria-label": `Compare from version ${v.version_text}`, checked: pick.a === i, onchange: () => { pick.a = i; showDiff(); } })),
      el("td", {}, el("input", { type: "radio", name: "diff-b", "aria-label": `Compare to version ${v.version_text}`, checked: pick.b === i, onchange: () => { pick.b = i; showDiff(); } })),
      el("td", { class: "mono" }, v.version_text),
      el("td", {}, versionTime(v.version_text)),
      el("td", {}, v.deleted ? "deleted (tombstone)" : i === 0 ? "current" : ""),
      el("td", {}, String(v.config_version ?? "")))));
    $("#versions-more", page).hidden = !after;
    $("#object-version-count", page).textContent = String(versions.length) + (after ? "+" : "");
  };
  const related = el("div", { id: "object-related" });
  const editor = el("textarea", { id: "object-editor", rows: "12", spellcheck: "false", "aria-label": `${t.name} as JSON` });
  const editing = el("div", { id: "object-edit", hidden: true }, editor,
    el("div", { class: "toolbar" },
      el("button", { id: "object-save", type: "button", onclick: () => save() }, "Save as a new version"),
      el("button", { type: "button", class: "secondary", onclick: () => { editing.hidden = true; } }, "Cancel")));
  const mutate = async (args, variables = {}, declare = "") => {
    const query = `mutation ExplorerEdit${declare} { ${t.graphql}(${args}) { __typename } }`;
    const r = await api("POST", "/graphql", { query, variables });
    if (r.errors && r.errors.length) throw new Error(r.errors.map((e) => e.message).join("; "));
    // A mutation that matched nothing (deleted meanwhile by someone else) wrote nothing.
    if (!r.data || !Array.isArray(r.data[t.graphql]) || !r.data[t.graphql].length) throw new Error("nothing was written: it was deleted or changed meanwhile; reload to see it");
  };
  const save = async () => {
    let object;
    try { object = JSON.parse(editor.value); } catch (e) { return message(note, "Not JSON: " + e.message, true); }
    try {
      await mutate(`insert: $object, only_if_version: ${current.version_text}`, { object }, `($object: ${t.insert_type})`);
      await renderObject(page, types, typeName, keyJson);
      message($("#object-message", page), "Saved as a new version.");
      $("#object-title", page).focus();
    } catch (e) { message(note, "Not saved: " + e.message, true); }
  };
  const remove = async () => {
    if (!(await confirmAction(`Delete ${t.name} ${keyJson}? A tombstone version is written; its history stays.`))) return;
    try {
      await mutate(`${primary.graphql}: ${keyJson}, delete: true, only_if_version: ${current.version_text}`);
      await renderObject(page, types, typeName, keyJson);
      message($("#object-message", page), "Deleted: a tombstone version was written.");
      $("#object-title", page).focus();
    } catch (e) { message(note, "Not deleted: " + e.message, true); }
  };
  const rounding = roundsIntegers(current.object);
  const writable = t.write && !current.deleted;
  page.replaceChildren(
    el("h1", { id: "object-title", tabindex: "-1" }, `${t.name} ${keyJson}`),
    back,
    el("section", { class: "details", "aria-labelledby": "object-current-title" },
      el("h2", { id: "object-current-title" }, current.deleted ? "Current state: deleted" : "Current state"),
      el("dl", {},
        el("dt", {}, "Version"), el("dd", { id: "object-version" }, current.version_text, " (", versionTime(current.version_text), ")"),
        el("dt", {}, "Configuration version"), el("dd", {}, String(current.config_version ?? "")),
        el("dt", {}, "Versions"), el("dd", { id: "object-version-count" }, String(versions.length) + (after ? "+" : ""))),
      el("pre", { id: "object-json", class: "payload" }, current.deleted ? "(deleted: its last content is in the version before)" : pretty(current.object)),
      writable ? el("div", { class: "toolbar" },
        el("button", { id: "object-edit-open", type: "button", disabled: rounding, onclick: () => { editor.value = pretty(current.object); editing.hidden = false; editor.focus(); } }, "Edit"),
        el("button", { id: "object-delete", type: "button", class: "danger", onclick: remove }, "Delete"),
        rounding ? el("span", { class: "hint" }, "Holds integers past 2^53, which a browser rounds: edit it through GraphQL.") : "")
        : el("p", { class: "hint", id: "object-read-only" }, t.write ? "A deleted object: write a new version through its input or GraphQL." : "Read-only: your role may not write this type."),
      editing, note),
    el("section", { class: "details", "aria-labelledby": "object-versions-title" },
      el("h2", { id: "object-versions-title" }, "Version history"),
      el("div", { class: "table-wrap", tabindex: "0" }, el("table", { id: "version-table" },
        el("thead", {}, el("tr", {}, ...["From", "To", "Version", "Written", "State", "Config"].map((h) => el("th", { scope: "col" }, h)))),
        versionBody)),
      el("div", { class: "toolbar" }, el("button", { id: "versions-more", type: "button", class: "secondary", onclick: async () => {
        try { await more(); paintVersions(); } catch (e) { message(note, e.message, true); }
      } }, "Older versions")),
      el("h2", {}, "Changes"),
      diffView),
    el("section", { class: "details", "aria-labelledby": "object-related-title" },
      el("h2", { id: "object-related-title" }, "Repair queue, deliveries and journal"),
      related));
  paintVersions();
  showDiff();
  await relatedEntries(related, t.name, keyJson);
}

// What the journal ties to one object: the inputs that stored or failed to update it (still in
// the repair queue?), its deliveries (still parked?), and the link to its whole journal.
async function relatedEntries(container, typeName, keyJson) {
  if (!may("repair_read")) {
    container.replaceChildren(el("p", { class: "hint" }, "Your role may not read the repair queue or the journal."));
    return;
  }
  const journal = el("a", { id: "object-journal-link", href: `#/journal?type=${encodeURIComponent(typeName)}&key=${encodeURIComponent(keyJson)}`, class: "journal-link" }, "Its journal");
  let found;
  try { found = await api("GET", `/admin/api/journal?type=${encodeURIComponent(typeName)}&key=${encodeURIComponent(keyJson)}`); }
  catch (e) { container.replaceChildren(el("p", { class: "error" }, e.message)); return; }
  const events = found.objects.flatMap((o) => o.events);
  const failed = [...new Set(events.filter((e) => e.kind === "processed" && e.status === "repair").map((e) => e.id))].slice(0, 20);
  const deliveries = [...new Set(events.filter((e) => e.kind === "delivery" && e.delivery).map((e) => e.delivery))].slice(0, 20);
  const lookup = async (path) => { try { return await api("GET", path); } catch (_) { return null; } };
  const [repairs, parked] = await Promise.all([
    Promise.all(failed.map((id) => lookup(`/admin/api/repair/${encodeURIComponent(id)}`))),
    may("output_repair_read") ? Promise.all(deliveries.map((id) => lookup(`/admin/api/output-repair/${encodeURIComponent(id)}`))) : Promise.resolve([]),
  ]);
  const repairItems = repairs.filter(Boolean).map((r) => el("li", { "data-repair": r.id },
    el("a", { href: `#/repair?id=${encodeURIComponent(r.id)}`, class: "repair-link" }, `Repair entry ${r.id}`), ` — ${r.status}, ${r.stage ?? ""}: `, el("span", { class: "error" }, r.error ?? "")));
  const parkedItems = parked.filter(Boolean).map((d) => el("li", { "data-delivery": d.id },
    el("a", { href: `#/output?id=${encodeURIComponent(d.id)}`, class: "output-link" }, `Delivery ${d.id} to ${d.output}`), ` — ${d.status}: `, el("span", { class: "error" }, d.error ?? "")));
  const sent = deliveries.length - parkedItems.length;
  container.replaceChildren(
    el("p", {}, journal, ` — ${found.objects.length} input(s) of this object in the journal.`),
    el("h3", {}, "In the repair queue"),
    repairItems.length ? el("ul", { id: "object-repairs" }, repairItems) : el("p", { class: "empty", id: "object-no-repairs" }, "No input of this object waits in the repair queue."),
    el("h3", {}, "Output deliveries"),
    !may("output_repair_read") ? el("p", { class: "hint" }, "Your role may not read the output repair queue.")
      : parkedItems.length ? el("ul", { id: "object-deliveries" }, parkedItems)
      : el("p", { class: "empty" }, deliveries.length ? `${sent} delivery(ies) recorded; none waits in the output repair queue.` : "No delivery of this object is recorded."));
}

// ---- Journal: every object's path, as a timeline ----
const journalLink = (id, text = "Journal") => el("a", { href: `#/journal?id=${encodeURIComponent(id)}`, class: "journal-link" }, text);

// One line of a timeline: when, what, and what came of it.
function journalLine(e) {
  const at = timeEl(e.at);
  let what, bad = false;
  if (e.kind === "processed") {
    const steps = (e.steps || []).map((s) => `${s.step} ${s.ms} ms`).join(", ");
    const from = `received from ${e.input}` + (e.size !== undefined ? ` (${e.size} bytes)` : "") + (e.attempt > 1 ? `, attempt ${e.attempt}` : "");
    const route = e.routing_key ? `, routing key ${e.routing_key}` : "";
    let end;
    if (e.status === "stored") end = `stored as ${e.type} ${JSON.stringify(e.key)}, version ${e.version}`;
    else if (e.status === "routed") end = `sent to ${e.output}`;
    else { end = `kept in the repair queue at ${e.stage}${e.function ? ` (${e.function})` : ""}: ${e.error}`; bad = true; }
    what = `${from}${route}; ${steps ? `steps: ${steps}; ` : ""}${end} (${e.ms} ms)`;
  } else if (e.kind === "delivery") {
    what = `delivery to ${e.output}, attempt ${e.attempt}: ${e.result}` + (e.error ? ` — ${e.error}` : "");
    bad = !!e.error;
  } else if (e.kind === "operator") {
    what = `${e.by}: ${e.action}`;
  } else {
    what = JSON.stringify(e);
  }
  // A stored object (when its key was kept) links to it in the data explorer.
  const open = e.kind === "processed" && e.status === "stored" && e.key !== undefined && e.key !== null
    && !roundsIntegers(e.key) && dataState.types && dataState.types.some((t) => t.name === e.type)
    ? [" ", dataLink(e.type, JSON.stringify(e.key), "Open the object")] : [];
  return el("li", { class: `journal-${e.kind}${bad ? " error" : ""}` }, at, " ", what, ...open);
}

async function renderJournal(page) {
  const params = new URLSearchParams((location.hash.split("?")[1]) || "");
  const field = (id, label, attrs = {}) => {
    const input = el("input", { id: `journal-${id}`, type: "search", ...attrs });
    input.value = params.get(id) || "";
    return [el("label", {}, label, input), input];
  };
  const [idLabel, id] = field("id", "Object id", { size: "38" });
  const [rkLabel, rk] = field("routing_key", "Routing key");
  const [typeLabel, type] = field("type", "Type");
  const [keyLabel, key] = field("key", "Primary key");
  const from = el("input", { id: "journal-from", type: "datetime-local", "aria-label": "From" });
  const to = el("input", { id: "journal-to", type: "datetime-local", "aria-label": "To" });
  const results = el("div", { id: "journal-results" });
  const note = el("div");
  // 50 objects at first; "Show more" asks for 50 more, up to the API's 500 (the same search,
  // larger: the server's order, by each object's newest matching event, needs no cursor that
  // could skip an object). The search is the one last applied; a late answer is dropped.
  const JOURNAL_PAGE = 50, JOURNAL_MAX = 500;
  const applied = { query: null, first: JOURNAL_PAGE };
  let asked = 0;
  const more = el("button", { id: "journal-more", type: "button", class: "secondary", hidden: true, onclick: () => search(true) }, "Show more");
  const search = async (enlarge = false) => {
    if (!enlarge) {
      const q = new URLSearchParams();
      for (const [name, input] of [["id", id], ["routing_key", rk], ["type", type], ["key", key]]) if (input.value.trim()) q.set(name, input.value.trim());
      if (from.value) q.set("from", new Date(from.value).toISOString());
      if (to.value) q.set("to", new Date(to.value).toISOString());
      Object.assign(applied, { query: q, first: JOURNAL_PAGE });
    } else {
      applied.first = Math.min(JOURNAL_MAX, applied.first + JOURNAL_PAGE);
    }
    const q = new URLSearchParams(applied.query);
    q.set("first", String(applied.first));
    const mine = ++asked;
    more.disabled = true;
    note.replaceChildren();
    let found;
    try { found = await api("GET", `/admin/api/journal?${q}`); }
    catch (e) {
      if (mine !== asked) return;
      more.disabled = false;
      if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
      return message(note, e.message, true);
    }
    if (mine !== asked) return;
    results.replaceChildren(...(found.objects.length ? found.objects.map((o) => el("section", { class: "details journal-object", "data-id": o.id },
      el("h2", {}, `Object ${o.id}`),
      el("ol", { class: "journal-timeline" }, o.events.map(journalLine))))
      : [el("p", { class: "empty" }, "Nothing in the journal matches: widen the times or clear a field. Objects are journaled as they are processed (unless logger.max_msg_in_log is 0).")]));
    // More may exist when the search came back full, as the journal counts (objects the caller
    // may not see are not answered), and the API's limit is not reached.
    more.disabled = false;
    more.hidden = !found.more || applied.first >= JOURNAL_MAX;
    if (applied.first >= JOURNAL_MAX && found.objects.length >= JOURNAL_MAX) message(note, `The newest ${JOURNAL_MAX} matching objects are shown: narrow the times or the fields to see others.`);
  };
  page.replaceChildren(
    el("h1", {}, "Journal"),
    el("p", { class: "hint" }, "Every object's path: received, steps with their time, how it ended, its deliveries and what operators did. Newest first."),
    el("div", { class: "toolbar" }, idLabel, rkLabel, typeLabel, keyLabel, el("label", {}, "From", from), el("label", {}, "To", to),
      el("button", { id: "journal-search", type: "button", onclick: () => search() }, "Search")),
    note, results, el("div", { class: "toolbar pager" }, more));
  await search();
}

// ---- GraphQL console ----
// A query editor over POST /graphql: highlighting, completion of a type's fields and a field's
// arguments from the schema (introspection, once per schema), variables, the default/admin
// schema switch (the `schema: admin` header), and a history kept in this browser.
const GQL_HISTORY_KEY = "ferrogrid-graphql-history";
const GQL_HISTORY_SIZE = 30;
const GQL_KEYWORDS = new Set(["query", "mutation", "subscription", "fragment", "on", "true", "false", "null"]);
const gqlSchemas = {};
const gqlState = { schema: "default" };

const INTROSPECTION = `query ConsoleIntrospection { __schema { queryType { name } mutationType { name }
  types { name kind fields { name args { name type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }`;

// The tokens of GraphQL text: {type, text}; whitespace and commas are "ws".
function gqlTokens(text) {
  const rules = [
    ["comment", /#[^\n]*/y], ["ws", /[\s,]+/y], ["string", /"""[\s\S]*?(?:"""|$)|"(?:[^"\\\n]|\\.)*"?/y],
    ["number", /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y], ["variable", /\$[_A-Za-z][_0-9A-Za-z]*/y],
    ["name", /[_A-Za-z][_0-9A-Za-z]*/y], ["punct", /\.\.\.|[{}()[\]:!=@|&]/y], ["other", /./y],
  ];
  const out = [];
  let at = 0;
  while (at < text.length) {
    for (const [type, re] of rules) {
      re.lastIndex = at;
      const m = re.exec(text);
      if (m && m[0].length) {
        out.push({ type: type === "name" && GQL_KEYWORDS.has(m[0]) ? "keyword" : type, text: m[0] });
        at += m[0].length;
        break;
      }
    }
  }
  return out;
}

function gqlHighlight(pre, text) {
  pre.replaceChildren(...gqlTokens(text).map((t) => (t.type === "ws" || t.type === "other"
    ? document.createTextNode(t.text) : el("span", { class: `gql-${t.type}` }, t.text))));
  pre.append("\n");  // a trailing newline keeps the last line's height
}

// The named type under list and non-null wrappers, and the type as written (`[User!]!`).
const gqlNamed = (t) => { while (t && !t.name) t = t.ofType; return t ? t.name : null; };
function gqlTypeText(t) {
  if (!t) return "";
  if (t.kind === "NON_NULL") return gqlTypeText(t.ofType) + "!";
  if (t.kind === "LIST") return `[${gqlTypeText(t.ofType)}]`;
  return t.name;
}

// The schema `name` as introspection tells it, read once (the promise is shared; a failure is
// forgotten, so that the next completion tries again).
function gqlSchema(name) {
  if (!gqlSchemas[name]) {
    gqlSchemas[name] = (async () => {
      const r = await api("POST", "/graphql", { query: INTROSPECTION }, name === "admin" ? { schema: "admin" } : {});
      if (!r.data) throw new Error((r.errors || []).map((e) => e.message).join("; ") || "the schema could not be read");
      const types = {};
      for (const t of r.data.__schema.types) types[t.name] = t;
      return { types, query: r.data.__schema.queryType.name, mutation: (r.data.__schema.mutationType || {}).name };
    })();
    // A failure stays until the schema is chosen again: no request per key typed.
    gqlSchemas[name].catch(() => {});
  }
  return gqlSchemas[name];
}

// What may be written at `pos` of `text`: the fields of the selection's type, or the arguments
// of the field whose parentheses the cursor is in. {prefix, items: [{name, detail}]}.
function gqlCompletions(schema, text, pos) {
  const before = text.slice(0, pos);
  const word = before.match(/[_A-Za-z][_0-9A-Za-z]*$/);
  const prefix = word ? word[0] : "";
  const head = before.slice(0, before.length - prefix.length);
  const all = gqlTokens(head);
  const tail = all[all.length - 1];
  // A variable's name, or text inside a string or a comment: nothing to offer.
  const open = tail && ((tail.type === "string" && !/^("""[\s\S]*"""|"(?:[^"\\\n]|\\.)*")$/.test(tail.text) || tail.text === "\"")
    || tail.type === "comment" || tail.text === "$");
  if (open || /\$$/.test(head)) return { prefix, items: [] };
  const tokens = all.filter((t) => t.type !== "ws" && t.type !== "comment");
  const stack = [];
  const fieldOf = (typeName, name) => ((schema.types[typeName] || {}).fields || []).find((f) => f.name === name);
  let root = schema.query, last = null, on = null, paren = 0, argsOf = null, braces = 0, directive = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (paren > 0) {
      if (t.text === "(") paren++;
      else if (t.text === ")" && --paren === 0) { argsOf = null; braces = 0; }
      else if (t.text === "{") braces++;
      else if (t.text === "}") braces--;
      continue;
    }
    if (t.text === "@") { directive = true; continue; }
    if (directive && t.type === "name") { directive = false; continue; }
    if (t.type === "keyword" && stack.length === 0 && (t.text === "query" || t.text === "mutation" || t.text === "subscription")) {
      root = t.text === "mutation" ? schema.mutation : schema.query;
    } else if (t.type === "keyword" && t.text === "on") {
      on = "next";
    } else if (t.type === "name") {
      if (on === "next") on = t.text;
      else if ((tokens[i + 1] || {}).text !== ":") last = t.text;  // an alias is followed by ':'
    } else if (t.text === "(") {
      paren = 1;
      // A directive's arguments (after `@name`) are not the field's.
      const afterDirective = (tokens[i - 2] || {}).text === "@";
      argsOf = stack.length && !afterDirective ? fieldOf(stack[stack.length - 1], last) : null;
    } else if (t.text === "{") {
      if (on && on !== "next") stack.push(on);
      else if (stack.length === 0) stack.push(root);
      else { const f = fieldOf(stack[stack.length - 1], last); stack.push(f ? gqlNamed(f.type) : null); }
      last = null; on = null;
    } else if (t.text === "}") {
      stack.pop();
      last = null;
    }
  }
  const lower = prefix.toLowerCase();
  const pick = (list) => list.filter((x) => x.name.toLowerCase().startsWith(lower));
  if (paren > 0) {
    // Inside an object value (`filter: {...}`) the field's arguments are not what is written.
    const args = (braces === 0 && argsOf && argsOf.args) || [];
    return { prefix, items: pick(args.map((a) => ({ name: a.name, detail: gqlTypeText(a.type), suffix: ": " }))) };
  }
  const current = stack.length ? stack[stack.length - 1] : null;
  if (!current) return { prefix, items: stack.length ? [] : pick(["query", "mutation"].map((k) => ({ name: k, detail: "operation" }))) };
  const fields = ((schema.types[current] || {}).fields || []).filter((f) => !f.name.startsWith("__"));
  return { prefix, items: pick(fields.map((f) => ({ name: f.name, detail: gqlTypeText(f.type) }))) };
}

// Each user's own history in this browser.
const gqlHistoryKey = () => `${GQL_HISTORY_KEY}:${me ? me.subject : "-"}`;

function gqlHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(gqlHistoryKey()) || "[]");
    return Array.isArray(list) ? list.filter((h) => h && typeof h.query === "string") : [];
  } catch (_) { return []; }
}

// Kept in this browser (what is run is kept to 20 kB an entry); a full storage drops the oldest.
function gqlRemember(entry) {
  if (entry.query.length + (entry.variables || "").length > 20000) return;
  let list = [entry, ...gqlHistory().filter((h) => !(h.schema === entry.schema && h.query === entry.query && h.variables === entry.variables))];
  while (list.length) {
    try { localStorage.setItem(gqlHistoryKey(), JSON.stringify(list.slice(0, GQL_HISTORY_SIZE))); return; }
    catch (_) { list = list.slice(0, Math.min(list.length, GQL_HISTORY_SIZE) - 1); }
  }
}

async function renderGraphql(page) {
  const editor = el("textarea", { id: "gql-query", class: "gql-input", spellcheck: "false", rows: "14", "aria-label": "Query",
    "aria-autocomplete": "list", "aria-controls": "gql-suggest" });
  const shade = el("pre", { class: "gql-shade", "aria-hidden": "true" });
  const suggest = el("ul", { id: "gql-suggest", class: "gql-suggest", role: "listbox", hidden: true });
  const variables = el("textarea", { id: "gql-variables", rows: "4", spellcheck: "false", placeholder: "{\"id\": 1}", "aria-label": "Variables (JSON)" });
  const result = el("pre", { id: "gql-result", class: "gql-result", "aria-live": "polite" });
  const note = el("div");
  const schemaSelect = el("select", { id: "gql-schema" }, el("option", { value: "default" }, "default (data)"),
    may("admin_graphql_read") ? el("option", { value: "admin" }, "admin") : null);
  if (gqlState.schema === "admin" && !may("admin_graphql_read")) gqlState.schema = "default";
  schemaSelect.value = gqlState.schema;
  const historyList = el("ul", { id: "gql-history", class: "gql-history" });
  let items = [], chosen = 0, prefix = "", asked = 0;

  const paint = () => { gqlHighlight(shade, editor.value); shade.scrollTop = editor.scrollTop; shade.scrollLeft = editor.scrollLeft; };
  const close = () => { suggest.hidden = true; items = []; asked++; };
  const showItems = () => {
    suggest.replaceChildren(...items.map((it, i) => el("li", { role: "option", class: i === chosen ? "active" : "", "aria-selected": i === chosen ? "true" : "false",
      onmousedown: (e) => { e.preventDefault(); chosen = i; accept(); } }, el("b", {}, it.name), " ", el("span", { class: "hint" }, it.detail))));
    suggest.hidden = items.length === 0;
  };
  const complete = async (force) => {
    const mine = ++asked;
    let schema;
    try { schema = await gqlSchema(gqlState.schema); } catch (e) { message(note, e.message, true); return; }
    // A completion asked for later (the next key) has the say.
    if (mine !== asked) return;
    const found = gqlCompletions(schema, editor.value, editor.selectionStart);
    if (!force && !found.prefix) { close(); return; }
    items = found.items.slice(0, 50); prefix = found.prefix; chosen = 0;
    showItems();
  };
  const accept = () => {
    const it = items[chosen];
    if (!it) return;
    const pos = editor.selectionStart;
    const text = it.name + (it.suffix || "");
    editor.setRangeText(text, pos - prefix.length, pos, "end");
    close();
    paint();
    editor.focus();
  };
  const run = async () => {
    close();
    let vars = {};
    if (variables.value.trim()) {
      try { vars = JSON.parse(variables.value); } catch (e) { message(note, `Variables are not JSON: ${e.message}`, true); return; }
    }
    note.replaceChildren();
    const headers = gqlState.schema === "admin" ? { schema: "admin" } : {};
    try {
      const r = await api("POST", "/graphql", { query: editor.value, variables: vars }, headers);
      result.textContent = pretty(r);
      result.classList.toggle("error", !!(r && r.errors));
      gqlRemember({ schema: gqlState.schema, query: editor.value, variables: variables.value, at: new Date().toISOString() });
      showHistory();
    } catch (e) {
      if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
      result.textContent = e.message;
      result.classList.add("error");
    }
  };
  const showHistory = () => {
    const entries = gqlHistory();
    historyList.replaceChildren(...(entries.length ? entries.map((h) => el("li", {},
      el("a", { href: "#/graphql", class: "mono", onclick: (e) => {
        e.preventDefault();
        if (h.schema === "admin" && !may("admin_graphql_read")) return;
        gqlState.schema = h.schema; schemaSelect.value = h.schema;
        editor.value = h.query; gqlState.lastQuery = h.query; variables.value = h.variables || ""; paint();
      } }, `[${h.schema}] ${h.query.replace(/\s+/g, " ").slice(0, 100)}`), " ", el("span", { class: "hint" }, timeEl(h.at))))
      : [el("li", { class: "hint" }, "Queries you run are kept here, in this browser.")]));
  };

  editor.addEventListener("input", () => { paint(); complete(false); });
  editor.addEventListener("scroll", paint);
  // Closed when the focus leaves for good (a click on a suggestion comes first).
  editor.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== editor) close(); }, 150));
  editor.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); return; }
    if (e.ctrlKey && (e.key === " " || e.code === "Space")) { e.preventDefault(); complete(true); return; }
    if (suggest.hidden) return;
    if (e.key === "ArrowDown") { e.preventDefault(); chosen = (chosen + 1) % items.length; showItems(); }
    else if (e.key === "ArrowUp") { e.preventDefault(); chosen = (chosen + items.length - 1) % items.length; showItems(); }
    else if (e.isComposing) return;
    else if (e.key === "Enter" && items.some((it) => it.name === prefix) && items[chosen].name !== prefix) { close(); }  // a new line after a whole name
    else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); accept(); }
    else if (e.key === "Escape") { e.preventDefault(); close(); }
  });
  schemaSelect.addEventListener("change", () => {
    gqlState.schema = schemaSelect.value;
    // Chosen again: read it again (a configuration applied since, or a failure before).
    delete gqlSchemas[gqlState.schema];
    note.replaceChildren();
    close();
  });
  if (!editor.value) editor.value = gqlState.lastQuery || "{\n  \n}";
  page.replaceChildren(
    el("h1", {}, "GraphQL"),
    el("div", { class: "toolbar" },
      el("label", {}, "Schema", schemaSelect),
      el("button", { id: "gql-run", type: "button", onclick: run }, "Run (Ctrl+Enter)"),
      el("span", { class: "hint" }, "Ctrl+Space lists what may be written here; Tab or Enter takes it.")),
    note,
    el("div", { class: "gql-editor" }, shade, editor, suggest),
    el("label", { class: "hint", for: "gql-variables" }, "Variables (JSON)"), variables,
    el("h2", {}, "Result"), result,
    el("h2", {}, "History"), historyList);
  editor.addEventListener("input", () => { gqlState.lastQuery = editor.value; });
  paint();
  showHistory();
}

// ---- shell ----
const pages = { repair: renderRepair, data: renderData, output: renderOutputRepair, jobs: renderJobs, tasks: renderTasks, model: renderModel, config: renderConfig, test: renderTest, journal: renderJournal, graphql: renderGraphql, settings: renderSettings };

// The action each page needs to be shown (null: any signed-in caller; GraphQL answers by the
// caller's data rights). Data and Settings are decided in route(): a readable type, a readable tab.
const pageActions = { repair: "repair_read", output: "output_repair_read", jobs: "jobs_read", tasks: "tasks_read", model: "model_read", config: "config_read", test: "input_post", journal: "repair_read", graphql: null };

async function route() {
  // Settings shows when any of its read tabs may be read.
  const allowed = Object.keys(pages).filter((p) => p === "settings"
    ? settingsTabs.some(([, , action]) => action !== null && may(action))
    : p === "data" ? dataState.types !== null && dataState.types.length > 0
    : pageActions[p] === null || may(pageActions[p]));
  const asked = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const name = allowed.includes(asked) ? asked : allowed[0];
  document.querySelectorAll("header nav a").forEach((a) => { a.hidden = !allowed.includes(a.dataset.page); });
  if (!name) {
    $("#page").replaceChildren(el("div", { class: "message", role: "status" }, `Signed in as ${me.subject} (role ${me.role}): this role may use none of these pages.`));
    return;
  }
  const render = pages[name];
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === name));
  // Each view draws into a box of its own: a view still loading when the operator moves on
  // finishes into a box no longer shown, never over the next one. `data-rendered` names the
  // view once it is drawn (the browser tests wait for it).
  const main = $("#page");
  const page = el("div", { class: "view" });
  main.replaceChildren(page);
  delete main.dataset.rendered;
  const shown = location.hash;
  try {
    await render(page);
    if (page.isConnected) main.dataset.rendered = shown;
  }
  catch (e) {
    if (e instanceof Unauthorized) return signOut("You are signed out: your credentials are no longer accepted.");
    page.replaceChildren(el("div", { class: "message bad", role: "alert" }, e.message));
  }
}

let statusTimer = null;

async function showApp() {
  me = await api("GET", "/admin/api/whoami");
  if (me.one_time_password) return askNewPassword();
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#whoami").textContent = `${me.subject} (${me.role})`;
  // The Data page is shown to a caller who may read some type.
  dataState.types = null;
  await dataTypes().catch(() => { dataState.types = []; });
  refreshStatus();
  clearInterval(statusTimer);
  statusTimer = setInterval(refreshStatus, 5000);
  route();
}

// Show the sign-in forms (with `reason`); a session is ended on the server too.
function signOut(reason = "", viaToken = false) {
  if (sessionStorage.getItem(CSRF_KEY)) {
    fetch("/admin/api/logout", { method: "POST", headers: authHeaders("POST") }).catch(() => {});
  }
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(OPERATOR_KEY);
  sessionStorage.removeItem(CSRF_KEY);
  me = null;
  oneTimePassword = null;
  clearInterval(statusTimer);
  // The console's query and schemas are the signed-in user's.
  gqlState.schema = "default";
  delete gqlState.lastQuery;
  for (const name of Object.keys(gqlSchemas)) delete gqlSchemas[name];
  Object.assign(dataState, { types: null, type: "", index: "", op: "==", value: "", deleted: false, after: null, pages: [] });
  // What the pages showed (a secret shown once, lists) goes with the sign-out.
  $("#page").replaceChildren();
  $("#status").replaceChildren();
  $("#status-announce").textContent = "";
  lastAnnounced = undefined;
  statusEpoch++;
  $("#whoami").textContent = "";
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#change-form").hidden = true;
  $("#password-form").hidden = false;
  $("#token-signin").hidden = false;
  $("#token-signin").open = viaToken;
  $(viaToken ? "#signin-error" : "#password-error").textContent = reason;
  $(viaToken ? "#password-error" : "#signin-error").textContent = "";
  $("#token").value = "";
  $("#password").value = "";
}

// A one-time password: the user chooses its own before anything else.
async function askNewPassword() {
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#password-form").hidden = true;
  $("#token-signin").hidden = true;
  $("#change-form").hidden = false;
  try {
    const p = (await api("GET", "/admin/api/password-policy")).password_policy;
    const classes = Object.entries(p.include).filter(([, on]) => on).map(([name]) => name);
    $("#change-policy").textContent = `At least ${p.min_length} characters` + (classes.length ? `, with ${classes.join(", ")}.` : ".");
  } catch (_) { $("#change-policy").textContent = ""; }
}

$("#password-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const response = await fetch("/admin/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login: $("#login").value, password: $("#password").value }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) return signOut(data.reason === "user_blocked" ? "This user is blocked." : data.error || `${response.status} ${response.statusText}`);
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.setItem(CSRF_KEY, data.csrf_token);
  sessionStorage.setItem(OPERATOR_KEY, data.login);
  oneTimePassword = data.one_time_password ? $("#password").value : null;
  $("#password").value = "";
  try { await showApp(); } catch (err) { signOut(err.message); }
});

$("#change-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await api("PUT", "/admin/api/password", { old_password: oneTimePassword || "", new_password: $("#new-password").value });
    oneTimePassword = null;
    $("#new-password").value = "";
    $("#change-form").hidden = true;
    $("#password-form").hidden = false;
    $("#token-signin").hidden = false;
    await showApp();
  } catch (err) {
    if (err instanceof Unauthorized) return signOut("Your session has ended.");
    $("#change-error").textContent = err.message;
  }
});

$("#signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  sessionStorage.removeItem(CSRF_KEY);
  sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  sessionStorage.setItem(OPERATOR_KEY, $("#operator").value.trim());
  try { await showApp(); }
  catch (err) { signOut(err instanceof Unauthorized ? "That token is not accepted." : err.message, true); }
});
$("#signout").addEventListener("click", () => signOut());
// The link of the page shown draws it again (the same address makes no hashchange).
document.querySelectorAll("header nav a").forEach((a) => a.addEventListener("click", () => {
  if (a.getAttribute("href") === location.hash) route();
}));
window.addEventListener("hashchange", () => { if (!$("#app").hidden) route(); });

// A token of this browser session, or a session cookie (a reload keeps the sign-in).
if (sessionStorage.getItem(TOKEN_KEY) || sessionStorage.getItem(CSRF_KEY)) {
  showApp().catch(() => signOut());
} else {
  signOut();
}
