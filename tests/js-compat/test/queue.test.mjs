// Queue sends (`handle.send(name, body, options)` → `POST /queue/{name}`, RIVETKIT_PROTOCOL.md
// §6.2) to the demo `jobQueue`, whose run loop completes each `{ n }` with `{ doubled: 2n }`.
// Only 2.3.19 has queues (client protocol v3 and later); every encoding is run.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { WAIT_MS, keyFor, rejectsWith, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

/** Asks `check()` again, one round trip at a time, until it holds; bounded by WAIT_MS. */
async function until(check, what) {
	const deadline = Date.now() + WAIT_MS;
	while (!(await within(check(), what))) {
		if (Date.now() > deadline) throw new Error(`${what} never held`);
	}
}

describe("queue sends", { concurrency: true }, () => {
	for (const peer of MATRIX.filter((p) => p.version === "2.3.19")) {
		describe(peer.label, { concurrency: true }, () => {
			test("a send that waits gets the completion's response", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.jobQueue.getOrCreate(keyFor("wait", peer));
					const result = await within(handle.send("jobs", { n: 21 }, { wait: true }), "send and wait");
					assert.deepEqual(result, { status: "completed", response: { doubled: 42 } });
					assert.equal(await within(handle.processed(), "processed"), 1);
				});
			});

			test("a send that does not wait returns once stored, and the job is done", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.jobQueue.getOrCreate(keyFor("no-wait", peer));
					for (const n of [1, 2, 3]) {
						assert.equal(await within(handle.send("jobs", { n }), "send"), undefined);
					}
					await until(async () => (await handle.processed()) === 3, "three jobs processed");
				});
			});

			test("a wait with a timeout, and a queue the actor does not accept", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.jobQueue.getOrCreate(keyFor("refused", peer));
					const result = await within(handle.send("jobs", { n: -4 }, { wait: true, timeout: 5_000 }), "send");
					assert.deepEqual(result, { status: "completed", response: { doubled: -8 } });
					await rejectsWith(handle.send("other", { n: 1 }), { group: "auth", code: "forbidden" }, "send to another queue");
					await rejectsWith(handle.send("jobs", "not a job"), { group: "queue", code: "invalid_message" }, "send of a wrong body");
				});
			});
		});
	}
});
