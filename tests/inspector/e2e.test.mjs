// End-to-end test of the inspector page: `footlights serve` (the demo actors, with a token) on a
// free port, a counter made through the HTTP API, then Chromium on /inspector: the token typed
// in, the actor found by its key prefix, its state read, an action called from the page's form,
// the state edited with the confirmation, and the edit seen by a plain HTTP action call; the
// live log shows the calls as they happen.
// Writes screenshots to target/inspector/*.png.
//
// Needs: the binary built (`cargo build -p footlights-cli`; set FOOTLIGHTS_BIN to use another
// path than target/debug/footlights) and Chromium at /usr/bin/chromium (or CHROMIUM). Run with
// `npm test`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const workspace = fileURLToPath(new URL("../../", import.meta.url));
const binary = resolve(workspace, process.env.FOOTLIGHTS_BIN ?? "target/debug/footlights");
const shots = join(workspace, "target/inspector");
const STEP = 15_000; // every wait is bounded
const TOKEN = "inspector-e2e-token";

let server; // the footlights process
let endpoint; // where it listens
let browser;
let dataDir;

/** Starts `footlights serve` on a free port and reads the address it prints. */
async function startFootlights() {
  dataDir = await mkdtemp(join(tmpdir(), "inspector-e2e-"));
  const env = { ...process.env, RUST_LOG: "warn" };
  delete env.RUST_BACKTRACE; // capturing backtraces makes error paths slow
  delete env.FOOTLIGHTS_TOKEN;
  const args = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, "--token", TOKEN];
  server = spawn(binary, args, { env, stdio: ["ignore", "pipe", "inherit"] });
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
    setTimeout(() => reject(new Error(`no address from footlights: ${seen}`)), STEP).unref();
  });
}

/** A JSON request to the server, bounded; returns the status and the parsed body. */
async function request(method, path, body, headers = {}) {
  const response = await fetch(endpoint + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(STEP),
  });
  return { status: response.status, body: await response.json() };
}

/** Calls a counter action statelessly through the query gateway, as any client would. */
function counterAction(key, action, args) {
  return actorAction("counter", key, action, args);
}

/** Calls an action of actor type `name` statelessly through the query gateway. */
function actorAction(name, key, action, args) {
  const query = new URLSearchParams({
    "rvt-namespace": "default",
    "rvt-method": "getOrCreate",
    "rvt-runner": "default",
    "rvt-key": key,
    "rvt-crash-policy": "sleep",
  });
  return request("POST", `/gateway/${name}/action/${action}?${query}`, { args }, {
    "x-rivet-encoding": "json",
  });
}

