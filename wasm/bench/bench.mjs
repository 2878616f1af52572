// Benchmark in headless Chromium: hublink's package and @microsoft/signalr on one page
// (bench.html) against one test server, workloads interleaved round by round (the order of
// the two clients alternates). Prints every figure and a Markdown table of the medians.
// Usage: node bench/bench.mjs <test server base URL> [--rounds N] [--seconds S] [--items N]
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const [base, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? Number(rest[i + 1]) : fallback;
};
const rounds = option("rounds", 3);
const seconds = option("seconds", 3);
const items = option("items", 100000);
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" };

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
const figures = {}; // "protocol workload client" -> [figure per round]
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  await page.goto(`${origin}/bench/bench.html`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: 20000 });
  const url = `${base}/testhub`;
  for (let round = 1; round <= rounds; round += 1) {
    const clients = round % 2 ? ["hublink", "official"] : ["official", "hublink"];
    for (const protocol of ["json", "messagepack"]) {
      for (const workload of ["echo", "stream"]) {
        for (const client of clients) {
          const figure = await page.evaluate(
            ([c, u, p, w, o]) => window.measure(c, u, p, w, o),
            [client, url, protocol, workload, { seconds, items }]);
          const key = `${protocol} ${workload} ${client}`;
          (figures[key] ??= []).push(figure);
          console.log(`round ${round}: ${key}: ${Math.round(figure)}`);
        }
      }
    }
  }
} finally {
  await browser.close();
  server.close();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => Math.round(x).toLocaleString("en-US");
console.log(`\n${rounds} rounds, median (min–max); echo: ${seconds} s with 100 calls in flight;`
  + ` stream: StreamCount(${items})\n`);
console.log("| workload | protocol | hublink-wasm | @microsoft/signalr | hublink ÷ official |");
console.log("|---|---|--:|--:|--:|");
for (const workload of ["echo", "stream"]) {
  for (const protocol of ["json", "messagepack"]) {
    const h = figures[`${protocol} ${workload} hublink`];
    const o = figures[`${protocol} ${workload} official`];
    const cell = (xs) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
    const unit = workload === "echo" ? "calls/s" : "items/s";
    console.log(`| ${workload} (${unit}) | ${protocol} | ${cell(h)} | ${cell(o)} | `
      + `${(median(h) / median(o)).toFixed(2)}× |`);
  }
}
