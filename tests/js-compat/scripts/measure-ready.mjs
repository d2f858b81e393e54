// Measures how long `footlights serve` takes to print its ready line on an empty data
// directory: spawn → `listening on …` read from its stdout, over N runs (default 30), each on a
// fresh temporary directory, each stopped with SIGTERM before the next.
//
//   FOOTLIGHTS_BIN=target/release/footlights node scripts/measure-ready.mjs [runs]
//
// Not part of `npm test`: timings belong in measurements, not in assertions.
import { performance } from "node:perf_hooks";
import { BIN, Footlights } from "../lib/server.mjs";

const runs = Number(process.argv[2] ?? 30);
const times = [];
for (let i = 0; i < runs; i++) {
	const started = performance.now();
	const server = await Footlights.start();
	times.push(performance.now() - started);
	await server.cleanup();
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1);
console.log(`${BIN}: ready in min ${at(0)} ms, median ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${at(1)} ms over ${runs} runs`);
