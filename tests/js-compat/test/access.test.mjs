// A server started with a token: the official clients send it where the server looks for it
// (Bearer on the manager API; x-rivet-token, rvt-token or @token on the gateway), and a client
// without it is refused with auth.unauthorized.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, rejectsWith, within } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

const TOKEN = "js-compat-token";

let server;
before(async () => {
	server = await Footlights.start({ args: ["--token", TOKEN] });
});
after(async () => {
	await server?.cleanup();
});

async function withTokenClient(peer, token, fn) {
	const options = { endpoint: server.url, encoding: peer.encoding };
	if (token !== undefined) options.token = token;
	const client = peer.createClient(options);
	try {
		return await fn(client);
	} finally {
		await within(client.dispose(), "client.dispose()");
	}
}

for (const peer of MATRIX) {
	describe(peer.label, { concurrency: true }, () => {
		test("with the token, actors are created (manager API) and called", async () => {
			await withTokenClient(peer, TOKEN, async (client) => {
				const key = keyFor("token-ok", peer);
				const handle = await client.counter.create(key);
				assert.equal(await handle.increment(2), 2);
				assert.equal(await client.counter.get(key).getCount(), 2);
			});
		});

		test("without the token, creating an actor is refused with auth.unauthorized", async () => {
			await withTokenClient(peer, undefined, async (client) => {
				await rejectsWith(client.counter.create(keyFor("token-missing", peer)), { code: "unauthorized" });
			});
		});

		test("with a wrong token, creating an actor is refused with auth.forbidden", async () => {
			await withTokenClient(peer, "wrong", async (client) => {
				await rejectsWith(client.counter.create(keyFor("token-wrong", peer)), { code: "forbidden" });
			});
		});
	});
}
