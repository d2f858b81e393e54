// Hibernation with the official clients: a connected client's actor goes to sleep
// (`goToSleep` on the demo counter), the socket stays open, and an event caused by another
// client's call (which wakes the actor) still reaches it; the connection keeps its id and is
// never closed.
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
