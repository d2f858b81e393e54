// Known server-side bugs that some scenarios run into, with where they live. A test hit by one
// is marked `todo` for exactly the affected (client version, encoding, transport) cases: it
// still runs and asserts the correct behaviour, and the summary line counts it as todo, so it
// is never skipped silently. Remove an entry once the bug is fixed (the spec reporter shows a
// passing todo test with "# TODO", which is the cue).

// None at the moment. Add entries as `name: (peer, transport) => boolean`.
const BUGS = {};

/** The reason to mark a test `todo` if bug `name` affects this case, else `false`. */
export function knownBug(name, peer, transport) {
	return BUGS[name]?.(peer, transport) ? `known server bug \`${name}\` (lib/known-bugs.mjs)` : false;
}
