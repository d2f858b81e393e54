// The chat room's browser page: the official `rivetkit` client, unchanged, against the
// Footlights chat-room example. Open `/?room=lobby&name=ann`; without a name, a form asks.
//
// The page opens on the latest messages (`history()`) and loads older ones, a page at a time
// (`historyBefore(seq, limit)` with the smallest seq shown), when the list is scrolled to its
// top, until the room's first message (seq 1) is shown.
import { createClient } from "rivetkit/client";

/** How many older messages one scroll to the top loads. */
const OLDER_PAGE = 50;
/** How close to the top of the list (in pixels) counts as "at the top". */
const NEAR_TOP = 48;

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
const room = query.get("room") || "lobby";
const name = query.get("name");

if (name) {
  join(room, name);
} else {
  $("join").hidden = false;
  $("join").room.value = room;
}

function join(room, name) {
  $("chat").hidden = false;
  $("room-name").textContent = room;
  $("me").textContent = name;

  // The server that served this page also serves the actors.
  const client = createClient(location.origin);
  // A realtime connection (WebSocket); `{ name }` are the connection params.
  const conn = client.chatRoom.getOrCreate([room]).connect({ name });
  // Handy from the browser console, and for the end-to-end test.
  window.chat = { client, conn, room, name };

  const list = $("messages");
  const shown = new Set(); // the seqs on the page (the history and a live event may carry the same)
  let oldest = Infinity; // the smallest seq on the page
  // "loading" until the latest messages are in, then "more", or "complete" once seq 1 is shown.
  // On the list as `data-history`, for the end-to-end test.
  const setHistory = (state) => {
    list.dataset.history = state;
  };
  setHistory("loading");

  const messageLine = (m) => {
    shown.add(m.seq);
    oldest = Math.min(oldest, m.seq);
    const li = item([span("from", m.from), text(m.text)], "message");
    li.dataset.seq = m.seq;
    return li;
  };

  // Messages from the history (oldest first) go above everything shown: they are older than any
  // message that arrived live, and the view stays on what the reader is looking at.
  // `nothingOlder`: the server had no message older than these.
  const prependHistory = (messages, nothingOlder) => {
    const lines = messages.filter((m) => !shown.has(m.seq)).map(messageLine);
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.prepend(...lines);
    list.scrollTop = list.scrollHeight - fromBottom;
    if (nothingOlder || oldest === 1) {
      list.prepend(item([text(`This is the start of #${room}.`)], "start"));
      setHistory("complete");
    } else {
      setHistory("more");
    }
  };

  const loadOlder = async () => {
    if (list.dataset.history !== "more") return; // loading already, or nothing older
    setHistory("loading");
    try {
      const older = await conn.historyBefore(oldest, OLDER_PAGE); // newest first
      prependHistory(older.reverse(), older.length === 0);
    } catch (e) {
      setHistory("more");
      line([text(`${e.code ?? "error"}: ${e.message}`)], "error");
      return;
    }
    // A short page may leave the list at its top (or not scrollable at all): keep going.
    if (list.scrollTop < NEAR_TOP) loadOlder();
  };
  list.addEventListener("scroll", () => {
    if (list.scrollTop < NEAR_TOP) loadOlder();
  });

  conn.on("newMessage", (m) => {
    if (!shown.has(m.seq)) append(messageLine(m));
  });
  conn.on("joined", ({ name: who, members }) => {
    line([text(`${who} joined`)], "system");
    showMembers(members);
  });
  conn.on("left", ({ name: who, members }) => {
    line([text(`${who} left`)], "system");
    showMembers(members);
  });
  conn.on("directMessage", ({ from, text: body }) => {
    line([span("from", `${from} → you`), text(body)], "direct");
  });
  conn.onError((e) => line([text(`${e.code ?? "error"}: ${e.message}`)], "error"));
  conn.onStatusChange((status) => {
    document.body.dataset.status = status;
    $("status").textContent = status;
    $("status").className = `status ${status}`;
  });

  // The members and the latest messages, once: events keep them current afterwards.
  conn.members().then(showMembers);
  conn.history().then((messages) => {
    prependHistory(messages, messages.length === 0); // oldest first
    list.scrollTop = list.scrollHeight; // open on the latest message
    if (list.scrollTop < NEAR_TOP) loadOlder(); // too few to scroll: fill the list
  });

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("text");
    const value = input.value.trim();
    if (!value) return;
    input.value = "";
    try {
      const dm = value.match(/^\/dm\s+(\S+)\s+(.+)$/);
      const kick = value.match(/^\/kick\s+(\S+)\s*(.*)$/);
      if (dm) {
        await conn.sendDirect(dm[1], dm[2]);
        line([span("from", `you → ${dm[1]}`), text(dm[2])], "direct");
      } else if (kick) {
        await conn.kick(kick[1], kick[2] || "kicked by the owner");
      } else {
        await conn.sendMessage(value);
        // Its `newMessage` came before the answer: show it, even to a reader scrolled up.
        list.scrollTop = list.scrollHeight;
      }
    } catch (e) {
      line([text(`${e.code ?? "error"}: ${e.message}`)], "error");
    }
  });
}

function showMembers(members) {
  $("members").replaceChildren(
    ...members.map((m) => {
      const li = document.createElement("li");
      li.textContent = m;
      return li;
    }),
  );
}

// Builds a list item from text nodes only: user text is never parsed as HTML.
function item(parts, kind) {
  const li = document.createElement("li");
  li.className = kind;
  li.append(...parts);
  return li;
}

// Adds a line at the bottom of the list; follows it if the reader was at the bottom already (not
// while they read older messages).
function append(li) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_TOP;
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function line(parts, kind) {
  append(item(parts, kind));
}

function span(className, value) {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = value;
  return s;
}

function text(value) {
  return document.createTextNode(value);
}
