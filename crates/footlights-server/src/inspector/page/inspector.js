// The inspector page: plain DOM code over the JSON API next to it (api/...). Everything the
// server sends is shown with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "footlights.inspector.token";

// A token passed as ?token= is kept for this tab and taken out of the address bar.
(function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token !== null) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
})();

const view = {
  type: null,
  prefix: "",
  cursor: null,
  actor: null,
  kvPrefix: "",
  kvNext: null,
  dbTable: null,
  dbOffset: 0,
};

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch("api/" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let answer = null;
  try {
    answer = await response.json();
  } catch (_) {
    throw new Error("HTTP " + response.status + " without a JSON body");
  }
  if (!response.ok) {
    const code = (answer.group || "?") + "." + (answer.code || "?");
    const error = new Error(code + ": " + (answer.message || ""));
    error.code = code;
    throw error;
  }
  return answer;
}

// Runs an action of the page; a failure is shown at the top, a missing token asks for one.
async function guarded(work) {
  try {
    await work();
    showError("");
  } catch (e) {
    if (e.code === "auth.unauthorized" || e.code === "auth.forbidden") {
      $("token").focus();
    }
    showError(e.message);
  }
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function row(cells) {
  const tr = el("tr");
  for (const cell of cells) {
    const td = el("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

function time(ms) {
  return ms === null || ms === undefined ? "—" : new Date(ms).toISOString();
}

function bytes(b) {
  return b.text !== undefined ? b.text : "base64:" + b.base64;
}

async function loadTypes() {
  const answer = await api("GET", "actors");
  const select = $("type");
  select.replaceChildren(...answer.names.map((n) => el("option", n, { value: n })));
  if (answer.names.length > 0) {
    view.type = answer.names[0];
    await loadActors(true);
  }
}

async function loadActors(fresh) {
  if (fresh) {
    view.cursor = null;
    $("actors").replaceChildren();
  }
  const query = new URLSearchParams({ name: view.type, limit: "50" });
  if (view.prefix) query.set("prefix", view.prefix);
  if (view.cursor) query.set("cursor", view.cursor);
  const page = await api("GET", "actors?" + query);
  for (const actor of page.actors) {
    const button = el("button", null, { type: "button", "data-id": actor.id });
    button.append(el("span", actor.key), el("span", actor.awake ? "awake" : "asleep", {
      class: actor.awake ? "badge awake" : "badge",
    }));
    button.addEventListener("click", () => guarded(() => openActor(actor.id)));
    const li = el("li");
    li.append(button);
    $("actors").append(li);
  }
  view.cursor = page.cursor;
  $("more-actors").hidden = !page.cursor;
  $("no-actors").hidden = $("actors").children.length > 0;
}

// The live log: a fetch of api/actors/{id}/log read as a stream of server-sent events (an
// EventSource cannot send the token header). One watch at a time; opening another actor
// ends it.
const LOG_LINES = 200;
const log = { abort: null };

function logStatus(text, on) {
  const status = $("log-status");
  status.textContent = text;
  status.className = on ? "badge awake" : "badge";
  $("log-toggle").textContent = on ? "Stop" : "Watch";
}

function logLine(at, what, name, detail, kind) {
  const tr = row([at ? new Date(at).toISOString().slice(11, 23) : "", what, name, detail]);
  if (kind) tr.className = kind;
  const body = $("log");
  body.prepend(tr);
  while (body.children.length > LOG_LINES) body.lastChild.remove();
}

function showRecord(name, data) {
  if (name === "action") {
    const took = data.durationMs < 1 ? "<1 ms" : Math.round(data.durationMs) + " ms";
    const outcome = data.error ? "error " + data.error : "ok";
    logLine(data.at, "action", data.name, `${outcome} · ${took} · ${data.caller}`, data.error ? "failed" : "");
  } else if (name === "event") {
    logLine(data.at, "event", data.name, `to ${data.recipients} · ${data.size} B · ${data.preview}`);
  } else if (name === "lagged") {
    logLine(Date.now(), "lagged", "", `${data.lost} records lost (this page fell behind)`, "note");
  } else if (name === "end") {
    const why = data.reason === "shutdown" ? "the server is stopping" : "the actor stopped";
    logLine(Date.now(), "end", "", why + "; watch again to follow it", "note");
  }
}

function stopWatching() {
  if (log.abort) log.abort.abort();
  log.abort = null;
  logStatus("off", false);
}

async function watch(id) {
  stopWatching();
  const abort = new AbortController();
  log.abort = abort;
  const headers = { Accept: "text/event-stream" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch("api/actors/" + encodeURIComponent(id) + "/log", {
    headers,
    signal: abort.signal,
  });
  if (!response.ok) {
    log.abort = null;
    let message = "HTTP " + response.status;
    try {
      const answer = await response.json();
      message = answer.group + "." + answer.code + ": " + answer.message;
    } catch (_) {}
    throw new Error("live log: " + message);
  }
  logStatus("watching", true);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (name && data) showRecord(name, JSON.parse(data));
      }
    }
  } catch (e) {
    if (abort.signal.aborted) return;
    throw e;
  } finally {
    if (log.abort === abort) {
      log.abort = null;
      logStatus("off", false);
    }
  }
}

async function openActor(id) {
  view.actor = id;
  $("log").replaceChildren();
  // Not awaited: the watch lasts while the page shows this actor.
  guarded(() => watch(id));
  view.kvPrefix = "";
  $("kv-prefix").value = "";
  view.dbTable = null;
  view.dbOffset = 0;
  $("output").hidden = true;
  closeEditor();
  for (const b of document.querySelectorAll("#actors button")) {
    b.setAttribute("aria-current", String(b.dataset.id === id));
  }
  await loadDetail(true);
}

async function loadDetail(freshKv) {
  const query = new URLSearchParams({ kv_limit: "50" });
  if (view.kvPrefix) query.set("kv_prefix", view.kvPrefix);
  if (!freshKv && view.kvNext) query.set("kv_after", view.kvNext);
  if (view.dbTable) {
    query.set("db_table", view.dbTable);
    query.set("db_offset", String(view.dbOffset));
    query.set("db_limit", String(DB_PAGE));
  }
  const d = await api("GET", "actors/" + encodeURIComponent(view.actor) + "?" + query);
  $("pick").hidden = true;
  $("detail").hidden = false;
  $("title").textContent = d.actor.name + " " + d.actor.key;
  const awake = $("awake");
  awake.textContent = d.actor.awake ? "awake" : "asleep";
  awake.className = d.actor.awake ? "badge awake" : "badge";
  $("meta").replaceChildren(
    row(["id", el("code", d.actor.id)]),
    row(["key parts", JSON.stringify(d.actor.keyParts)]),
    row(["created", time(d.actor.createdAt)]),
    row(["started", time(d.actor.startedAt)]),
    row(["slept", time(d.actor.sleptAt)]),
  );
  $("state").textContent = JSON.stringify(d.state, null, 2);
  $("conns").replaceChildren(
    ...d.connections.map((c) =>
      row([
        el("code", c.id),
        c.ephemeral ? "short-lived" : c.detached ? "waiting for resume" : "connected",
        c.subscriptions.join(", ") || "—",
        el("code", c.params === null ? "—" : JSON.stringify(c.params)),
        el("code", c.state === null ? "not shown" : JSON.stringify(c.state)),
      ]),
    ),
  );
  if (d.connections.length === 0) $("conns").append(row(["none", "", "", "", ""]));
  $("schedules").replaceChildren(
    ...d.schedules.map((s) =>
      row([
        time(s.at),
        s.action,
        JSON.stringify(s.args),
        s.job ? `job ${s.job.name} (${s.job.rule})` : s.failures ? `retry after ${s.failures} failures` : "once",
        el("code", s.id),
      ]),
    ),
  );
  if (d.schedules.length === 0) $("schedules").append(row(["none", "", "", "", ""]));
  $("queues").replaceChildren(
    ...d.queues.map((q) => {
      const list = el("div");
      for (const m of q.messages) {
        list.append(el("div", `#${m.id}${m.inFlight ? " (in flight)" : ""} · ${m.size} B · ${m.preview}`));
      }
      if (q.more) list.append(el("div", `… ${q.depth - q.messages.length} more`, { class: "muted" }));
      return row([q.name, String(q.depth), String(q.inFlight), q.messages.length ? list : "—"]);
    }),
  );
  if (d.queues.length === 0) $("queues").append(row(["none", "", "", ""]));
  const entries = d.kv.entries.map((e) =>
    row([
      el("code", bytes(e.key)),
      el("code", e.decoded !== undefined ? JSON.stringify(e.decoded) : bytes(e.value)),
    ]),
  );
  if (freshKv) $("kv").replaceChildren(...entries);
  else $("kv").append(...entries);
  if ($("kv").children.length === 0) $("kv").append(row(["none", ""]));
  view.kvNext = d.kv.next;
  $("more-kv").hidden = !d.kv.next;
  showDb(d.db);
}

/** Rows of a database table per page. */
const DB_PAGE = 50;

/** The actor's SQL database: its tables (each opens a page of its rows) and that page. */
function showDb(db) {
  $("db-none").hidden = db !== null;
  $("db-tables-table").hidden = db === null;
  const page = db && db.rows;
  for (const id of ["db-rows-title", "db-rows-table"]) $(id).hidden = !page;
  $("db-prev").hidden = !page || page.offset === 0;
  $("db-next").hidden = !page || !page.more;
  if (db === null) return;
  $("db-tables").replaceChildren(
    ...db.tables.map((t) => {
      const open = el("button", t.name, { class: "plain", "data-table": t.name });
      open.addEventListener("click", () => {
        view.dbTable = t.name;
        view.dbOffset = 0;
        guarded(() => loadDetail(true));
      });
      return row([open, t.kind, String(t.rows)]);
    }),
  );
  if (db.tables.length === 0) $("db-tables").append(row(["none", "", ""]));
  if (!page) return;
  const last = page.offset + page.rows.length;
  $("db-rows-title").textContent = `${page.table}: rows ${page.rows.length ? page.offset + 1 : 0}–${last}`;
  $("db-head").replaceChildren(...page.columns.map((c) => el("th", c)));
  $("db-rows").replaceChildren(
    ...page.rows.map((r) => row(r.map((v) => el("code", typeof v === "string" ? v : JSON.stringify(v))))),
  );
}

$("db-prev").addEventListener("click", () => {
  view.dbOffset = Math.max(0, view.dbOffset - DB_PAGE);
  guarded(() => loadDetail(true));
});
$("db-next").addEventListener("click", () => {
  view.dbOffset += DB_PAGE;
  guarded(() => loadDetail(true));
});

function closeEditor() {
  $("editor").hidden = true;
  $("confirm").hidden = true;
  $("state").hidden = false;
  $("edit").hidden = false;
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value);
  $("token").value = "";
  guarded(loadTypes);
});

