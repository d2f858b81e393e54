// End-to-end test of the browser demo: the built chat-room binary serves the page and the
// actors; two Chromium pages join one room; one sends, the other sees the message and the
// member list. A room with more messages than one page opens on the latest and loads the older
// ones as the list is scrolled to its top. Writes a screenshot to target/chat-demo.png.
//
// Needs: the page built (`npm run build`), the binary built (`cargo build -p chat-room`; set
// CHAT_ROOM_BIN to use another path than target/debug/chat-room) and Chromium at
// /usr/bin/chromium (or CHROMIUM). Run with `npm test`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const workspace = fileURLToPath(new URL("../../../", import.meta.url));
const binary = process.env.CHAT_ROOM_BIN ?? join(workspace, "target/debug/chat-room");
const webDir = fileURLToPath(new URL("./dist/", import.meta.url));
const screenshot = join(workspace, "target/chat-demo.png");
const STEP = 15_000; // every wait is bounded

let server; // the chat-room process
let url; // where it listens
let browser;
let dataDir;

/** Starts the binary on a free port and reads the address it prints. */
async function startServer() {
  dataDir = await mkdtemp(join(tmpdir(), "chat-e2e-"));
  const env = { ...process.env, RUST_LOG: "warn" };
  delete env.RUST_BACKTRACE; // capturing backtraces makes error paths slow
  server = spawn(
    binary,
    ["--addr", "127.0.0.1:0", "--db", join(dataDir, "chat.db"), "--web-dir", webDir],
    { env, stdio: ["ignore", "pipe", "inherit"] },
  );
  server.stdout.setEncoding("utf8");
  let seen = "";
  const address = new Promise((resolve, reject) => {
    server.stdout.on("data", (chunk) => {
      seen += chunk;
      const found = seen.match(/listening on (http:\/\/\S+)/);
      if (found) resolve(found[1]);
    });
    server.once("exit", (code) => reject(new Error(`chat-room exited early (${code})`)));
    server.once("error", reject);
    // unref: a pending timer must not keep the test process alive once the address is in.
    setTimeout(() => reject(new Error(`no address from chat-room: ${seen}`)), STEP).unref();
  });
  return address;
}

