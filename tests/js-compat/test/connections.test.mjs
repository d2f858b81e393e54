// Connection params and connection state, join/leave hooks, and connections the server
// refuses (auth.forbidden, or a user error code from the before-connect hook).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MATRIX } from "../lib/clients.mjs";
import { keyFor, nextCallback, nextEvent, rejectsWith, untilStatus, within, withClient } from "../lib/helpers.mjs";
import { Footlights } from "../lib/server.mjs";

let server;
before(async () => {
	server = await Footlights.start();
});
after(async () => {
	await server?.cleanup();
});

/**
 * Opens a connection the server will refuse, calls `action` on it, and checks what each client
 * version does, as RIVETKIT_PROTOCOL.md §7.2, §7.5 and §7.8 describe: the server sends an
 * Error (no action id), then closes with 1011 `{group}.{code}`. The pending action is rejected
 * with that error and `onError` gets it. 2.3.19 then gives up (status `idle`); 2.0.33 retries
 * every failed attempt forever (status back to `connecting`) until the connection is disposed.
 */
async function expectRefused(peer, conn, call, expected) {
	const firstError = nextCallback((cb) => conn.onError(cb), "onError");
	await rejectsWith(call(), expected, "the action on a refused connection");
	const [error] = await firstError;
	for (const [field, value] of Object.entries(expected)) assert.deepStrictEqual(error[field], value, `onError error.${field}`);
	if (peer.version === "2.3.19") await untilStatus(conn, "idle");
	else assert.notEqual(conn.connStatus, "connected");
	await within(conn.dispose(), "conn.dispose()");
}

