// The chat room's browser page: the official `rivetkit` client, unchanged, against the
// Footlights chat-room example. Open `/?room=lobby&name=ann`; without a name, a form asks.
import { createClient } from "rivetkit/client";

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

  const shown = new Set();
  const showMessage = (m) => {
    if (shown.has(m.id)) return; // the history and the live event may both carry it
    shown.add(m.id);
    line([span("from", m.from), text(m.text)], "message");
  };

  conn.on("newMessage", showMessage);
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

  // The members and the history, once: events keep them current afterwards.
  conn.members().then(showMembers);
  conn.history().then((messages) => messages.forEach(showMessage));

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

// Builds a message line from text nodes only: user text is never parsed as HTML.
function line(parts, kind) {
  const li = document.createElement("li");
  li.className = kind;
  li.append(...parts);
  const list = $("messages");
  list.append(li);
  list.scrollTop = list.scrollHeight;
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
