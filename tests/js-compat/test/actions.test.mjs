// Actions over HTTP (stateless handles) and over a connection: shared state, concurrency,
// unknown actions, and how values travel in each encoding.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, rejectsWith, within, withClient } from "../lib/helpers.mjs";
import { knownBug } from "../lib/known-bugs.mjs";
import { Footlights } from "../lib/server.mjs";

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

/** Calls `fn(target)` with a stateless handle (`http`) or a fresh connection (`conn`). */
async function via(transport, client, handle, fn) {
	if (transport === "http") return fn(handle);
	const conn = handle.connect();
	try {
		return await fn(conn);
	} finally {
		await within(conn.dispose(), "conn.dispose()");
	}
}

describe("actions", { concurrency: true }, () => {
	for (const peer of MATRIX) {
		describe(peer.label, { concurrency: true }, () => {
			test("HTTP and connection actions change the same state", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.counter.getOrCreate(keyFor("shared-state", peer));
					assert.equal(await handle.increment(2), 2);
					const conn = handle.connect();
					assert.equal(await within(conn.increment(3), "conn.increment"), 5);
					assert.equal(await handle.getCount(), 5);
					assert.equal(await within(conn.getCount(), "conn.getCount"), 5);
					await conn.dispose();
				});
			});

			test("a connection runs many actions at once and matches every answer to its call", async () => {
				await withClient(server, peer, async (client) => {
					const conn = client.counter.getOrCreate(keyFor("concurrent", peer)).connect();
					const answers = await within(Promise.all(Array.from({ length: 25 }, () => conn.increment(1))), "25 increments");
					assert.deepEqual(
						[...answers].sort((a, b) => a - b),
						Array.from({ length: 25 }, (_, i) => i + 1),
					);
					await conn.dispose();
				});
			});

			for (const transport of ["http", "conn"]) {
				test(`an unknown action is actor.action_not_found (${transport})`, async () => {
					await withClient(server, peer, async (client) => {
						const handle = client.counter.getOrCreate(keyFor(`unknown-action-${transport}`, peer));
						await via(transport, client, handle, async (target) => {
							// A first successful call, so the failing one does not carry action id 0
							// (2.0.33 mistakes an error for id 0 for a connection error; see errors.test.mjs).
							await target.getCount();
							await rejectsWith(target.action({ name: "noSuchAction", args: [] }), {
								group: "actor",
								code: "action_not_found",
							});
						});
					});
				});

				test(`JSON-shaped values round-trip unchanged (${transport})`, async () => {
					const value = {
						text: "héllo ✓ \u{1F600}",
						empty: "",
						numbers: [0, -1, 1.5, -2.25, 4294967295, 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER],
						flags: [true, false],
						nothing: null,
						nested: { list: [[1, [2, [3]]], { deep: { deeper: "x" } }], empty: {} },
					};
					await withClient(server, peer, async (client) => {
						const handle = client.chatRoom.getOrCreate(keyFor(`json-values-${transport}`, peer));
						const echoed = await via(transport, client, handle, (target) => target.ping(value));
						assert.deepEqual(echoed, value);
						// Integers beyond 32 bits must come back as numbers, not BigInts.
						assert.equal(typeof echoed.numbers[5], "number");
					});
				});

				test(`bytes round-trip as a Uint8Array (${transport})`, async () => {
					await withClient(server, peer, async (client) => {
						const handle = client.chatRoom.getOrCreate(keyFor(`bytes-${transport}`, peer));
						const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
						const echoed = await via(transport, client, handle, (target) => target.ping({ bytes }));
						assert.ok(echoed.bytes instanceof Uint8Array, `got ${echoed.bytes?.constructor?.name}`);
						assert.deepEqual([...echoed.bytes], [...bytes]);
					});
				});

				// 2.0.33 reads CBOR without the compat reviver, and over a WebSocket nothing tells the
				// server which version it talks to (no User-Agent, no query URL, and CBOR has no version
				// prefix), so it uses its default, the 2.3 dialect, which escapes `["$y", …]` as
				// `["$$y", …]` (RIVETKIT_PROTOCOL.md §3.4; IMPLEMENTATION_NOTES.md open question 3).
				// That case asserts this documented behaviour.
				const escapedFor2033 = peer.version === "2.0.33" && peer.encoding === "cbor" && transport === "conn";
				test(`two-element arrays starting with a \`$\` string round-trip (${transport})`, { todo: knownBug("cborEnvelopeRevived", peer, transport) }, async () => {
					const value = { one: ["$y", 1], two: ["$$z", 2], three: ["$", "$"] };
					const expected = escapedFor2033 ? { one: ["$$y", 1], two: ["$$$z", 2], three: ["$$", "$"] } : value;
					await withClient(server, peer, async (client) => {
						const handle = client.chatRoom.getOrCreate(keyFor(`dollar-arrays-${transport}`, peer));
						assert.deepEqual(await via(transport, client, handle, (target) => target.ping(value)), expected);
					});
				});

				test(`BigInts round-trip as BigInts (${transport})`, { todo: knownBug("valueNotIdentity", peer, transport) }, async () => {
					await withClient(server, peer, async (client) => {
						const handle = client.chatRoom.getOrCreate(keyFor(`bigints-${transport}`, peer));
						const value = [10n, -(2n ** 63n), 2n ** 70n];
						assert.deepEqual(await via(transport, client, handle, (target) => target.ping(value)), value);
					});
				});
			}
		});
	}
});
