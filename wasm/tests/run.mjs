// Runs tests/suite.js in headless Chromium (playwright-core, Debian's /usr/bin/chromium) for
// every transport × protocol pair (no MessagePack over Server-Sent Events), then the demo chat
// page (tests/chat.html) once per target.
// Usage: node tests/run.mjs <test server base URL> [hublink|official]...
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { TRANSCRIPT } from "./chat.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const base = process.argv[2];
const targets = process.argv.length > 3 ? process.argv.slice(3) : ["hublink"];
const COMBOS = [
  ["WebSockets", "json"], ["WebSockets", "messagepack"], ["ServerSentEvents", "json"],
  ["LongPolling", "json"], ["LongPolling", "messagepack"],
];
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };

// The page's own origin (the test server is another one: CORS with credentials).
const server = http.createServer((req, res) => {
  const file = path.join(root, decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
let passed = 0;
let failed = 0;
try {
  for (const target of targets) {
    for (const [transport, protocol] of COMBOS) {
      const page = await browser.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${origin}/tests/${target}.html`);
      await page.waitForFunction(() => window.ready === true, null, { timeout: 20000 })
        .catch(() => { throw new Error(`${target}: page did not load: ${errors.join("; ")}`); });
      const results = await page.evaluate(
        ([b, t, p]) => window.runSuite(b, t, p), [base, transport, protocol]);
      for (const r of results) {
        const label = `${target} ${transport} ${protocol}: ${r.name}`;
        if (r.ok) { passed += 1; console.log(`ok   ${label} (${r.ms} ms)`); }
        else { failed += 1; console.log(`FAIL ${label}: ${r.error}`); }
      }
      await page.close();
    }
    // The demo chat page (tests/chat.html): its transcript must be the demo's.
    const page = await browser.newPage();
    const label = `${target} demo chat page`;
    const started = Date.now();
    try {
      const hub = encodeURIComponent(`${base}/testhub`);
      await page.goto(`${origin}/tests/chat.html?lib=${target}&hub=${hub}`);
      await page.waitForFunction(() => window.chat !== undefined, null, { timeout: 30000 });
      const status = await page.evaluate(() => window.chat);
      const lines = (await page.textContent("#log")).trimEnd().split("\n");
      if (status !== "done") throw new Error(status);
      const expected = TRANSCRIPT.join("\n");
      if (lines.join("\n") !== expected) {
        throw new Error(`transcript differs:\n${lines.join("\n")}\n--- expected:\n${expected}`);
      }
      passed += 1;
      console.log(`ok   ${label} (${Date.now() - started} ms)`);
    } catch (e) {
      failed += 1;
      console.log(`FAIL ${label}: ${e.message}`);
    }
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
