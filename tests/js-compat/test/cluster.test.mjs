// Several nodes on one PostgreSQL: the official clients talking to one node reach an actor held
// by another (stateless actions, connections, events), and a client connected through a
// surviving node carries on after the owner is killed. `.ci/run` starts a PostgreSQL and sets
// FOOTLIGHTS_TEST_POSTGRES_URL; without it these tests are skipped, except in CI, where that
// is an error.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CLIENTS, MATRIX } from "../lib/clients.mjs";
import { keyFor, nextEvent, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

const POSTGRES = process.env.FOOTLIGHTS_TEST_POSTGRES_URL;
if (!POSTGRES && process.env.CI) {
	throw new Error("CI runs the cluster tests: FOOTLIGHTS_TEST_POSTGRES_URL must be set (.ci/run sets it)");
}
const skip = POSTGRES ? false : "no PostgreSQL: set FOOTLIGHTS_TEST_POSTGRES_URL (.ci/run does)";

/** A cluster node of `schema` (each suite has its own schema, so suites never share actors). */
function node(schema, name) {
	return Footlights.start({
		args: ["--postgres", POSTGRES, "--postgres-schema", schema, "--node-name", name, "--peer-addr", "127.0.0.1:0", "--lease-ms", "2000"],
	});
}

let schemas = 0;
function freshSchema() {
	schemas += 1;
	return `js_compat_${process.pid}_${schemas}`;
}

describe("cluster: any node serves any actor", { skip, concurrency: true }, () => {
	let a;
	let b;
	before(async () => {
		const schema = freshSchema();
		a = await node(schema, "a");
		b = await node(schema, "b");
	});
	after(async () => {
		await a?.cleanup();
		await b?.cleanup();
	});

	for (const peer of MATRIX) {
		test(`${peer.label}: a client of one node calls and connects to an actor held by the other`, async () => {
			const key = keyFor("cluster", peer);
			// The first call makes node a the actor's owner.
			await withClient(a, peer, async (client) => {
				assert.equal(await within(client.counter.getOrCreate(key).increment(1), "increment through a"), 1);
			});
			await withClient(b, peer, async (client) => {
				const handle = client.counter.getOrCreate(key);
				assert.equal(await within(handle.increment(1), "stateless increment through b"), 2);
				const conn = handle.connect();
				const event = nextEvent(conn, "newCount");
				assert.equal(await within(conn.increment(1), "increment on a connection through b"), 3);
				assert.deepEqual(await event, [3]);
				assert.equal(await within(conn.getCount(), "getCount through b"), 3);
				await conn.dispose();
			});
		});
	}
});

describe("cluster: the owner is killed", { skip, concurrency: false }, () => {
	for (const { version, createClient } of CLIENTS) {
		const peer = { version, createClient, encoding: "json", label: `rivetkit ${version} json` };
		test(`${peer.label}: a connection through a surviving node carries on once the actor is back`, async () => {
			const schema = freshSchema();
			const a = await node(schema, "a");
			const b = await node(schema, "b");
			try {
				const key = keyFor("failover", peer);
				await withClient(a, peer, async (client) => {
					assert.equal(await within(client.counter.getOrCreate(key).increment(1), "increment through a"), 1);
				});
				await withClient(b, peer, async (client) => {
					const conn = client.counter.getOrCreate(key).connect();
					const first = nextEvent(conn, "newCount");
					assert.equal(await within(conn.increment(1), "increment through b"), 2);
					assert.deepEqual(await first, [2]);
					await a.kill();
					// Node b closes the relayed socket (1012); the client reconnects and, once
					// node a's lease has run out, node b takes the actor from its durable state.
					let count;
					let refused = 0;
					while (count === undefined) {
						try {
							count = await within(conn.increment(1), "increment after the kill");
						} catch (error) {
							// The call made as the relayed socket closed is rejected (its socket
							// went away); 2.3.19 may still deliver it on the next connection, so
							// a retried increment can count twice.
							refused += 1;
							assert.ok(refused < 40, `no success after the owner died: ${error}`);
							await new Promise((resolve) => setTimeout(resolve, 250));
						}
					}
					assert.ok(count >= 3, `nothing acknowledged was lost (count ${count})`);
					assert.ok(count <= 3 + refused, `no increment counted that was never sent (count ${count}, ${refused} refused)`);
					assert.equal(await within(conn.getCount(), "getCount after the failover"), count);
					await conn.dispose();
				});
			} finally {
				await a.cleanup();
				await b.cleanup();
			}
		});
	}
});