describe("connections", { concurrency: true }, () => {
	for (const peer of MATRIX) {
		describe(peer.label, { concurrency: true }, () => {
			test("params build the connection state (chatRoom `from`), over a connection and over HTTP", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("params", peer);
					const bob = client.chatRoom.getOrCreate(key, { params: { name: "bob" } }).connect();
					const message = nextEvent(bob, "newMessage");
					assert.deepEqual(await within(bob.sendMessage("hi from bob"), "sendMessage"), { seq: 1, from: "bob", text: "hi from bob" });
					assert.deepEqual(await message, [{ seq: 1, from: "bob", text: "hi from bob" }]);

					const carol = client.chatRoom.getOrCreate(key, { params: { name: "carol" } });
					assert.equal((await carol.sendMessage("hi from carol")).seq, 2);
					const nobody = client.chatRoom.getOrCreate(key);
					assert.equal((await nobody.sendMessage("who am I")).seq, 3);
					const anonConn = client.chatRoom.getOrCreate(key, { params: {} }).connect();
					assert.equal((await within(anonConn.sendMessage("no name"), "sendMessage")).seq, 4);

					assert.deepEqual(await nobody.history(), [
						{ seq: 1, from: "bob", text: "hi from bob" },
						{ seq: 2, from: "carol", text: "hi from carol" },
						{ seq: 3, from: "anon", text: "who am I" },
						{ seq: 4, from: "anon", text: "no name" },
					]);
					await Promise.all([bob.dispose(), anonConn.dispose()]);
				});
			});

			test("connection state lives as long as its connection", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.secureRoom.getOrCreate(keyFor("conn-state", peer), { params: { authToken: "user-token" } });
					const conn = handle.connect();
					assert.deepEqual(await within(conn.whoami(), "whoami"), { user: "ursula", role: "user", calls: 1 });
					assert.deepEqual(await within(conn.whoami(), "whoami"), { user: "ursula", role: "user", calls: 2 });
					// Every stateless call gets a fresh, short-lived connection.
					assert.deepEqual(await handle.whoami(), { user: "ursula", role: "user", calls: 1 });
					assert.deepEqual(await handle.whoami(), { user: "ursula", role: "user", calls: 1 });
					await conn.dispose();
				});
			});

			test("the actor lists the calling connection, stateless calls' included", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.testActor.getOrCreate(keyFor("caller-listed", peer));
					// A stateless call's short-lived connection is in the actor's list while it runs.
					assert.equal(await handle.callerListed(), true);
					const conn = handle.connect();
					assert.equal(await within(conn.callerListed(), "callerListed"), true);
					await conn.dispose();
				});
			});

			test("joined and left events follow real connections, not stateless calls", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("join-leave", peer);
					const observer = client.chatRoom.getOrCreate(key, { params: { name: "observer" } }).connect();
					const seen = [];
					for (const event of ["joined", "left"]) observer.on(event, (arg) => seen.push([event, arg.name]));
					observer.on("newMessage", (arg) => seen.push(["newMessage", arg.from]));
					assert.equal(await within(observer.connCount(), "connCount"), 1);

					const joined = nextEvent(observer, "joined");
					const alice = client.chatRoom.getOrCreate(key, { params: { name: "alice" } }).connect();
					assert.deepEqual(await joined, [{ name: "alice", members: ["alice", "observer"] }]);
					assert.deepEqual(await within(observer.members(), "members"), ["alice", "observer"]);

					const left = nextEvent(observer, "left");
					await within(alice.dispose(), "alice.dispose()");
					assert.deepEqual(await left, [{ name: "alice", members: ["observer"] }]);
					assert.equal(await within(observer.connCount(), "connCount"), 1);

					// A stateless call runs the hooks with a short-lived connection: the actor skips joined
					// and left for it. Its `newMessage` would come after a joined, so none came.
					const message = nextEvent(observer, "newMessage");
					await client.chatRoom.getOrCreate(key, { params: { name: "dave" } }).sendMessage("stateless");
					await message;
					assert.deepEqual(seen, [
						["joined", "alice"],
						["left", "alice"],
						["newMessage", "dave"],
					]);
					await observer.dispose();
				});
			});

			test("a connection without a valid authToken is refused with auth.forbidden", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("no-token", peer);
					const forbidden = { group: "auth", code: "forbidden" };
					const none = client.secureRoom.getOrCreate(key).connect();
					await expectRefused(peer, none, () => none.whoami(), forbidden);
					const wrong = client.secureRoom.getOrCreate(key, { params: { authToken: "guessed" } }).connect();
					await expectRefused(peer, wrong, () => wrong.whoami(), forbidden);
					const peerActor = client.protectedActor.getOrCreate(key, { params: { token: "wrong" } }).connect();
					await expectRefused(peer, peerActor, () => peerActor.whoami(), { code: "forbidden" });
				});
			});

			test("stateless calls without a valid token are refused with auth.forbidden", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("no-token-http", peer);
					await rejectsWith(client.secureRoom.getOrCreate(key).whoami(), { group: "auth", code: "forbidden" });
					await rejectsWith(client.secureRoom.getOrCreate(key, { params: { authToken: "nope" } }).whoami(), {
						group: "auth",
						code: "forbidden",
					});
					await rejectsWith(client.protectedActor.getOrCreate(key, { params: { token: "nope" } }).whoami(), { code: "forbidden" });
				});
			});

			test("a before-connect hook can refuse with its own code and metadata", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.testActor.getOrCreate(keyFor("refused", peer), { params: { refuse: "room_closed" } });
					const expected = {
						group: "user",
						code: "room_closed",
						message: "connection refused as requested",
						metadata: { refused: true },
					};
					const conn = handle.connect();
					await expectRefused(peer, conn, () => conn.getInput(), expected);
					await rejectsWith(handle.getInput(), expected);
				});
			});

			test("roles decide what a member may do", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("roles", peer);
					const user = client.secureRoom.getOrCreate(key, { params: { authToken: "user-token" } }).connect();
					const admin = client.secureRoom.getOrCreate(key, { params: { authToken: "admin-token" } }).connect();
					assert.deepEqual(await within(admin.whoami(), "whoami"), { user: "ada", role: "admin", calls: 1 });
					assert.equal(await within(admin.adminOnly(), "adminOnly"), 1);
					// A first successful action, so the refused one does not carry action id 0
					// (2.0.33's id-0 quirk is covered in errors.test.mjs).
					assert.equal((await within(user.whoami(), "whoami")).role, "user");
					await rejectsWith(user.adminOnly(), { group: "auth", code: "forbidden" });
					assert.equal(user.connStatus, "connected", "an action error leaves the connection open");
					await rejectsWith(client.secureRoom.getOrCreate(key, { params: { authToken: "user-token" } }).adminOnly(), {
						group: "auth",
						code: "forbidden",
					});
					assert.equal(await client.secureRoom.getOrCreate(key, { params: { authToken: "admin-token" } }).adminOnly(), 2);
					await Promise.all([user.dispose(), admin.dispose()]);
				});
			});

			test("an event the actor refuses (canSubscribe): forbidden, closed; allowed events still arrive", async () => {
				await withClient(server, peer, async (client) => {
					const key = keyFor("can-subscribe", peer);
					const admin = client.secureRoom.getOrCreate(key, { params: { authToken: "admin-token" } }).connect();
					const reader = client.secureRoom.getOrCreate(key, { params: { authToken: "user-token" } }).connect();
					const adminNews = nextEvent(admin, "adminNews");
					const news = nextEvent(reader, "news");
					// Subscriptions are sent once the connection is open: wait for it, then for the
					// action after them, so both are in place before the broadcast.
					await within(admin.whoami(), "admin whoami");
					await within(reader.whoami(), "reader whoami");
					await within(admin.announce("hello"), "announce");
					assert.deepEqual(await adminNews, ["hello"]);
					assert.deepEqual(await news, ["hello"]);

					const nosy = client.secureRoom.getOrCreate(key, { params: { authToken: "user-token" } }).connect();
					const refused = nextCallback((cb) => nosy.onError(cb), "onError");
					const leaked = [];
					nosy.on("adminNews", (text) => leaked.push(text));
					const [error] = await refused;
					assert.equal(error.group, "auth");
					assert.equal(error.code, "forbidden");
					await within(admin.announce("again"), "announce again");
					assert.deepEqual(leaked, [], "a refused event arrived");
					await Promise.all([admin.dispose(), reader.dispose(), nosy.dispose()]);
				});
			});

			test("protectedActor lets in the right token and counts visits", async () => {
				await withClient(server, peer, async (client) => {
					const handle = client.protectedActor.getOrCreate(keyFor("protected", peer), { params: { token: "secret", user: "zed" } });
					assert.deepEqual(await handle.whoami(), { user: "zed", hits: 1 });
					const conn = handle.connect();
					assert.deepEqual(await within(conn.whoami(), "whoami"), { user: "zed", hits: 2 });
					await conn.dispose();
				});
			});
		});
	}
});
