// Hibernation with the official clients: a connected client's actor goes to sleep
// (`goToSleep` on the demo counter), the socket stays open, and an event caused by another
// client's call (which wakes the actor) still reaches it; the connection keeps its id and is
// never closed. While the actor sleeps, the server parks the socket (keeps only its stream):
// `footlights_websockets_parked` on `/metrics` counts it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, nextEvent, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

describe("hibernation", { concurrency: true }, () => {
	let server;
	before(async () => {
		server = await Footlights.start();
	});
	after(async () => {
		await server?.cleanup();
	});

	for (const peer of MATRIX) {
		test(`${peer.label}: a silent subscriber keeps its connection and gets events after the actor slept`, async () => {
			await withClient(server, peer, async (client) => {
				const handle = client.counter.getOrCreate(keyFor("hibernate", peer));
				const conn = handle.connect();
				let closes = 0;
				conn.onClose(() => {
					closes += 1;
				});
				const first = nextEvent(conn, "newCount");
				assert.equal(await within(conn.increment(1), "increment"), 1);
				// The subscription is in: the connection got its own change.
				assert.deepEqual(await first, [1]);
				const id = conn.connectionId;

				await within(conn.goToSleep(), "goToSleep");
				// Another client's stateless call wakes the actor; its broadcast reaches the
				// connection that slept with it.
				const woken = nextEvent(conn, "newCount", "the event after the wake");
				assert.equal(await within(handle.increment(1), "increment over HTTP"), 2);
				assert.deepEqual(await woken, [2]);
				// The connection itself works as before, under the same id.
				assert.equal(await within(conn.getCount(), "getCount on the connection"), 2);
				assert.equal(conn.connectionId, id, "same connection");
				assert.equal(closes, 0, "the socket was never closed");
				await conn.dispose();
			});
		});
	}
});

/** The `footlights_websockets_parked` gauge of `server`. */
async function parkedSockets(server) {
	const text = await (await fetch(`${server.url}/metrics`)).text();
	const line = text.split("\n").find((l) => l.startsWith("footlights_websockets_parked "));
	assert.ok(line, "the gauge is exported");
	return Number(line.split(" ")[1]);
}

/** Waits (bounded) until the gauge reads `n`; each look is a request. */
async function untilParked(server, n) {
	await within(
		(async () => {
			while ((await parkedSockets(server)) !== n) {
				await new Promise((resolve) => setImmediate(resolve));
			}
		})(),
		`${n} parked sockets`,
	);
}

// One client at a time on a server of its own, so that the gauge counts only its socket.
describe("parked sockets", () => {
	let server;
	before(async () => {
		server = await Footlights.start();
	});
	after(async () => {
		await server?.cleanup();
	});

	for (const peer of MATRIX) {
		test(`${peer.label}: the socket of a sleeping actor parks and serves again on wake`, async () => {
			await withClient(server, peer, async (client) => {
				const handle = client.counter.getOrCreate(keyFor("park", peer));
				const conn = handle.connect();
				const first = nextEvent(conn, "newCount");
				const start = await within(conn.increment(1), "increment");
				assert.deepEqual(await first, [start]);
				await within(conn.goToSleep(), "goToSleep");
				await untilParked(server, 1);
				const woken = nextEvent(conn, "newCount", "the event after the wake");
				assert.equal(await within(handle.increment(1), "increment over HTTP"), start + 1);
				assert.deepEqual(await woken, [start + 1]);
				assert.equal(await parkedSockets(server), 0, "the socket serves again");
				assert.equal(await within(conn.getCount(), "getCount on the connection"), start + 1);
				await conn.dispose();
			});
		});
	}
});
