// Raw WebSockets (`handle.webSocket(path)` → `/websocket/{path}`, RIVETKIT_PROTOCOL.md §6.4)
// that hibernate: `testRaw` opts in (`hibernate_raw_websockets`), so after `goToSleep` its
// actor sleeps with the socket left open; the next message on the socket wakes it and is
// answered on the same socket (same id), and the woken actor can still close it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { WAIT_MS, keyFor, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

/**
 * Opens a raw WebSocket: `webSocket` in 2.3.19, `websocket` in 2.0.33 (on a handle, any other
 * name is an action).
 */
function openSocket(handle, version, path) {
	const opened = version === "2.0.33" ? handle.websocket(path) : handle.webSocket(path);
	return within(opened, "the raw WebSocket");
}

/**
 * The socket's text messages and its close, in order: `next(what)` resolves with the next
 * message (bounded), `closed` with the close event's code and reason.
 */
function inbox(ws) {
	const queued = [];
	const waiting = [];
	ws.addEventListener("message", (event) => {
		const text = typeof event.data === "string" ? event.data : String(event.data);
		const waiter = waiting.shift();
		if (waiter) waiter(text);
		else queued.push(text);
	});
	const closed = new Promise((resolve) => {
		ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason }));
	});
	return {
		next(what) {
			if (queued.length > 0) return Promise.resolve(queued.shift());
			return within(new Promise((resolve) => waiting.push(resolve)), what);
		},
		closed,
	};
}

describe("raw WebSockets", { concurrency: true }, () => {
	for (const peer of MATRIX) {
		test(`${peer.label}: a raw WebSocket stays open while its actor sleeps, and wakes it`, async () => {
			await withClient(server, peer, async (client) => {
				const handle = client.testRaw.getOrCreate(keyFor("raw-ws-sleep", peer));
				const ws = await openSocket(handle, peer.version, "talk");
				const messages = inbox(ws);
				let closedEarly = false;
				messages.closed.then(() => {
					closedEarly = true;
				});
				const hello = await messages.next("the greeting");
				assert.match(hello, /^hello \d+$/);
				const id = hello.slice("hello ".length);
				ws.send("one");
				assert.equal(await messages.next("the first answer"), `one from ${id} wakes=1`);

				await within(handle.goToSleep(), "goToSleep");
				// The actor sleeps once `goToSleep` has returned. A message that reaches it before
				// is answered by the same instance (wakes=1), and it sleeps right after: ask again
				// until the answer comes from the woken actor.
				const deadline = Date.now() + WAIT_MS;
				let answer;
				for (;;) {
					ws.send("ping");
					answer = await messages.next("an answer");
					if (answer !== `ping from ${id} wakes=1` || Date.now() > deadline) break;
				}
				assert.equal(answer, `ping from ${id} wakes=2`, "the woken actor answered on the same socket");
				assert.equal(closedEarly, false, "the socket stayed open through the sleep");

				// The woken actor closes the socket.
				ws.send("bye");
				const { code, reason } = await within(messages.closed, "the close");
				assert.deepEqual([code, reason], [4001, "asked to"]);
			});
		});
	}
});
