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

/** The job worker example's server (`examples/job-worker`), from JOB_WORKER_BIN. */
export const JOB_WORKER_BIN = resolve(REPO, process.env.JOB_WORKER_BIN ?? "target/debug/job-worker");

/** The demo server's command line: `footlights serve` with the test actors. */
function serveArgs({ port, dataDir, args }) {
	return ["serve", "--host", "127.0.0.1", "--port", String(port), "--data-dir", dataDir, "--with-test-actors", ...args];
}

/** The job worker example's command line: its own binary, a SQLite file in the data directory. */
export function jobWorkerCommand() {
	return {
		bin: JOB_WORKER_BIN,
		argsFor: ({ port, dataDir }) => ["--addr", `127.0.0.1:${port}`, "--db", join(dataDir, "job-worker.db")],
	};
}

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

	constructor({ dataDir, port, args = [], bin = BIN, argsFor = serveArgs }) {
		this.dataDir = dataDir;
		this.port = port;
		this.args = args;
		this.bin = bin;
		this.argsFor = argsFor;
		this.url = null;
		/** Resolves once the server serves (for a successor: once it has taken over). */
		this.ready = null;
	}

	/**
	 * Starts a server on a fresh data directory. `port: 0` (the default) lets the system pick;
	 * the real port is then kept, so `restart()` comes back on the same one. Another server
	 * binary that prints the same ready line: `bin` and `argsFor({ port, dataDir, args })`
	 * (see `jobWorkerCommand`).
	 */
	static async start({ dataDir = freshDataDir(), port = 0, args = [], bin, argsFor } = {}) {
		const server = new Footlights({ dataDir, port, args, bin, argsFor });
		await server.#spawn();
		return server;
	}

	/**
	 * Starts a successor of the running `server`: the same binary on the same port and data
	 * directory. Resolves once it listens beside `server` (its `taking over …` line); its
	 * `ready` resolves once it serves, which is after `server` has stopped.
	 */
	static async takeOver(server) {
		const successor = new Footlights({ dataDir: server.dataDir, port: server.port, args: server.args, bin: server.bin, argsFor: server.argsFor });
		await successor.#spawn({ handover: true });
		return successor;
	}

	async #spawn({ handover = false } = {}) {
		const env = { ...process.env, RUST_LOG: process.env.FOOTLIGHTS_LOG ?? "warn" };
		delete env.FOOTLIGHTS_TOKEN;
		// Backtrace capture slows every error path of a Rust server; users do not set it.
		delete env.RUST_BACKTRACE;
		delete env.RUST_LIB_BACKTRACE;
		const args = this.argsFor({ port: this.port, dataDir: this.dataDir, args: this.args });
		const child = spawn(this.bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
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
		const exitedEarly = (what) =>
			this.#exited.then(({ code, signal }) => {
				throw new Error(`footlights exited before ${what} (code ${code}, signal ${signal})\n${this.#stderr}`);
			});
		// Lines in the order the binary prints them: a successor first says it takes over.
		const expected = handover ? [/^taking over (http:\/\/127\.0\.0\.1:(\d+)) once the server serving it stops$/] : [];
		expected.push(/^listening on (http:\/\/127\.0\.0\.1:(\d+))$/);
		const waits = expected.map(() => {
			const wait = {};
			wait.promise = new Promise((resolve, reject) => Object.assign(wait, { resolve, reject }));
			wait.promise.catch(() => {});
			return wait;
		});
		let seen = 0;
		lines.on("line", (line) => {
			if (seen >= expected.length) return;
			const match = expected[seen].exec(line);
			if (match) waits[seen].resolve(match);
			else waits[seen].reject(new Error(`unexpected line from footlights: ${JSON.stringify(line)}`));
			seen += 1;
		});
		const step = (i, what) => Promise.race([waits[i].promise, exitedEarly(what)]);
		const listening = step(expected.length - 1, "it was ready").then(([, url, port]) => {
			this.url = url;
			this.port = Number(port);
		});
		listening.catch(() => {});
		try {
			if (handover) {
				await withTimeout(step(0, "it listened"), START_LIMIT_MS, `starting a successor ${this.bin}`);
				this.ready = withTimeout(listening, START_LIMIT_MS, "the successor taking over");
				this.ready.catch(() => child.kill("SIGKILL"));
			} else {
				await withTimeout(listening, START_LIMIT_MS, `starting ${this.bin}`);
				this.ready = Promise.resolve();
			}
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

	/** Kills the process (SIGKILL: nothing is saved or closed) and waits for it to exit. */
	async kill() {
		if (!this.#child) return;
		const child = this.#child;
		this.#child = null;
		child.kill("SIGKILL");
		await withTimeout(this.#exited, STOP_LIMIT_MS, "footlights exiting after SIGKILL");
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