before(async () => {
  url = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
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

/** Opens the page as `name` in a fresh browser context and waits until it is connected. */
async function openAs(name, room) {
  const context = await browser.newContext({ viewport: { width: 900, height: 560 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${url}/?room=${room}&name=${name}`);
  await page.waitForSelector('body[data-status="connected"]');
  return { page, problems };
}

/** The texts of the elements matching `selector`. */
const texts = (page, selector) =>
  page.$$eval(selector, (els) => els.map((e) => e.textContent.trim()));

/** Waits until the member list is exactly `names`. */
async function membersAre(page, names) {
  await page.waitForFunction(
    (want) =>
      JSON.stringify([...document.querySelectorAll("#members li")].map((li) => li.textContent)) ===
      JSON.stringify(want),
    names,
  );
}

test("two browsers chat through the official rivetkit client", { timeout: 90_000 }, async () => {
  const room = "lobby"; // each run has a fresh database
  const ann = await openAs("ann", room);
  await membersAre(ann.page, ["ann"]);

  const bob = await openAs("bob", room);
  await membersAre(bob.page, ["ann", "bob"]);
  await membersAre(ann.page, ["ann", "bob"]);
  await ann.page.waitForSelector("#messages li.system >> text=bob joined");

  // Bob types a message; Ann sees it live.
  await bob.page.fill("#text", "hello from bob");
  await bob.page.press("#text", "Enter");
  await ann.page.waitForSelector("#messages li.message >> text=hello from bob");
  await ann.page.fill("#text", "hi bob, welcome");
  await ann.page.press("#text", "Enter");
  await bob.page.waitForSelector("#messages li.message >> text=hi bob, welcome");
  // Ann's own message reaches her page as a broadcast too, possibly after Bob's.
  await ann.page.waitForSelector("#messages li.message >> text=hi bob, welcome");
  assert.deepEqual(await texts(ann.page, "#messages li.message"), [
    "bobhello from bob",
    "annhi bob, welcome",
  ]);

  // A direct message reaches Bob only (conn.send on the server).
  await ann.page.fill("#text", "/dm bob psst, this one is private");
  await ann.page.press("#text", "Enter");
  await bob.page.waitForSelector("#messages li.direct >> text=psst, this one is private");

  // A late joiner gets the history from durable state.
  const cat = await openAs("cat", room);
  await cat.page.waitForSelector("#messages li.message >> text=hi bob, welcome");
  await membersAre(ann.page, ["ann", "bob", "cat"]);
  await cat.page.context().close();
  await membersAre(ann.page, ["ann", "bob"]);
  await ann.page.waitForSelector("#messages li.system >> text=cat left");

  await mkdir(join(workspace, "target"), { recursive: true });
  await ann.page.screenshot({ path: screenshot });

  for (const { problems } of [ann, bob, cat]) assert.deepEqual(problems, []);
});

test("a kicked member disappears from the other members' lists", { timeout: 90_000 }, async () => {
  const room = "kicks";
  const ann = await openAs("ann", room); // the first to join owns the room
  const bob = await openAs("bob", room);
  const cat = await openAs("cat", room);
  // What rivetkit logs to the console about the close it gets (it warns "failed to parse close
  // reason" about a reason that is not `group.code#…`).
  const closeWarnings = [];
  bob.page.on("console", (m) => {
    if (/close reason/.test(m.text())) closeWarnings.push(m.text());
  });
  for (const { page } of [ann, cat]) await membersAre(page, ["ann", "bob", "cat"]);

  await ann.page.fill("#text", "/kick bob spam");
  await ann.page.press("#text", "Enter");
  for (const { page } of [ann, cat]) {
    await membersAre(page, ["ann", "cat"]);
    await page.waitForSelector("#messages li.system >> text=bob left");
  }
  // Bob's page is told why (the close reason is coded, so rivetkit reports it), and his client's
  // own reconnect is refused: the name is banned.
  await bob.page.waitForSelector("#messages li.error >> text=connection.disconnected#spam");
  await bob.page.waitForSelector("#messages li.error >> text=bob was removed from this room");
  for (const { page } of [ann, cat]) await membersAre(page, ["ann", "cat"]);
  assert.deepEqual(closeWarnings, []);
  for (const { problems } of [ann, bob, cat]) assert.deepEqual(problems, []);
  for (const { page } of [ann, bob, cat]) await page.context().close();
});

/** The message lines `first` to `last` (`m001`, `m002`, ...) from `name`, as the page shows them. */
const sentRange = (name, first, last) =>
  Array.from({ length: last - first + 1 }, (_, i) => `${name}m${String(first + i).padStart(3, "0")}`);

test("the page opens on the latest messages and loads older ones at the top", { timeout: 90_000 }, async () => {
  const room = "archive";
  const total = 180; // the latest 100 on opening, then two older pages (50, then 30)
  const eve = await openAs("eve", room);
  // Filled through the page's own connection: typing 180 messages would only be slower.
  const seqs = await eve.page.evaluate(async (count) => {
    const seqs = [];
    for (let i = 1; i <= count; i++) {
      seqs.push((await window.chat.conn.sendMessage(`m${String(i).padStart(3, "0")}`)).seq);
    }
    return seqs;
  }, total);
  assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1));

  await eve.page.reload();
  await eve.page.waitForSelector('body[data-status="connected"]');
  await eve.page.waitForSelector('#messages[data-history="more"]');
  const list = () => texts(eve.page, "#messages li.message");
  assert.deepEqual(await list(), sentRange("eve", total - 99, total), "the latest page");
  const atBottom = await eve.page.$eval(
    "#messages",
    (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 2,
  );
  assert.ok(atBottom, "it opens on the latest message");

  // Scroll to the top until the room's first message is in; after each page the messages shown
  // are the latest ones, in order, each once.
  let pages = 0;
  while ((await eve.page.$eval("#messages", (el) => el.dataset.history)) !== "complete") {
    assert.ok(++pages <= 4, "a page at a time, not one message at a time");
    const before = (await list()).length;
    await eve.page.$eval("#messages", (el) => {
      el.scrollTop = 0;
    });
    await eve.page.waitForFunction(
      (n) =>
        document.querySelectorAll("#messages li.message").length > n &&
        document.querySelector("#messages").dataset.history !== "loading",
      before,
    );
    const shown = await list();
    assert.deepEqual(shown, sentRange("eve", total - shown.length + 1, total));
    const keptInView = await eve.page.$eval("#messages", (el) => el.scrollTop > 0);
    assert.ok(keptInView, "the view stays on what was read, not on the top");
  }
  assert.equal(pages, 2);
  assert.deepEqual(await list(), sentRange("eve", 1, total));
  assert.deepEqual(await texts(eve.page, "#messages li.start"), [`This is the start of #${room}.`]);
  const first = await eve.page.$eval("#messages", (el) => el.firstElementChild.className);
  assert.equal(first, "start");
  assert.deepEqual(eve.problems, []);
  await eve.page.context().close();
});

// Protocol notes, open question 1: rivetkit 2.3.19 sends the body of a stateless action as a
// stream (`duplex: "half"`), and Chromium sends streamed bodies only over HTTP/2. Against an
// `http://` (HTTP/1.1) server the browser refuses the request itself
// (`net::ERR_ALPN_NEGOTIATION_FAILED`) before anything reaches the server, which is why the page
// uses `.connect()`. This test pins that behaviour down, so a client or browser change shows up.
test("stateless actions from Chromium over HTTP/1.1 fail in the browser", { timeout: 60_000 }, async () => {
  const { page } = await openAs("dora", "stateless");
  const failed = [];
  page.on("requestfailed", (r) => failed.push(r.failure()?.errorText));
  const outcome = await page.evaluate(async () => {
    const { client, room } = window.chat;
    const handle = client.chatRoom.getOrCreate([room], { params: { name: "probe" } });
    try {
      return { ok: true, value: await handle.sendMessage("sent without a connection") };
    } catch (e) {
      return { ok: false, error: `${e.code ?? ""}: ${e.message}` };
    }
  });
  console.log("stateless action from Chromium:", JSON.stringify(outcome), failed);
  assert.equal(outcome.ok, false);
  assert.match(outcome.error, /Failed to fetch/);
  assert.deepEqual(failed, ["net::ERR_ALPN_NEGOTIATION_FAILED"]);
  // The same call over the page's connection works, and nothing was half-sent before.
  const history = await page.evaluate(() => window.chat.conn.history());
  assert.deepEqual(history, []);
  await page.context().close();
});
