// Unpacks the official rivetkit 2.3.19 package into .rivetkit/ without installing its
// dependencies.
//
// Why not a normal dependency: rivetkit 2.3.19 depends on its whole server side (the Rivet
// Engine binary, a native core, WebAssembly, an agent runtime: ~230 packages, >100 MB). Its
// client, `dist/browser/client.js`, imports only @opentelemetry/api, @rivetkit/bare-ts, cbor-x,
// invariant, p-retry, pino, vbare and zod (plus `ws` on Node 20, which has no global
// WebSocket); those are pinned in package.json and installed by `npm ci`. npm cannot install a
// package without its dependencies, so this script asks npm for the tarball (`npm pack`),
// checks it against the integrity pinned in package.json ("footlights.rivetkit2319"), and
// unpacks it. The client's bare imports then resolve from ./node_modules.
//
// Idempotent: does nothing when the pinned tarball is already unpacked.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { spec, integrity } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).footlights.rivetkit2319;
const version = spec.split("@").pop();
const dest = join(root, ".rivetkit", `rivetkit-${version}`);
const stamp = join(dest, ".integrity");

if (existsSync(stamp) && readFileSync(stamp, "utf8") === integrity) {
	console.log(`fetch-rivetkit: ${spec} already unpacked in .rivetkit/`);
	process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), "footlights-rivetkit-"));
try {
	const out = execFileSync("npm", ["pack", spec, "--json", "--pack-destination", work], {
		cwd: work,
		encoding: "utf8",
		stdio: ["ignore", "pipe", "inherit"],
	});
	const [{ filename }] = JSON.parse(out);
	const tarball = join(work, filename);
	const [algorithm, expected] = integrity.split(/-(.*)/s);
	const actual = createHash(algorithm).update(readFileSync(tarball)).digest("base64");
	if (actual !== expected) {
		throw new Error(`${spec}: integrity mismatch (expected ${integrity}, got ${algorithm}-${actual})`);
	}
	execFileSync("tar", ["-xzf", tarball, "-C", work], { stdio: "inherit" });
	rmSync(dest, { recursive: true, force: true });
	mkdirSync(dirname(dest), { recursive: true });
	renameSync(join(work, "package"), dest);
	writeFileSync(stamp, integrity);
	console.log(`fetch-rivetkit: unpacked ${spec} into .rivetkit/ (${integrity.slice(0, 20)}…)`);
} finally {
	rmSync(work, { recursive: true, force: true });
}