$("type").addEventListener("change", () => {
  view.type = $("type").value;
  guarded(() => loadActors(true));
});

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  view.prefix = $("prefix").value.trim();
  guarded(() => loadActors(true));
});

$("more-actors").addEventListener("click", () => guarded(() => loadActors(false)));
$("refresh").addEventListener("click", () => guarded(() => loadDetail(true)));
$("more-kv").addEventListener("click", () => guarded(() => loadDetail(false)));

$("kv-search").addEventListener("submit", (e) => {
  e.preventDefault();
  view.kvPrefix = $("kv-prefix").value;
  guarded(() => loadDetail(true));
});

$("edit").addEventListener("click", () => {
  $("state-text").value = $("state").textContent;
  $("editor").hidden = false;
  $("state").hidden = true;
  $("edit").hidden = true;
});

$("cancel").addEventListener("click", closeEditor);

$("log-toggle").addEventListener("click", () => {
  if (log.abort) stopWatching();
  else if (view.actor) guarded(() => watch(view.actor));
});

$("log-clear").addEventListener("click", () => $("log").replaceChildren());

$("save").addEventListener("click", () => {
  try {
    JSON.parse($("state-text").value);
  } catch (e) {
    showError("the new state is not JSON: " + e.message);
    return;
  }
  showError("");
  $("confirm").hidden = false;
});

$("confirm-cancel").addEventListener("click", () => {
  $("confirm").hidden = true;
});

$("confirm-save").addEventListener("click", () =>
  guarded(async () => {
    const state = JSON.parse($("state-text").value);
    await api("PUT", "actors/" + encodeURIComponent(view.actor) + "/state", { state });
    closeEditor();
    await loadDetail(true);
  }),
);

$("call").addEventListener("submit", (e) => {
  e.preventDefault();
  guarded(async () => {
    const text = $("args").value.trim();
    let args = [];
    if (text) {
      try {
        args = JSON.parse(text);
      } catch (err) {
        throw new Error("the arguments are not JSON: " + err.message);
      }
      if (!Array.isArray(args)) throw new Error("the arguments are a JSON array: [1, \"a\"]");
    }
    const action = $("action").value.trim();
    const answer = await api(
      "POST",
      "actors/" + encodeURIComponent(view.actor) + "/actions/" + encodeURIComponent(action),
      { args },
    );
    const out = $("output");
    out.textContent = JSON.stringify(answer.output, null, 2);
    out.hidden = false;
    await loadDetail(true);
  });
});

guarded(loadTypes);