before(async () => {
  endpoint = await startFootlights();
  await mkdir(shots, { recursive: true });
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
  if (server && server.exitCode === null) {
    const exited = once(server, "exit");
    server.kill("SIGTERM"); // graceful: closes connections, saves actors
    const [code] = await exited;
    assert.equal(code, 0, "the server stops cleanly on SIGTERM");
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The state the page shows, parsed. */
async function shownState(page) {
  return JSON.parse(await page.textContent("#state"));
}

/** Waits until the page shows a state whose count is `count`. */
const showsCount = (page, count) =>
  page.waitForFunction((want) => {
    try {
      return JSON.parse(document.querySelector("#state").textContent).count === want;
    } catch {
      return false;
    }
  }, count);

test("find an actor, read, call, edit with confirmation", { timeout: 90_000 }, async () => {
  // Two counters; the one we look for is made with a known count.
  assert.deepEqual(await counterAction("lobby", "increment", [1]), { status: 200, body: { output: 1 } });
  assert.deepEqual(await counterAction("stage", "increment", [5]), { status: 200, body: { output: 5 } });

  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));

  // Without the token the page loads but the API refuses it: the page says so.
  await page.goto(`${endpoint}/inspector`);
  assert.equal(new URL(page.url()).pathname, "/inspector/");
  await page.waitForSelector("#error:not([hidden])");
  assert.match(await page.textContent("#error"), /auth\.unauthorized/);

  // The token typed in: the actor types and the counters show.
  await page.fill("#token", TOKEN);
  await page.click("#token-form button");
  await page.waitForSelector("#error[hidden]", { state: "attached" });
  await page.selectOption("#type", "counter");
  await page.waitForSelector('#actors button:has-text("lobby")');
  await page.waitForSelector('#actors button:has-text("stage")');

  // Search by key prefix: only the stage counter is left; open it.
  await page.fill("#prefix", "stage");
  await page.click("#search button");
  await page.waitForFunction(() => document.querySelectorAll("#actors button").length === 1);
  await page.click('#actors button:has-text("stage")');
  await showsCount(page, 5);
  assert.equal(await page.textContent("#title"), "counter stage");
  assert.equal(await page.textContent("#awake"), "awake");
  // Opening an actor watches its live log.
  await page.waitForFunction(() => document.querySelector("#log-status").textContent === "watching");

  // Call an action from the form; the output and the new state show.
  await page.fill("#action", "increment");
  await page.fill("#args", "[10]");
  await page.click("#call button");
  await page.waitForFunction(() => document.querySelector("#output").textContent.trim() === "15");
  await showsCount(page, 15);
  // The call shows in the live log, with its outcome.
  await page.waitForSelector('#log tr:has-text("increment"):has-text("ok")');
  // So does a call from elsewhere (a plain HTTP client), as it happens.
  assert.deepEqual(await counterAction("stage", "getCount", []), { status: 200, body: { output: 15 } });
  await page.waitForSelector('#log tr:has-text("getCount"):has-text("stateless")');
  await page.screenshot({ path: join(shots, "actor.png"), fullPage: true });

  // Edit the state: nothing changes until the confirmation.
  await page.click("#edit");
  await page.fill("#state-text", JSON.stringify({ count: 100 }));
  await page.click("#save");
  await page.waitForSelector("#confirm:not([hidden])");
  await page.screenshot({ path: join(shots, "edit-confirm.png"), fullPage: true });
  assert.deepEqual(await counterAction("stage", "getCount", []), {
    status: 200,
    body: { output: 15 },
  });
  await page.click("#confirm-save");
  await showsCount(page, 100);
  assert.deepEqual(await shownState(page), { count: 100 });

  // The edit went through the actor: a normal action call sees it and builds on it.
  assert.deepEqual(await counterAction("stage", "increment", [1]), {
    status: 200,
    body: { output: 101 },
  });
  await page.click("#refresh");
  await showsCount(page, 101);
  // The other counter is untouched.
  assert.deepEqual(await counterAction("lobby", "getCount", []), { status: 200, body: { output: 1 } });

  assert.deepEqual(problems, [], "no script errors on the page");
  await context.close();
});

test("browse an actor's SQL database", { timeout: 60_000 }, async () => {
  // The demo's notes actor keeps its notes in its own SQL database (ctx.db()).
  assert.equal((await actorAction("notes", "journal", "addNote", ["first light"])).status, 200);
  assert.equal((await actorAction("notes", "journal", "addNote", ["second act"])).status, 200);
  assert.deepEqual(await actorAction("notes", "journal", "count", []), { status: 200, body: { output: 2 } });

  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${endpoint}/inspector/?token=${encodeURIComponent(TOKEN)}`);
  await page.selectOption("#type", "notes");
  await page.click('#actors button:has-text("journal")');
  await page.waitForFunction(() => document.querySelector("#title").textContent === "notes journal");

  // Its tables with their row counts; the notes table opens a page of rows.
  await page.waitForSelector('#db-tables tr:has(button[data-table="notes"]):has-text("2")');
  assert.equal(await page.isHidden("#db-none"), true);
  await page.click('#db-tables button[data-table="notes"]');
  await page.waitForSelector('#db-rows tr:has-text("second act")');
  const columns = await page.$$eval("#db-head th", (ths) => ths.map((th) => th.textContent));
  assert.deepEqual(columns, ["id", "text", "created_at"]);
  const texts = await page.$$eval("#db-rows tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(texts, ["first light", "second act"]);
  await page.screenshot({ path: join(shots, "database.png"), fullPage: true });

  // An actor without a database says so.
  assert.equal((await counterAction("plain", "increment", [1])).status, 200);
  await page.selectOption("#type", "counter");
  await page.click('#actors button:has-text("plain")');
  await page.waitForFunction(() => document.querySelector("#title").textContent === "counter plain");
  await page.waitForSelector("#db-none:not([hidden])");

  assert.deepEqual(problems, [], "no script errors on the page");
  await context.close();
});
