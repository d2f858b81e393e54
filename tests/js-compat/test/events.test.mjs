// Events on a connection: on, once, off (the unsubscribe function), and events caused by
// other clients.
//
// "Nothing arrived" is checked without waiting for time to pass: the server sends the events an
// action broadcasts to a connection before that action's answer on the same connection, so once
// the answer is in, any event it caused for this connection would have been delivered.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, nextEvent, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

describe("events", { concurrency: true }, () => {
	for (const peer of MATRIX) {
		describe(peer.label, { concurrency: true }, () => {
			test("on receives every event until it is turned off", async () => {
				await withClient(server, peer, async (client) => {
					const conn = client.counter.getOrCreate(keyFor("on-off", peer)).connect();
					const seen = [];
					const off = conn.on("newCount", (count) => seen.push(count));
					assert.equal(await within(conn.increment(1), "increment"), 1);
					assert.equal(await within(conn.increment(2), "increment"), 3);
					assert.deepEqual(seen, [1, 3]);
					off();
					assert.equal(await within(conn.increment(4), "increment"), 7);
					assert.deepEqual(seen, [1, 3], "no event after off()");
					await conn.dispose();
				});
			});

			test("an event without arguments calls the listener with none", async () => {
				await withClient(server, peer, async (client) => {
					const conn = client.testActor.getOrCreate(keyFor("no-args", peer)).connect();
					const calls = [];
					conn.on("poked", (...args) => calls.push(args));
					await within(conn.poke(), "poke");
					// A unit struct deriving `Event` is sent with an empty argument list.
					assert.deepEqual(calls, [[]]);
					await conn.dispose();
				});
			});

			test("once receives a single event", async () => {
				await withClient(server, peer, async (client) => {
					const conn = client.counter.getOrCreate(keyFor("once", peer)).connect();
					const seen = [];
					conn.once("newCount", (count) => seen.push(count));
					assert.equal(await within(conn.increment(5), "increment"), 5);
					assert.equal(await within(conn.increment(5), "increment"), 10);
					assert.deepEqual(seen, [5]);
					await conn.dispose();
				});
			});

			test("a connection gets the events other clients cause, and only those it subscribed to", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("others", peer);
					const listener = client.counter.getOrCreate(key).connect();
					const counts = [];
					listener.on("newCount", (count) => counts.push(count));
					// A first round trip on the listener: its subscription is in before others act.
					assert.equal(await within(listener.getCount(), "listener.getCount"), 0);
					const next = nextEvent(listener, "newCount");
					assert.equal(await client.counter.getOrCreate(key).increment(7), 7); // over HTTP
					assert.deepEqual(await next, [7]);

					const other = client.counter.getOrCreate(key).connect(); // subscribed to nothing
					const otherSeen = [];
					const following = nextEvent(listener, "newCount");
					assert.equal(await within(other.increment(1), "other.increment"), 8);
					assert.deepEqual(await following, [8]);
					// `other` subscribed to nothing; a listener added now sees only later events.
					other.on("newCount", (count) => otherSeen.push(count));
					const last = nextEvent(listener, "newCount");
					assert.equal(await within(other.increment(1), "other.increment"), 9);
					assert.deepEqual(otherSeen, [9]);
					// Events reach other connections in their own time: wait for the listener's.
					assert.deepEqual(await last, [9]);
					assert.deepEqual(counts, [7, 8, 9]);
					await Promise.all([listener.dispose(), other.dispose()]);
				});
			});

			test("events carry structured arguments", async () => {
				await withClient(server, peer, async (client) => {
					const conn = client.chatRoom.getOrCreate(keyFor("structured", peer), { params: { name: "ana" } }).connect();
					const message = nextEvent(conn, "newMessage");
					const sentAt = 1_700_000_000_123;
					const sent = { seq: 1, from: "ana", text: "hello", sentAt };
					assert.deepEqual(await within(conn.sendMessage("hello", sentAt), "sendMessage"), sent);
					assert.deepEqual(await message, [sent]);
					await conn.dispose();
				});
			});
		});
	}
});
