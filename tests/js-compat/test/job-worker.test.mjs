// The job worker example (`examples/job-worker`, its own server binary) through the
// official client, as an application would use it: a connection subscribed to `progress` and
// `finished`, a queue send that waits for the job's result, and the kept results. Only 2.3.19
// has queues; every encoding is run.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, nextEvent, rejectsWith, within, withClient } from "../lib/helpers.mjs";
import { Footlights, jobWorkerCommand } from "../lib/server.mjs";

let server;
before(async () => {
	server = await Footlights.start(jobWorkerCommand());
});
after(async () => {
	await server?.cleanup();
});

const TEXT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
const RESULT = { id: "j1", words: 15, characters: TEXT.length, longest: "thirteen" };

describe("job worker example", { concurrency: true }, () => {
	for (const peer of MATRIX.filter((p) => p.version === "2.3.19")) {
		describe(peer.label, { concurrency: true }, () => {
			test("progress events arrive in order, then the result, to the sender and to subscribers", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.jobWorker.getOrCreate(keyFor("progress", peer));
					const conn = handle.connect();
					const percents = [];
					conn.on("progress", (progress) => {
						assert.equal(progress.job, "j1");
						percents.push(progress.percent);
					});
					const finished = nextEvent(conn, "finished");
					// Answered only once the subscriptions sent before it are in place.
					assert.equal(await within(conn.processed(), "processed"), 0);

					const sent = await within(handle.send("jobs", { id: "j1", text: TEXT }, { wait: true, timeout: 10_000 }), "send and wait");
					assert.deepEqual(sent, { status: "completed", response: RESULT });
					assert.deepEqual(await finished, [RESULT]);
					// `finished` is sent after the last progress event, on the same connection.
					assert.deepEqual(percents, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);

					assert.deepEqual(await within(conn.recent(), "recent"), [RESULT]);
					assert.deepEqual(await within(handle.result("j1"), "result"), RESULT);
					assert.equal(await within(handle.result("nope"), "result of an unknown job"), null);
					await conn.dispose();
				});
			});

			test("a send that does not wait is processed; a job of the wrong shape is refused", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.jobWorker.getOrCreate(keyFor("no-wait", peer));
					const conn = handle.connect();
					const finished = nextEvent(conn, "finished");
					assert.equal(await within(conn.processed(), "processed"), 0);
					assert.equal(await within(handle.send("jobs", { id: "quiet", text: "" }), "send"), undefined);
					assert.deepEqual(await finished, [{ id: "quiet", words: 0, characters: 0, longest: "" }]);
					assert.equal(await within(handle.processed(), "processed"), 1);
					await rejectsWith(handle.send("jobs", { text: "no id" }), { group: "queue", code: "invalid_message" }, "send of a job without an id");
					await conn.dispose();
				});
			});
		});
	}
});
