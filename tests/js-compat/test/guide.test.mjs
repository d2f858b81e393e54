// The JavaScript snippets of the README and the guide, run as written (only the server address
// and the client's encoding are swapped in) against the demo actors of `footlights serve`:
// the README's counter and the guide's chat room (crates/footlights/docs/clients.md). A snippet
// that calls an action or listens for an event the demo does not have fails here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { within } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

/** The address the snippets are written for. */
const DOC_ENDPOINT = "http://127.0.0.1:6420";

/** The ```js blocks of a file of the repository that create a client. */
function snippets(path) {
	const text = readFileSync(new URL(`../../../${path}`, import.meta.url), "utf8");
	const blocks = [...text.matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1]);
	return blocks.filter((code) => code.includes("createClient("));
}

/** The one snippet of `path` that uses `client.{actor}`. */
function snippet(path, actor) {
	const found = snippets(path).filter((code) => code.includes(`client.${actor}.`));
	assert.equal(found.length, 1, `one snippet of ${path} uses client.${actor}`);
	return found[0];
}

/**
 * Runs `code` as the body of an async function, its imports removed: `createClient` makes a
 * client of `peer` for the test server, `console` records what the snippet logs. Disposes the
 * clients it made. Returns the records: `[method, ...args]`.
 */
async function run(code, peer, server) {
	assert.ok(code.includes(DOC_ENDPOINT), `the snippet connects to ${DOC_ENDPOINT}`);
	const body = code.replace(/^import .*$/gm, "").replaceAll(DOC_ENDPOINT, server.url);
	const records = [];
	const console = Object.fromEntries(["log", "info", "warn", "error"].map((m) => [m, (...args) => records.push([m, ...args])]));
	const clients = [];
	const createClient = (endpoint) => {
		assert.equal(endpoint, server.url);
		const client = peer.createClient({ endpoint, encoding: peer.encoding });
		clients.push(client);
		return client;
	};
	const AsyncFunction = (async () => {}).constructor;
	try {
		await within(new AsyncFunction("createClient", "console", body)(createClient, console), "the snippet");
	} finally {
		for (const client of clients) await within(client.dispose(), "client.dispose()");
	}
	return records;
}

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

// One peer after another: the snippets name fixed keys, and each expects what it logs.
describe("documentation snippets", () => {
	for (const peer of MATRIX) {
		describe(peer.label, () => {
			test("the guide's chat room: sendMessage, and the newMessage event with from and text", async () => {
				const records = await run(snippet("crates/footlights/docs/clients.md", "chatRoom"), peer, server);
				// The event comes before the action's answer on the same connection.
				assert.deepEqual(records, [["log", "ann", "hello"]]);
			});

			test("the README's counter: increment, and the newCount event", async () => {
				const records = await run(snippet("README.md", "counter"), peer, server);
				assert.equal(records.length, 1, JSON.stringify(records));
				const [method, text, count] = records[0];
				assert.deepEqual([method, text], ["log", "count is"]);
				assert.ok(Number.isInteger(count) && count >= 1, `a count: ${count}`);
			});
		});
	}
});
