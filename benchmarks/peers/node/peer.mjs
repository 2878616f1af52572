// The official @microsoft/signalr client as a hublink-benchmarks peer (see ../README.md).
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const [url, protocol, workload, inflightText, warmupText, durationText, itemsText] = process.argv.slice(2);
if (itemsText === undefined) {
  console.error("usage: peer.mjs URL PROTOCOL WORKLOAD INFLIGHT WARMUP_SECS DURATION_SECS STREAM_ITEMS");
  process.exit(2);
}
const inflight = Number(inflightText);
const warmupMs = Number(warmupText) * 1000;
const durationMs = Number(durationText) * 1000;
const items = Number(itemsText);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));

let builder = new signalR.HubConnectionBuilder()
  .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
  .configureLogging(signalR.LogLevel.Warning);
if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
const conn = builder.build();
await conn.start();

let count = 0;
let stopping = false;
const checkEcho = (echoed) => {
  if (echoed !== "x") throw new Error(`Echo returned ${echoed}`);
};

async function window() {
  await sleep(warmupMs);
  const start = count;
  const t0 = process.hrtime.bigint();
  await say("window");
  await sleep(durationMs);
  const ops = count - start;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await say(`done ${ops} ${seconds}`);
  stopping = true;
}

function streamCount(n) {
  return new Promise((resolve, reject) => {
    let seen = 0;
    let last = -1;
    conn.stream("StreamCount", n).subscribe({
      next: (item) => {
        last = item;
        seen++;
      },
      error: reject,
      complete: () =>
        seen === n && Number(last) === n - 1
          ? resolve(seen)
          : reject(new Error(`${seen} items ending with ${last}, expected 0..${n}`)),
    });
  });
}

if (workload === "echo") {
  // One async loop per call in flight.
  const callers = Array.from({ length: inflight }, async () => {
    while (!stopping) {
      checkEcho(await conn.invoke("Echo", "x"));
      count++;
    }
  });
  await window();
  await Promise.all(callers);
} else if (workload === "echo-one-task") {
  // One loop keeping the calls in flight: await the oldest, submit a new one per answer.
  const caller = (async () => {
    const calls = Array.from({ length: inflight }, () => conn.invoke("Echo", "x"));
    while (calls.length) {
      checkEcho(await calls.shift());
      count++;
      if (!stopping) calls.push(conn.invoke("Echo", "x"));
    }
  })();
  await window();
  await caller;
} else if (workload === "stream") {
  await streamCount(Math.max(Math.floor(items / 10), 1));
  await say("window");
  const t0 = process.hrtime.bigint();
  const seen = await streamCount(items);
  await say(`done ${seen} ${Number(process.hrtime.bigint() - t0) / 1e9}`);
} else {
  console.error(`unknown workload ${workload}`);
  process.exit(2);
}
await conn.stop();
process.exit(0);
