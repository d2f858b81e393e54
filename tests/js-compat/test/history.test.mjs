// The chat room's history: every message numbered by `seq`, `history` for the latest page,
// `historyBefore(seq, limit)` to page back through everything, newest first.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, rejectsWith, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

/** What one history call returns at most (`PAGE_LIMIT` of the demo chatRoom). */
const PAGE = 100;

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

/**
 * Sends `count` messages as `pia` over one connection, all at once, and returns them as the
 * history should show them, by seq (index 0 is seq 1). Every other one carries a `sentAt`.
 */
async function fill(client, key, count) {
	const conn = client.chatRoom.getOrCreate(key, { params: { name: "pia" } }).connect();
	try {
		const sent = Array.from({ length: count }, (_, i) => ({ text: `m${i}`, ...(i % 2 ? { sentAt: 1_700_000_000_000 + i } : {}) }));
		const seqs = await within(
			Promise.all(sent.map(async (m) => (await conn.sendMessage(m.text, m.sentAt ?? null)).seq)),
			`${count} sendMessage calls`,
		);
		assert.deepEqual(
			[...seqs].sort((a, b) => a - b),
			Array.from({ length: count }, (_, i) => i + 1),
			"each message gets its own seq, from 1 up",
		);
		const bySeq = [];
		seqs.forEach((seq, i) => {
			bySeq[seq - 1] = { seq, from: "pia", ...sent[i] };
		});
		return bySeq;
	} finally {
		await within(conn.dispose(), "conn.dispose()");
	}
}

/** Calls `fn(target)` with a stateless handle (`http`) or a fresh connection (`conn`). */
async function via(transport, handle, fn) {
	if (transport === "http") return fn(handle);
	const conn = handle.connect();
	try {
		return await fn(conn);
	} finally {
		await within(conn.dispose(), "conn.dispose()");
	}
}

describe("chat history", { concurrency: true }, () => {
	for (const peer of MATRIX) {
		describe(peer.label, { concurrency: true }, () => {
			for (const transport of ["http", "conn"]) {
				test(`historyBefore pages back through every message, newest first (${transport})`, async () => {
					await withClient(server, peer, async (client) => {
						const key = keyFor(`paging-${transport}`, peer);
						const total = PAGE + 30;
						const all = await fill(client, key, total);
						await via(transport, client.chatRoom.getOrCreate(key), async (room) => {
							// The latest page, oldest first, as before.
							assert.deepEqual(await within(room.history(), "history"), all.slice(-PAGE));

							const seen = [];
							const sizes = [];
							let page = await within(room.historyBefore(null, 40), "historyBefore(null, 40)");
							while (page.length > 0) {
								sizes.push(page.length);
								seen.push(...page);
								const oldest = page.at(-1).seq;
								page = await within(room.historyBefore(oldest, 40), `historyBefore(${oldest}, 40)`);
							}
							assert.deepEqual(sizes, [40, 40, 40, 10]);
							assert.deepEqual(seen, all.toReversed(), "every message once, newest first");
						});
					});
				});
			}

			test("historyBefore clamps its limit to 1..100 and checks its arguments", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("limits", peer);
					const total = PAGE + 5;
					const all = await fill(client, key, total);
					const room = client.chatRoom.getOrCreate(key);
					const newestFirst = all.toReversed();
					assert.deepEqual(await room.historyBefore(total + 1, 0), newestFirst.slice(0, 1), "0 means 1");
					assert.deepEqual(await room.historyBefore(total + 1, 1000), newestFirst.slice(0, PAGE), "at most 100");
					assert.deepEqual(await room.historyBefore(total + 1), newestFirst.slice(0, PAGE), "no limit: 100");
					assert.deepEqual(await room.historyBefore(), newestFirst.slice(0, PAGE), "no seq: the latest");
					assert.deepEqual(await room.historyBefore(4, 2), [all[2], all[1]]);
					assert.deepEqual(await room.historyBefore(1, 10), [], "nothing before the first");
					for (const args of [[-1, 10], [10, -1], [10, 2.5], ["10", 2]]) {
						await rejectsWith(room.historyBefore(...args), { group: "actor", code: "invalid_request" }, `historyBefore(${args})`);
					}
				});
			});
		});
	}
});
