// Errors: user errors with code and metadata, masked internal errors, action timeouts, and
// 2.0.33's handling of an error for action id 0.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, nextCallback, rejectsWith, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

/** What the server tells 2.3.x clients instead of an internal error's details. */
const MASKED = "An internal error occurred";
/** The same for 2.0.33, worded as 2.0.33's own server worded it (RIVETKIT_PROTOCOL.md §8.3). */
const MASKED_2033 = "Internal error. Read the server logs for more details.";

/**
 * The masked internal error `peer` sees over `transport`. The server words it for 2.0.33 where
 * it can tell that it talks to 2.0.33: the client's HTTP requests name it in their User-Agent
 * (Node) and carry BARE v2 bodies, its connection's BARE frames carry protocol v2. Its JSON and
 * CBOR frames look like 2.3.19's (§3.4, §9) and get 2.3.19's wording.
 */
function maskedFor(peer, transport) {
	if (peer.version === "2.0.33" && (transport === "http" || peer.encoding === "bare")) {
		return { group: "internal", code: "internal_error", message: MASKED_2033 };
	}
	return { group: "core", code: "internal_error", message: MASKED };
}

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

/** Runs `fn(target)` on a stateless handle or on a connection whose first action succeeded. */
async function via(transport, handle, fn) {
	if (transport === "http") return fn(handle);
	const conn = handle.connect();
	try {
		// Action id 0 goes to a call that succeeds (see the id-0 test below).
		await within(conn.getInput(), "first action");
		return await fn(conn);
	} finally {
		await within(conn.dispose(), "conn.dispose()");
	}
}

describe("errors", { concurrency: true }, () => {
	for (const peer of MATRIX) {
		describe(peer.label, { concurrency: true }, () => {
			for (const transport of ["http", "conn"]) {
				test(`a user error keeps its code, message and metadata (${transport})`, async () => {
					await withClient(server, peer, async (client) => {
						const handle = client.testActor.getOrCreate(keyFor(`user-error-${transport}`, peer));
						await via(transport, handle, async (target) => {
							const metadata = { limit: 10, tags: ["a", "b"], nested: { ok: false } };
							await rejectsWith(target.userError("too_big", "the number is too big", metadata), {
								group: "user",
								code: "too_big",
								message: "the number is too big",
								metadata,
							});
							const bare = await rejectsWith(target.userError("plain", "no metadata"), { group: "user", code: "plain" });
							assert.equal(bare.metadata ?? undefined, undefined, "no metadata stays absent");
						});
					});
				});

				test(`an internal error is masked (${transport})`, async () => {
					await withClient(server, peer, async (client) => {
						const handle = client.testActor.getOrCreate(keyFor(`internal-error-${transport}`, peer));
						await via(transport, handle, async (target) => {
							const error = await rejectsWith(target.internalError(), maskedFor(peer, transport));
							assert.equal(error.metadata ?? undefined, undefined);
							assert.ok(!String(error.stack).includes("hunter2"), "no detail leaks");
							// The actor keeps serving.
							assert.equal(await target.getInput(), null);
						});
					});
				});

				test(`an action past its timeout is actor.action_timed_out (${transport})`, async () => {
					await withClient(server, peer, async (client) => {
						const handle = client.testActor.getOrCreate(keyFor(`timeout-${transport}`, peer));
						await via(transport, handle, async (target) => {
							// testActor's actions time out after 1 s; `slow` never finishes on its own.
							const error = await rejectsWith(target.slow(), { group: "actor", code: "action_timed_out" });
							// Worded as both client generations word their own timeouts.
							assert.match(error.message, /^Action timed out/);
							assert.equal(await target.getInput(), null, "the actor serves again after the timeout");
						});
					});
				});
			}

			test("an error for a connection's first action (id 0)", async () => {
				await withClient(server, peer, async (client) => {
					const conn = client.testActor.getOrCreate(keyFor("action-id-0", peer)).connect();
					const errors = [];
					conn.onError((error) => errors.push(error.code));
					const onError = peer.version === "2.0.33" ? nextCallback((cb) => conn.onError(cb), "onError") : null;
					await rejectsWith(conn.userError("first_fails", "id 0"), { group: "user", code: "first_fails" });
					if (peer.version === "2.0.33") {
						// 2.0.33 tests the error's actionId for truthiness, so an error for action 0 is
						// also reported as a connection error (RIVETKIT_PROTOCOL.md §7.6, §11): onError
						// fires, although the socket stays open. Nothing server-side avoids this.
						const [error] = await onError;
						assert.equal(error.code, "first_fails");
					}
					// A later action's answer arrives after any onError the error caused.
					assert.equal(await within(conn.getInput(), "getInput"), null);
					await rejectsWith(conn.userError("second_fails", "id 2"), { code: "second_fails" });
					assert.equal(await within(conn.getInput(), "getInput"), null);
					assert.deepEqual(errors, peer.version === "2.0.33" ? ["first_fails"] : [], "onError calls");
					assert.equal(conn.connStatus, "connected");
					await conn.dispose();
				});
			});
		});
	}
});
