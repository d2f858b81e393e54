// Raw HTTP requests (`handle.fetch(path)` → `/request/{path}`, RIVETKIT_PROTOCOL.md §6.3): the
// handler's response comes back unchanged; a handler that makes no response and an actor without
// a handler are told apart (500 and 404, each with a coded error); slow requests run beside the
// actor's mailbox, so several are in progress at once.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { WAIT_MS, keyFor, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

/** How many `/together` requests `testRaw` makes wait for each other (`TOGETHER`). */
const TOGETHER = 3;

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

/** The JSON error body of a non-2xx raw response. */
async function errorOf(response) {
	assert.match(response.headers.get("content-type") ?? "", /application\/json/);
	return await response.json();
}

/** Asks `check()` again, one round trip at a time, until it holds; bounded by WAIT_MS. */
async function until(check, what) {
	const deadline = Date.now() + WAIT_MS;
	while (!(await within(check(), what))) {
		if (Date.now() > deadline) throw new Error(`${what} never held`);
	}
}

describe("raw requests", { concurrency: true }, () => {
	for (const peer of MATRIX) {
		describe(peer.label, { concurrency: true }, () => {
			test("the handler's response comes back unchanged", async () => {
				await withClient(server, peer, async (client) => {
					const response = await within(client.testRaw.getOrCreate(keyFor("hello", peer)).fetch("hello"), "fetch");
					assert.equal(response.status, 200);
					assert.equal(await response.text(), "hello");
				});
			});

			test("a handler that makes no response is a 500, an actor without one a 404", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.testRaw.getOrCreate(keyFor("nothing", peer));
					const nothing = await within(handle.fetch("nothing"), "fetch nothing");
					assert.equal(nothing.status, 500);
					const made = await errorOf(nothing);
					assert.deepEqual([made.group, made.code], ["handler", "invalid_request_handler_response"]);

					const elsewhere = await within(handle.fetch("elsewhere"), "fetch elsewhere");
					assert.equal(elsewhere.status, 404);
					assert.equal((await errorOf(elsewhere)).code, "request_not_defined");

					// `counter` has no request handler at all.
					const counter = client.counter.getOrCreate(keyFor("no-handler", peer));
					const none = await within(counter.fetch("anything"), "fetch on counter");
					assert.equal(none.status, 404);
					const missing = await errorOf(none);
					assert.deepEqual([missing.group, missing.code], ["handler", "request_not_defined"]);
				});
			});

			test("slow requests run beside the actor's mailbox", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.testRaw.getOrCreate(keyFor("together", peer));
					// Each `/together` is answered only once all three have started: served one at a
					// time, the first would wait for ever.
					const first = [handle.fetch("together"), handle.fetch("together")];
					// The actor answers actions while those two wait.
					await until(async () => (await handle.requests()) === TOGETHER - 1, "two requests in progress");
					const all = await within(Promise.all([...first, handle.fetch("together")]), "three requests together");
					for (const response of all) {
						assert.equal(response.status, 200);
						assert.equal(await response.text(), "together");
					}
				});
			});
		});
	}
});
