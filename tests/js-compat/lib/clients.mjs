// The two official rivetkit clients under test, and the encodings each is run with.
//
// 2.3.19 is the browser bundle of the npm package, unpacked by scripts/fetch-rivetkit.mjs
// (npm test runs it first); it needs only the small dependencies in package.json, and `ws`
// because Node 20 has no global WebSocket. 2.0.33 is installed by npm under the alias
// `rivetkit2033`.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

// Both clients log through pino; expected failures (refused connections, thrown errors) would
// fill the output with warnings. `LOG_LEVEL=debug npm test` shows them again.
process.env.RIVET_LOG_LEVEL ??= process.env.LOG_LEVEL ?? "silent";
process.env.LOG_LEVEL ??= "silent";

const BUNDLE_2319 = new URL("../.rivetkit/rivetkit-2.3.19/dist/browser/client.js", import.meta.url);
if (!existsSync(fileURLToPath(BUNDLE_2319))) {
	throw new Error("rivetkit 2.3.19 is not unpacked: run `npm test` or `node scripts/fetch-rivetkit.mjs` first");
}
const v2319 = await import(BUNDLE_2319.href);
const v2033 = await import("rivetkit2033/client");

export const ENCODINGS = ["json", "cbor", "bare"];

/** `createClient` of each version, newest first. */
export const CLIENTS = [
	{ version: "2.3.19", createClient: v2319.createClient },
	{ version: "2.0.33", createClient: v2033.createClient },
];

/** Every (client version, encoding) pair, each with a label for test names. */
export const MATRIX = CLIENTS.flatMap((c) => ENCODINGS.map((encoding) => ({ ...c, encoding, label: `rivetkit ${c.version} ${encoding}` })));
