// A node:test reporter that prints one closing line: how many tests passed, failed, were
// skipped or marked todo, and how long the run took. Used beside the `spec` reporter.
export default async function* summary(source) {
	const counts = { passed: 0, failed: 0, skipped: 0, todo: 0 };
	for await (const event of source) {
		// Suites (describe blocks) report too; count only the tests themselves.
		if (event.type !== "test:pass" && event.type !== "test:fail") continue;
		const { details, skip, todo } = event.data;
		if (details?.type === "suite") continue;
		if (skip !== undefined) counts.skipped += 1;
		else if (todo !== undefined) counts.todo += 1;
		else if (event.type === "test:pass") counts.passed += 1;
		else counts.failed += 1;
	}
	const seconds = process.uptime().toFixed(1);
	const verdict = counts.failed === 0 ? "PASS" : "FAIL";
	yield `js-compat ${verdict}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped, ${counts.todo} todo in ${seconds} s\n`;
}
