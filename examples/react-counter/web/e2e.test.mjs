// End-to-end test of the React page: `footlights serve` (the demo actors) on one port, the built
// page on another (a different origin, as a dev server would be), and two Chromium pages on one
// counter. A click on one page increments it through `useActor`'s connection; both pages see the
// `newCount` event; an increment from outside the browser (a plain HTTP action) reaches both too.
// Writes a screenshot to target/react-counter.png.
//
// Needs: the page built (`npm run build`), the binary built (`cargo build -p footlights-cli`;
// set FOOTLIGHTS_BIN to use another path than target/debug/footlights) and Chromium at
// /usr/bin/chromium (or CHROMIUM). Run with `npm test`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const workspace = fileURLToPath(new URL("../../../", import.meta.url));
const binary = resolve(workspace, process.env.FOOTLIGHTS_BIN ?? "target/debug/footlights");
const webDir = fileURLToPath(new URL("./dist/", import.meta.url));
const screenshot = join(workspace, "target/react-counter.png");
const STEP = 15_000; // every wait is bounded

let server; // the footlights process
let endpoint; // where it listens
let pages; // the static file server for dist/
let pageUrl; // where that listens
let browser;
let dataDir;

/** Starts `footlights serve` on a free port and reads the address it prints. */
async function startFootlights() {
  dataDir = await mkdtemp(join(tmpdir(), "react-counter-e2e-"));
  const env = { ...process.env, RUST_LOG: "warn" };
  delete env.RUST_BACKTRACE; // capturing backtraces makes error paths slow
  server = spawn(binary, ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  server.stdout.setEncoding("utf8");
  let seen = "";
  return new Promise((resolve, reject) => {
    server.stdout.on("data", (chunk) => {
      seen += chunk;
      const found = seen.match(/listening on (http:\/\/\S+)/);
      if (found) resolve(found[1]);
    });
    server.once("exit", (code) => reject(new Error(`footlights exited early (${code})`)));
    server.once("error", reject);
    // unref: a pending timer must not keep the test process alive once the address is in.
    setTimeout(() => reject(new Error(`no address from footlights: ${seen}`)), STEP).unref();
  });
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };

/** Serves the files of dist/ (one level, plain names) on a free port of 127.0.0.1. */
async function startPages() {
  pages = createServer(async (req, res) => {
    const name = new URL(req.url, "http://x").pathname.slice(1) || "index.html";
    const type = TYPES[extname(name)];
    if (!/^[\w.-]+$/.test(name) || name.startsWith(".") || !type) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(webDir, name));
      res.writeHead(200, { "content-type": type }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  pages.listen(0, "127.0.0.1");
  await once(pages, "listening");
  return `http://127.0.0.1:${pages.address().port}`;
}

before(async () => {
  endpoint = await startFootlights();
  pageUrl = await startPages();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: STEP,
  });
});

after(async () => {
  await browser?.close();
  pages?.close();
  if (server && server.exitCode === null) {
    const exited = once(server, "exit");
    server.kill("SIGTERM"); // graceful: closes connections, saves actors
    const [code] = await exited;
    assert.equal(code, 0, "the server stops cleanly on SIGTERM");
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Opens the page on counter `key` in a fresh browser context; waits until it shows a count. */
async function open(key) {
  const context = await browser.newContext({ viewport: { width: 480, height: 360 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  await page.goto(`${pageUrl}/index.html?endpoint=${encodeURIComponent(endpoint)}&key=${key}`);
  await page.waitForSelector('body[data-status="connected"]');
  await page.waitForFunction(() => /^\d+$/.test(document.querySelector("#count").textContent));
  return { page, problems };
}

/** Waits until the page shows `count`. */
const shows = (page, count) =>
  page.waitForFunction((want) => document.querySelector("#count").textContent === want, String(count));

test("useActor, an event and an action against footlights serve", { timeout: 90_000 }, async () => {
  const key = "react-e2e"; // each run has a fresh data directory
  const ann = await open(key);
  const bob = await open(key);
  await shows(ann.page, 0);
  await shows(bob.page, 0);

  // A click calls `increment` over Ann's connection; Bob sees the `newCount` event.
  await ann.page.click("#increment");
  await shows(ann.page, 1);
  await shows(bob.page, 1);
  await bob.page.click("#increment");
  await bob.page.click("#increment");
  await shows(ann.page, 3);
  await shows(bob.page, 3);

  // An increment from outside the browser reaches both pages as an event too.
  const query = new URLSearchParams({
    "rvt-namespace": "default",
    "rvt-method": "getOrCreate",
    "rvt-runner": "default",
    "rvt-key": key,
    "rvt-crash-policy": "sleep",
  });
  const response = await fetch(`${endpoint}/gateway/counter/action/increment?${query}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-rivet-encoding": "json" },
    body: JSON.stringify({ args: [10] }),
    signal: AbortSignal.timeout(STEP),
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { output: 13 });
  await shows(ann.page, 13);
  await shows(bob.page, 13);

  // A page opened later reads the saved count.
  const cat = await open(key);
  await shows(cat.page, 13);

  await mkdir(join(workspace, "target"), { recursive: true });
  await ann.page.screenshot({ path: screenshot });
  for (const { problems } of [ann, bob, cat]) assert.deepEqual(problems, []);
  for (const { page } of [ann, bob, cat]) await page.context().close();
});
