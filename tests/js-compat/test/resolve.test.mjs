// Finding actors: get, getOrCreate (with create input), create (and a duplicate key),
// getForId and resolve — for each client version and encoding.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, rejectsWith, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

/** An id no actor has (ids are 32 hex digits). */
const UNKNOWN_ID = "0123456789abcdef0123456789abcdef";

const INPUT = { label: "first", n: 7, ratio: 0.5, nested: { list: [1, "two", null, false] }, text: "héllo ✓" };

/**
 * The URL of every HTTP request this process makes. Both clients call the global `fetch` for
 * each request, so this counts a client's attempts.
 */
const requested = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
	requested.push(typeof input === "string" ? input : (input.url ?? String(input)));
	return realFetch(input, init);
};

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

for (const peer of MATRIX) {
	describe(peer.label, { concurrency: true }, () => {
		test("getOrCreate creates the actor once; get reaches the same one", async () => {
			await withClient(server, peer, async (client) => {
				const key = keyFor("get-or-create", peer);
				assert.equal(await client.counter.getOrCreate(key).increment(2), 2);
				assert.equal(await client.counter.getOrCreate(key).increment(3), 5);
				assert.equal(await client.counter.get(key).getCount(), 5);
			});
		});

		test("get of a key nobody created is not_found, after one request", async () => {
			await withClient(server, peer, async (client) => {
				const [key] = keyFor("never-created", peer);
				const error = await rejectsWith(client.counter.get([key]).getCount(), { code: "not_found" });
				const attempts = requested.filter((url) => url.includes(key));
				// 2.3.19 retries an error of group `actor` with a "stale actor" code 24 times, 100 ms
				// apart (RIVETKIT_PROTOCOL.md §6.1, §8.6), and takes any other group as final: the
				// server answers its query-gateway call `guard.not_found`. 2.0.33 looks the key up
				// (`GET /actors`) and fails on the empty answer without calling the actor.
				assert.equal(attempts.length, 1, `requests:\n${attempts.join("\n")}`);
				assert.equal(error.group, peer.version === "2.3.19" ? "guard" : "actor");
			});
		});

		test("getOrCreate hands the create input to a new actor, and only to a new one", async () => {
			await withClient(server, peer, async (client) => {
				const key = keyFor("create-input", peer);
				const handle = client.testActor.getOrCreate(key, { createWithInput: INPUT });
				assert.deepEqual(await handle.getInput(), INPUT);
				const again = client.testActor.getOrCreate(key, { createWithInput: { label: "second" } });
				assert.deepEqual(await again.getInput(), INPUT);
			});
		});

		test("create makes a new actor with its input; the same key again is actor.duplicate_key", async () => {
			await withClient(server, peer, async (client) => {
				const key = keyFor("create", peer);
				const handle = await client.testActor.create(key, { input: INPUT });
				assert.deepEqual(await handle.getInput(), INPUT);
				await rejectsWith(client.testActor.create(key, { input: { label: "second" } }), {
					group: "actor",
					code: "duplicate_key",
				});
				assert.deepEqual(await client.testActor.get(key).getInput(), INPUT);
			});
		});

		test("resolve answers the actor id; getForId reaches the same actor", async () => {
			await withClient(server, peer, async (client) => {
				const key = keyFor("resolve", peer);
				const id = await client.counter.getOrCreate(key).resolve();
				assert.equal(typeof id, "string");
				assert.ok(id.length > 0);
				assert.equal(await client.counter.get(key).resolve(), id);
				assert.equal(await client.counter.getForId(id).resolve(), id);
				assert.equal(await client.counter.getForId(id).increment(4), 4);
				assert.equal(await client.counter.get(key).getCount(), 4);

				const created = await client.counter.create(keyFor("resolve-created", peer));
				const createdId = await created.resolve();
				assert.notEqual(createdId, id);
				assert.equal(await client.counter.getForId(createdId).increment(1), 1);
			});
		});

		test("getForId of an unknown id is actor.not_found", async () => {
			await withClient(server, peer, async (client) => {
				await rejectsWith(client.counter.getForId(UNKNOWN_ID).getCount(), { code: "not_found" });
			});
		});
	});
}
