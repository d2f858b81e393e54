// Small helpers shared by the test files. None of them sleeps: they wait on the client's own
// callbacks and promises, each bounded by a deadline.
import assert from "node:assert/strict";

/** The default bound on one wait for an event, a status or a promise. */
export const WAIT_MS = 10_000;

/** Rejects if `promise` does not settle within `ms`. */
export function within(promise, what, ms = WAIT_MS) {
	let timer;
	const limit = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
	});
	return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** A key unique to one test and one (version, encoding) pair, so tests never share actors. */
export function keyFor(name, { version, encoding }) {
	return [`${name}-${version}-${encoding}`.replace(/[^A-Za-z0-9-]/g, "-")];
}

/** Runs `fn` with a fresh client for `server`, disposing it afterwards. */
export async function withClient(server, { createClient, encoding }, fn) {
	const client = createClient({ endpoint: server.url, encoding });
	try {
		return await fn(client);
	} finally {
		await within(client.dispose(), "client.dispose()");
	}
}

/** The next occurrence of `event` on `conn`, as its argument list. */
export function nextEvent(conn, event, what = `event ${event}`) {
	return within(new Promise((resolve) => conn.once(event, (...args) => resolve(args))), what);
}

/** Resolves the next time `register(callback)` calls back (e.g. `conn.onOpen`). */
export function nextCallback(register, what) {
	return within(
		new Promise((resolve) => {
			const off = register((...args) => {
				off();
				resolve(args);
			});
		}),
		what,
	);
}

/** Resolves once the connection reports `status` (at once if it already does). */
export function untilStatus(conn, status) {
	if (conn.connStatus === status) return Promise.resolve();
	return within(
		new Promise((resolve) => {
			const off = conn.onStatusChange((now) => {
				if (now === status) {
					off();
					resolve();
				}
			});
		}),
		`connection status ${status}`,
	);
}

/**
 * Asserts that `promise` rejects with a RivetKit error carrying these fields (`group`,
 * `code`, `message`, `metadata`; only those given are compared). Returns the error.
 */
export async function rejectsWith(promise, expected, what = "the call") {
	let error;
	await assert.rejects(within(promise, what), (e) => {
		error = e;
		return true;
	});
	for (const [field, value] of Object.entries(expected)) {
		assert.deepStrictEqual(error[field], value, `${what}: error.${field} (error: ${error?.stack ?? error})`);
	}
	return error;
}
