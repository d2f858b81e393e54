// A restart no client notices: a successor started on the same port and data directory
// listens beside the running server, the running one gets SIGTERM, and connected clients of
// both generations reconnect to the successor, with their next calls and events working.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, nextCallback, nextEvent, untilStatus, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

describe("a restart with a successor", () => {
	let server;
	before(async () => {
		server = await Footlights.start();
	});
	after(async () => {
		await server?.cleanup();
	});

	// One handover per case, one case at a time: a handover affects every client of the server.
	for (const peer of MATRIX) {
		test(`${peer.label}: the connection moves to the successor; calls, events and state carry on`, async () => {
			await withClient(server, peer, async (client) => {
				const handle = client.counter.getOrCreate(keyFor("handover", peer));
				const conn = handle.connect();
				const errors = [];
				conn.onError((e) => errors.push(`${e.group}.${e.code}`));
				assert.equal(await within(conn.increment(1), "increment"), 1);
				const port = server.port;

				const successor = await Footlights.takeOver(server);
				const closed = nextCallback((cb) => conn.onClose(cb), "onClose");
				const reopened = closed.then(() => nextCallback((cb) => conn.onOpen(cb), "onOpen on the successor"));
				// SIGTERM: the old server stops listening, then closes every socket with 1001
				// `ws.going_away`; both generations reconnect at once, and the successor (the only
				// one listening now) holds them until it has the data directory.
				await server.stop();
				await within(successor.ready, "the successor serving");
				server = successor;
				assert.equal(server.port, port);
				await reopened;
				await untilStatus(conn, "connected");

				const event = nextEvent(conn, "newCount");
				assert.equal(await within(conn.increment(1), "increment after the handover"), 2);
				assert.deepEqual(await event, [2]);
				assert.equal(await within(handle.getCount(), "getCount over HTTP"), 2, "the state was saved and taken over");
				// 2.3.19 reports the coded close reason to `onError` as it reconnects (it does so for
				// every coded reason); nothing else may reach the application.
				const expected = peer.version === "2.3.19" ? ["ws.going_away"] : [];
				assert.deepEqual(errors, expected, "errors the client reported");
				await conn.dispose();
			});
		});
	}
});
