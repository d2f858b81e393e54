// Starts and stops the footlights binary for the tests.
//
// The binary comes from FOOTLIGHTS_BIN (default: target/debug/footlights at the repository
// root). Each server gets a fresh temporary data directory unless one is given, listens on
// 127.0.0.1 only, and serves the test actors too. Readiness is the `listening on http://…`
// line the binary prints; nothing here sleeps.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** How long the binary may take to print its ready line, or to exit after SIGTERM. */
const START_LIMIT_MS = 15_000;
const STOP_LIMIT_MS = 15_000;

export const BIN = resolve(REPO, process.env.FOOTLIGHTS_BIN ?? "target/debug/footlights");

/**
 * Running servers. If this process ends before a test cleaned up (a failure, a timeout, Ctrl-C),
 * they are killed rather than left running.
 */
const live = new Set();
process.once("exit", () => {
	for (const child of live) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) {
	process.once(signal, () => {
		for (const child of live) child.kill("SIGKILL");
		process.kill(process.pid, signal);
	});
}

/** A temporary data directory, removed by `server.cleanup()`. */
function freshDataDir() {
	return mkdtempSync(join(tmpdir(), "footlights-js-compat-"));
}

function withTimeout(promise, ms, what) {
	let timer;
	const limit = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
	});
	return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** One running (or stopped) footlights process. */
export class Footlights {
	#child = null;
	#stderr = "";
	#exited = null;

	constructor({ dataDir, port, args = [] }) {
		this.dataDir = dataDir;
		this.port = port;
		this.args = args;
		this.url = null;
	}

	/**
	 * Starts a server on a fresh data directory. `port: 0` (the default) lets the system pick;
	 * the real port is then kept, so `restart()` comes back on the same one.
	 */
	static async start({ dataDir = freshDataDir(), port = 0, args = [] } = {}) {
		const server = new Footlights({ dataDir, port, args });
		await server.#spawn();
		return server;
	}

	async #spawn() {
		const env = { ...process.env, RUST_LOG: process.env.FOOTLIGHTS_LOG ?? "warn" };
		delete env.FOOTLIGHTS_TOKEN;
		// Backtrace capture slows every error path of a Rust server; users do not set it.
		delete env.RUST_BACKTRACE;
		delete env.RUST_LIB_BACKTRACE;
		const args = ["serve", "--host", "127.0.0.1", "--port", String(this.port), "--data-dir", this.dataDir, "--with-test-actors", ...this.args];
		const child = spawn(BIN, args, { env, stdio: ["ignore", "pipe", "pipe"] });
		this.#child = child;
		this.#stderr = "";
		child.stderr.setEncoding("utf8");
		child.stderr.on("data", (chunk) => {
			if (process.env.FOOTLIGHTS_LOG) process.stderr.write(chunk);
			this.#stderr = (this.#stderr + chunk).slice(-20_000);
		});
		live.add(child);
		this.#exited = new Promise((resolveExit, rejectExit) => {
			child.once("error", rejectExit);
			child.once("exit", (code, signal) => {
				live.delete(child);
				resolveExit({ code, signal });
			});
		});
		const lines = createInterface({ input: child.stdout });
		const ready = new Promise((resolveReady, rejectReady) => {
			lines.once("line", (line) => {
				const match = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
				if (match) resolveReady(match);
				else rejectReady(new Error(`unexpected first line from footlights: ${JSON.stringify(line)}`));
			});
			this.#exited.then(
				({ code, signal }) => rejectReady(new Error(`footlights exited before it was ready (code ${code}, signal ${signal})\n${this.#stderr}`)),
				rejectReady,
			);
		});
		try {
			const [, url, port] = await withTimeout(ready, START_LIMIT_MS, `starting ${BIN}`);
			this.url = url;
			this.port = Number(port);
		} catch (error) {
			child.kill("SIGKILL");
			throw error;
		}
	}

	/** Sends SIGTERM and waits for the process to exit; it must exit with status 0. */
	async stop() {
		if (!this.#child) return;
		const child = this.#child;
		this.#child = null;
		child.kill("SIGTERM");
		let exit;
		try {
			exit = await withTimeout(this.#exited, STOP_LIMIT_MS, "footlights stopping after SIGTERM");
		} catch (error) {
			child.kill("SIGKILL");
			throw error;
		}
		if (exit.code !== 0) {
			throw new Error(`footlights exited with code ${exit.code} (signal ${exit.signal}) after SIGTERM\n${this.#stderr}`);
		}
	}

	/** Starts a stopped server again, on the same data directory and port. */
	async startAgain() {
		if (this.#child) throw new Error("footlights is still running");
		await this.#spawn();
	}

	/** Stops the server and starts it again on the same data directory and port. */
	async restart() {
		await this.stop();
		await this.startAgain();
	}

	/** Stops the server (if running) and removes its data directory. */
	async cleanup() {
		try {
			await this.stop();
		} finally {
			rmSync(this.dataDir, { recursive: true, force: true });
		}
	}
}
