// The official @microsoft/signalr client (10.0.11) under the same faults as hublink's
// core/tests/soak.rs: the in-repo test server drops the WebSocket again and again
// (`?faults=drop_randomly:MEAN,drop_seed:S`), sends a wrong Sequence (`bad_sequence:N`) or none
// (`ignore_sequence`) on a stateful resume. Each scenario runs in a child process (this same
// file with FAULTS_CHILD set), because the official client leaves unhandled promise
// rejections behind in some of them, which node:test would count as failures of whatever test
// runs at the time; the child counts them and reports a JSON record the test asserts on.
//
//   tests/js-reference/run-faults-suite.sh            (builds the server, runs this file)
//   TEST_SERVER_BIN=target/debug/hublink-testserver node --test faults.test.mjs
//
// HUBLINK_SOAK_DROPS (default 20) and HUBLINK_SOAK_MESSAGES (default 3 500) size the soaks, as
// in soak.rs. Test names start with "[<transport>.<protocol>.<area>.<case>]" from
// tests/scenarios/scenarios.txt; the Rust tests with the same names are in core/tests/soak.rs.
//
// ---------------------------------------------------------------------------------------------
// Where hublink and the official client differ under these faults, and which is right
// ---------------------------------------------------------------------------------------------
//
// 1. Upload stream across a drop, automatic reconnect only ([ws.json.reconnect.upload-across-drop],
//    also seen in [ws.*.reconnect.soak-random-drops]). Official: the invocation rejects with
//    the close error, but the items and the completion the application pushes into the Subject
//    after the drop are sent through a promise chain nobody handles
//    (HubConnection._launchStreams): an unhandled rejection ("Cannot send data if the
//    connection is not in the 'Connected' State." or "WebSocket is not in the OPEN state") per
//    upload, which ends a Node process with default settings. hublink: the invocation fails
//    with the close error, the upload task ends and drops the application's stream (its
//    producer sees the receiver gone); nothing is left unhandled. hublink is right: a
//    connection loss must surface once, through the call that owns the upload, not as a
//    process-level error.
//
// 2. send() and upload items while the WebSocket drops under the write, stateful reconnect
//    ([ws.json.stateful.send-across-drop], [ws.json.stateful.upload-across-drop]).
//    Official: MessageBuffer._send catches the transport error, marks the connection
//    disconnected and resolves (after backpressure): the frame is in the buffer and is replayed,
//    so the caller is told the truth and the upload goes on. hublink (fixed; it used to fail
//    the caller with the write error, and an upload then stopped and its invocation hung): a
//    sequenced frame counts as sent once it is in the replay buffer, like the official client.
//    Same behaviour now.
//
// 3. A drop while the resumed transport is still being fed the Sequence and the replay
//    ([ws.json.stateful.drop-during-replay]). Official: MessageBuffer._resend sends Sequence
//    and replay directly (await per frame); a second drop lands in a fresh onclose, which
//    resumes again from the buffer: exactly once holds (a failing resend would end the
//    connection; not seen here). hublink (fixed; it used to queue the stale Sequence and
//    replay behind the new ones, so messages ran twice or were lost): what is still queued from
//    an interrupted resume is discarded and replaced by the new Sequence and replay. Same
//    behaviour now.
//
// 4. Ack after a resume (code reading, both directions). Official: a replayed duplicate whose
//    id equals the latest received id re-arms the Ack timer (MessageBuffer._shouldProcessMessage),
//    so an Ack that fell due during the reconnect is sent after it. hublink (fixed; its Ack
//    timer used to re-arm only on a new message) does the same now.
//
// 5. A call made just as the connection drops (hublink only: [ws.json.reconnect.calls-during-drop],
//    seen in 2-5 % of the full automatic-reconnect soaks as an Echo or StreamCount that never
//    ends and an upload task left alive after stop()). hublink (fixed): the driver drained its
//    closed command channel with try_recv, so a command whose send already held a permit
//    landed after the drain and was never failed; it now drains with recv() until every sender
//    is done. The official client runs on one JavaScript thread: a call either finds the
//    connection or is rejected; it cannot fall between the two. Both right now.
//
// 7. The server's Sequence after a replay that a second drop cut short (hublink's full soak,
//    1 000 drops, hit it once). The client had processed messages up to N and acknowledged N;
//    the server's replay on the resumed transport (from some id below N) was cut by another
//    drop; on the next resume the server rightly starts at N + 1 (it dropped what we
//    acknowledged). Official: MessageBuffer compares the Sequence with the id it counted during
//    the cut-short replay, finds it "greater than amount of messages we've received" and stops
//    the connection. hublink compares with the last processed message and resumes: no gap, no
//    message lost. hublink is right (a gap means ids above N + 1; N + 1 is the next message).
//
// 8. TCP cuts through hublink-chaos-proxy (RST, FIN, half-close, mid-frame, negotiate included;
//    [ws.*.stateful.chaos-tcp-cuts], the same workload as core/tests/chaos.rs). Both keep every
//    acknowledged message exactly once per direction while a connection is resumed, and the
//    test server runs nothing twice on one connection (it did: frames still read from a
//    superseded WebSocket were numbered after the new Sequence; fixed). Official: now and then
//    (2 of about 40 runs of 12 s, MessagePack both times) a message the application sent once
//    runs on two connections: the one it was sent on, and a connection the application never
//    saw as connected, in a run whose reconnecting events include "Sequence ID greater than
//    amount of messages we've received." and unhandled rejections "HttpConnection.stopConnection
//    was called while the connection is still in the connecting state." / "Error parsing
//    handshake response: Error: Message is incomplete." That is the race of 6. below: the
//    stateful onclose handler resumes a transport that automatic reconnect is replacing, so a
//    replay reaches a connection it does not belong to. hublink: no message ran twice in any run
//    (one resume attempt, owned by the driver; a failed resume hands over to automatic
//    reconnect, which starts from a fresh replay buffer). hublink is right. Also seen once in
//    about 12 runs: an official send() or invoke() that never settled within 30 s (hublink's
//    chaos.rs fails on any call that does not resolve within its bound; none did).
//
// 6. Same behaviour, recorded so that a change is noticed:
//    - Sequence above what was received ([ws.json.stateful.bad-sequence-high]): both end the
//      connection with "Sequence ID greater than amount of messages we've received." and, with
//      automatic reconnect, reconnect with a new connection id; pending calls fail with that
//      error. Except that the official client first opens one more WebSocket to the old
//      connection: HttpConnection.stop(error) leaves features.reconnect on, so the stateful
//      onclose handler reconnects the transport it is stopping, in a race with the automatic
//      reconnect on the same HttpConnection; now and then the old connection's Sequence reaches
//      the new connection's handshake ("Error parsing handshake response: Error: Expected a
//      handshake response from the server.", plus "HttpConnection.stopConnection(undefined) was
//      called while the connection is still in the connecting state.", both unhandled
//      rejections) and that reconnect attempt fails. hublink ends the driver, opens nothing
//      more to the old connection and reconnects cleanly: hublink is right.
//    - Sequence below the right one ([ws.json.stateful.bad-sequence-low]): both take the next
//      messages for duplicates and drop them silently (their calls never complete). Neither can
//      tell: a lower Sequence is legal when an Ack was lost.
//    - No Sequence at all ([ws.json.stateful.ignore-sequence]): both ignore everything while
//      waiting for it, forever; pings still count as traffic, so no server timeout ends it.
//      Neither bounds the wait (a resumed transport whose first message is not a Sequence could
//      be treated as broken); right would be to give up and let the connection close.
//    - Automatic reconnect only ([ws.*.reconnect.soak-random-drops]): pending invocations and
//      streams fail with the close error ("WebSocket closed with status code: 1006 (no reason
//      given).", both), calls made while reconnecting fail at once ("Cannot send data if the
//      connection is not in the 'Connected' State.", both); a send() that resolved may still be
//      lost (fire and forget); nothing arrives twice or out of order; nothing hangs.
//    - Stateful soak ([ws.*.stateful.soak-random-drops]): the official client keeps every
//      message exactly once and in order, without reconnect events, with the same connection id
//      (hublink too, since the fixes of 2, 3 and 7). Both hold sends back when
//      100 000 bytes are unacknowledged; under a drop storm both stall until Acks get through.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

import { sleep, startServer, startTestServer, stopTestServer, within } from "./lib/harness.mjs";

const THIS_FILE = fileURLToPath(import.meta.url);
const HERE = path.dirname(THIS_FILE);
const REPO_ROOT = path.resolve(HERE, "..", "..");
const BUILD_TIMEOUT_MS = 600_000;

const DROPS = Math.max(1, Number(process.env.HUBLINK_SOAK_DROPS ?? 20));
const MESSAGES = Math.max(70, Number(process.env.HUBLINK_SOAK_MESSAGES ?? 3_500));
const SEED = Number(process.env.HUBLINK_SOAK_SEED ?? 1);
const PER_FLOW = Math.floor(MESSAGES / 7);
const MEAN_GAP = Math.max(1, Math.floor((3 * PER_FLOW) / DROPS));
/** Bounds one call: nothing may hang. */
const CALL_LIMIT_MS = 30_000;
const IN_FLIGHT = 100;
/** Sizes of the reduced scenarios (soak.rs uses 2 000 and 1 000: the official client is slower). */
const SENDS = 1_000;
const INVOCATIONS = 500;

// =============================================================================================
// child side: one scenario against the official client, reported as one JSON line
// =============================================================================================

const T = signalR.HttpTransportType;

function build(url, { msgpack = false, stateful = false, reconnect } = {}) {
    let b = new signalR.HubConnectionBuilder()
        .withUrl(url, { transport: T.WebSockets })
        .configureLogging(signalR.LogLevel[process.env.SIGNALR_LOG_LEVEL ?? "None"] ?? signalR.LogLevel.None);
    if (msgpack) b = b.withHubProtocol(new MessagePackHubProtocol());
    if (stateful) b = b.withStatefulReconnect();
    if (reconnect) b = b.withAutomaticReconnect(reconnect);
    return b.build();
}

/** Retries at once, then every 10 ms, while fewer than 100 attempts in a row failed. */
const QUICK = { nextRetryDelayInMilliseconds: (ctx) => (ctx.previousRetryCount === 0 ? 0 : ctx.previousRetryCount < 100 ? 10 : null) };

/** Lifecycle events, and the transport drops a stateful connection resumed from. */
function observe(conn) {
    const o = { reconnecting: [], reconnected: 0, closed: [], drops: 0, resumed: 0, resumeFailed: 0 };
    conn.onreconnecting((e) => o.reconnecting.push(String(e?.message ?? e)));
    conn.onreconnected(() => o.reconnected++);
    conn.onclose((e) => o.closed.push(e ? String(e.message ?? e) : null));
    o.hookResume = () => {
        const f = conn.connection.features;
        if (!f.resend) return;
        const disconnected = f.disconnected, resend = f.resend;
        f.disconnected = () => { o.drops++; return disconnected(); };
        f.resend = async () => {
            try { const r = await resend(); o.resumed++; return r; } catch (e) { o.resumeFailed++; throw e; }
        };
    };
    return o;
}

function inbox(conn) {
    const box = { texts: [], seen: new Set(), waiters: [] };
    conn.on("Message", (m) => {
        box.texts.push(m);
        box.seen.add(m);
        box.waiters.splice(0).forEach((w) => w());
    });
    box.changed = () => new Promise((r) => box.waiters.push(r));
    return box;
}

async function waitFor(pred, ms, what) {
    const end = Date.now() + ms;
    while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(2);
    }
}

/** The message of a call's error, "HUNG" if it did not settle within the call limit. */
async function settle(promise, what) {
    try {
        return { value: await within(promise, CALL_LIMIT_MS, what) };
    } catch (e) {
        const message = String(e?.message ?? e);
        return { error: message.startsWith("timed out after") ? "HUNG" : message };
    }
}

function tally() {
    return { calls: 0, ok: 0, errors: {} };
}
function count(t, error) {
    t.errors[error] = (t.errors[error] ?? 0) + 1;
}

/** After an error, wait (bounded) until the connection is back. */
async function afterError(conn) {
    await sleep(2);
    await waitFor(() => conn.state === "Connected" || conn.state === "Disconnected", CALL_LIMIT_MS, "the reconnect");
}

const numbered = (from, n) => Array.from({ length: n }, (_, i) => `${from + i},`);

/** An upload (Subject) of `items`, fed a few at a time so that drops land in the middle. */
async function feed(subject, items) {
    for (let i = 0; i < items.length; i++) {
        subject.next(items[i]);
        if (i % 25 === 24) await sleep(0);
    }
    subject.complete();
}

const scenarios = {
    async "stateful-soak"(base, { msgpack }) {
        const n = PER_FLOW;
        const conn = build(`${base}/testhub?faults=drop_randomly:${MEAN_GAP},drop_seed:${SEED}`, { msgpack, stateful: true, reconnect: QUICK });
        const o = observe(conn);
        const box = inbox(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        o.hookResume();
        const id = conn.connectionId;
        const started = Date.now();
        const problems = [];
        const echoes = (async () => {
            let next = 0;
            const t = tally();
            await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
                while (next < n) {
                    const i = next++;
                    t.calls++;
                    const r = await settle(conn.invoke("Echo", `e${i}`), "an Echo");
                    if (r.error) count(t, r.error);
                    else if (r.value !== `e${i}`) problems.push(`Echo e${i} returned ${r.value}`);
                    else t.ok++;
                }
            }));
            return t;
        })();
        const sends = (async () => {
            const t = tally();
            for (let i = 0; i < n; i++) {
                t.calls++;
                const r = await settle(conn.send("InvokeWithString", `s${i}`), "a send");
                if (r.error) count(t, r.error);
                else t.ok++;
            }
            return t;
        })();
        const stream = settle(new Promise((resolve, reject) => {
            const items = [];
            conn.stream("StreamCount", n).subscribe({ next: (x) => items.push(x), error: reject, complete: () => resolve(items) });
        }), "StreamCount");
        const upload = (async () => {
            const s = new signalR.Subject();
            const p = settle(conn.invoke("UploadSum", s), "UploadSum");
            await feed(s, Array.from({ length: n }, (_, i) => i + 1));
            return p;
        })();
        const concat = (async () => {
            const t = tally();
            for (let from = 0; from < n; from += 100) {
                t.calls++;
                const items = numbered(from, Math.min(100, n - from));
                const s = new signalR.Subject();
                const p = settle(conn.invoke("StreamingConcat", s), "StreamingConcat");
                await feed(s, items);
                const r = await p;
                if (r.error) count(t, r.error);
                else if (r.value !== items.join("")) problems.push(`StreamingConcat from ${from}: got ${r.value.slice(0, 60)}…`);
                else t.ok++;
            }
            return t;
        })();
        const [e, sd, st, up, cc] = await Promise.all([echoes, sends, stream, upload, concat]);
        await waitFor(() => box.texts.length >= n, 5_000, "the Messages").catch(() => {});
        const expected = Array.from({ length: n }, (_, i) => `s${i}`);
        if (JSON.stringify(box.texts) !== JSON.stringify(expected)) {
            problems.push(`Messages: ${box.texts.length} arrived for ${n}, ${box.texts.length - box.seen.size} twice, first out of place at ${box.texts.findIndex((x, i) => x !== expected[i])}`);
        }
        if (st.error) problems.push(`StreamCount: ${st.error}`);
        else if (JSON.stringify(st.value) !== JSON.stringify(Array.from({ length: n }, (_, i) => i))) problems.push(`StreamCount: ${st.value.length} items, not 0..${n - 1}`);
        if (up.error) problems.push(`UploadSum: ${up.error}`);
        else if (up.value !== (n * (n + 1)) / 2) problems.push(`UploadSum: ${up.value}, expected ${(n * (n + 1)) / 2}`);
        const sameId = conn.connectionId === id;
        const seconds = (Date.now() - started) / 1000;
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { n, mean: MEAN_GAP, seconds, echoes: e, sends: sd, concat: cc, problems, sameId, ...o, hookResume: undefined };
    },

    /** The workload of core/tests/chaos.rs, through hublink-chaos-proxy (base is the proxy). */
    async "chaos-cuts"(base, { msgpack, seconds }) {
        const FOREVER = { nextRetryDelayInMilliseconds: (ctx) => (ctx.previousRetryCount === 0 ? 0 : 20) };
        const conn = build(`${base}/testhub`, { msgpack, stateful: true, reconnect: FOREVER });
        const o = observe(conn);
        const numbered = [];
        conn.on("Numbered", (i) => numbered.push(i));
        let startFailures = 0;
        for (;;) {
            try { await within(conn.start(), CALL_LIMIT_MS, "start"); break; } catch { startFailures++; await sleep(20); }
        }
        const connected = () => waitFor(() => conn.state === "Connected", CALL_LIMIT_MS, "a connected state");
        const sends = [], emits = [], connectionIds = [];
        const tag = msgpack ? "ws.msgpack" : "ws.json";
        const began = Date.now();
        for (let round = 0; Date.now() - began < seconds * 1000; round++) {
            await connected();
            if (connectionIds.at(-1) !== conn.connectionId) connectionIds.push(conn.connectionId);
            const keys = Array.from({ length: 40 }, (_, i) => `${tag}/${round}/${i}`);
            const pending = keys.map((key) => settle(conn.send("Tally", key), "a send"));
            const start = round * 40;
            const emitted = settle(conn.invoke("EmitNumbered", start, 40), "EmitNumbered");
            for (const [i, r] of (await Promise.all(pending)).entries()) {
                sends.push({ key: keys[i], ok: !r.error, hung: r.error === "HUNG", epoch: o.reconnecting.length });
            }
            const e = await emitted;
            emits.push({ start, ok: !e.error, hung: e.error === "HUNG", epoch: o.reconnecting.length });
        }
        // The proxy still cuts: each count is asked until an answer gets through (round by
        // round: the whole map of a long run exceeds the maximum message size).
        const ask = async (method, ...args) => {
            for (let attempt = 1; ; attempt++) {
                await connected();
                const r = await settle(conn.invoke(method, ...args), method);
                if (!r.error) return r.value;
                if (attempt === 20) throw new Error(`${method} failed 20 times: ${r.error}`);
            }
        };
        const tallies = {};
        for (let asked = 0; asked * 40 < sends.length; asked++) Object.assign(tallies, await ask("TallyCounts", `${tag}/${asked}/`));
        const duplicates = await ask("TallyDuplicates");
        await sleep(200);
        const fullReconnects = o.reconnecting.length;
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        const seen = new Map();
        for (const i of numbered) seen.set(i, (seen.get(i) ?? 0) + 1);
        const runs = Object.values(duplicates);
        return {
            seconds, startFailures, fullReconnects, connections: connectionIds.length,
            reconnectErrors: [...new Set(o.reconnecting)],
            sends: sends.length, okSends: sends.filter((s) => s.ok).length,
            hung: sends.filter((s) => s.hung).length + emits.filter((e) => e.hung).length,
            duplicated: runs.length,
            duplicatedOnOneConnection: runs.filter((ids) => new Set(ids).size < ids.length).length,
            duplicatedOnAConnectionNeverSeen: runs.filter((ids) => ids.some((id) => !connectionIds.includes(id))).length,
            duplicatedSample: Object.entries(duplicates).slice(0, 2),
            lostAfterFullReconnect: sends.filter((s) => s.ok && !(s.key in tallies) && s.epoch < fullReconnects).length,
            lostInStateful: sends.filter((s) => s.ok && !(s.key in tallies) && s.epoch === fullReconnects).length,
            emits: emits.length, okEmits: emits.filter((e) => e.ok).length,
            numbered: numbered.length, numberedTwice: [...seen.values()].filter((n) => n > 1).length,
            missingAfterOk: emits.filter((e) => e.ok).flatMap((e) => Array.from({ length: 40 }, (_, i) => e.start + i)).filter((i) => !seen.has(i)).length,
        };
    },

    async "reconnect-soak"(base, { msgpack }) {
        const k = PER_FLOW;
        const chunk = Math.min(50, Math.max(1, Math.floor(MEAN_GAP / 4)));
        const conn = build(`${base}/testhub?faults=drop_randomly:${MEAN_GAP},drop_seed:${SEED}`, { msgpack, reconnect: QUICK });
        const o = observe(conn);
        const box = inbox(conn);
        const resourcesBefore = process.getActiveResourcesInfo().length;
        await within(conn.start(), CALL_LIMIT_MS, "start");
        const started = Date.now();
        const keepGoing = (i) => o.closed.length === 0 && (i < k || o.reconnecting.length < DROPS);
        const problems = [];
        const echoes = (async () => {
            let next = 0;
            const t = tally();
            await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
                while (keepGoing(next)) {
                    const i = next++;
                    t.calls++;
                    const r = await settle(conn.invoke("Echo", `e${i}`), "an Echo");
                    if (r.error) { count(t, r.error); await afterError(conn); }
                    else if (r.value !== `e${i}`) problems.push(`Echo e${i} returned ${r.value}`);
                    else t.ok++;
                }
            }));
            return t;
        })();
        const sends = (async () => {
            const t = tally();
            let lost = 0;
            for (let i = 0; keepGoing(i); i++) {
                t.calls++;
                const text = `s${i}`;
                const drops = o.reconnecting.length;
                const r = await settle(conn.send("InvokeWithString", text), "a send");
                if (r.error) { count(t, r.error); await afterError(conn); continue; }
                t.ok++;
                // Its Message arrives, unless a drop came in between.
                await waitFor(() => box.seen.has(text) || o.reconnecting.length !== drops, CALL_LIMIT_MS, `the Message of ${text}`);
                if (!box.seen.has(text)) { lost++; await afterError(conn); }
            }
            return { ...t, lost };
        })();
        const streams = (async () => {
            const t = tally();
            for (let i = 0; keepGoing(i * chunk); i++) {
                t.calls++;
                const items = [];
                const r = await settle(new Promise((resolve, reject) => {
                    try {
                        conn.stream("StreamCount", chunk).subscribe({ next: (x) => items.push(x), error: reject, complete: resolve });
                    } catch (e) { reject(e); }
                }), "StreamCount");
                if (!items.every((x, j) => x === j)) problems.push(`StreamCount: items ${items.join(",")}`);
                if (r.error) { count(t, r.error); await afterError(conn); }
                else if (items.length !== chunk) problems.push(`StreamCount completed with ${items.length} of ${chunk} items`);
                else t.ok++;
            }
            return t;
        })();
        const uploads = (method, make, check) => (async () => {
            const t = tally();
            for (let i = 0; keepGoing(i * chunk); i++) {
                t.calls++;
                const items = make(i);
                const s = new signalR.Subject();
                const p = settle(conn.invoke(method, s), method);
                await feed(s, items);
                const r = await p;
                if (r.error) { count(t, r.error); await afterError(conn); }
                else if (!check(r.value, items)) problems.push(`${method}: wrong result ${String(r.value).slice(0, 60)}`);
                else t.ok++;
            }
            return t;
        })();
        const sums = uploads("UploadSum", (i) => Array.from({ length: chunk }, (_, j) => i * chunk + j + 1), (v, items) => v === items.reduce((a, b) => a + b, 0));
        const concats = uploads("StreamingConcat", (i) => numbered(i * chunk, chunk), (v, items) => v === items.join(""));
        const [e, sd, st, su, cc] = await Promise.all([echoes, sends, streams, sums, concats]);
        await sleep(500);
        for (let i = 1; i < box.texts.length; i++) {
            if (Number(box.texts[i].slice(1)) <= Number(box.texts[i - 1].slice(1))) problems.push(`Message ${box.texts[i]} after ${box.texts[i - 1]}`);
        }
        const seconds = (Date.now() - started) / 1000;
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        await sleep(1_000);
        const resourcesAfter = process.getActiveResourcesInfo().length;
        return {
            mean: MEAN_GAP, chunk, seconds, echoes: e, sends: sd, streams: st, sums: su, concats: cc,
            messages: box.texts.length, problems, resourcesBefore, resourcesAfter,
            resourcesLeft: process.getActiveResourcesInfo(), ...o, hookResume: undefined,
        };
    },

    async "upload-across-drop"(base) {
        const conn = build(`${base}/testhub`, { reconnect: [0] });
        const o = observe(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        const s = new signalR.Subject();
        const p = settle(conn.invoke("UploadSum", s), "UploadSum");
        s.next(1);
        await sleep(100);
        await conn.send("Abort");
        await waitFor(() => o.reconnecting.length > 0, CALL_LIMIT_MS, "onreconnecting");
        s.next(2);
        s.complete();
        const r = await p;
        await waitFor(() => o.reconnected > 0, CALL_LIMIT_MS, "onreconnected");
        await sleep(200);
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { invocation: r, ...o, hookResume: undefined };
    },

    async "stateful-send-across-drop"(base) {
        const conn = build(`${base}/testhub?faults=drop_randomly:5`, { stateful: true });
        const o = observe(conn);
        const box = inbox(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        o.hookResume();
        const failed = [];
        for (let i = 0; i < SENDS; i++) {
            const r = await settle(conn.send("InvokeWithString", `s${i}`), "a send");
            if (r.error) failed.push(r.error);
        }
        await waitFor(() => box.texts.length >= SENDS, CALL_LIMIT_MS, "the Messages").catch(() => {});
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { failed: failed.length, failedSample: failed.slice(0, 3), arrived: box.texts.length, distinct: box.seen.size, ...o, hookResume: undefined };
    },

    async "stateful-upload-across-drop"(base) {
        const conn = build(`${base}/testhub?faults=drop_randomly:5`, { stateful: true });
        const o = observe(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        o.hookResume();
        const results = [];
        for (let round = 0; round < 20; round++) {
            const s = new signalR.Subject();
            const p = settle(conn.invoke("UploadSum", s), "UploadSum");
            await feed(s, Array.from({ length: 500 }, (_, i) => i + 1));
            const r = await p;
            results.push(r.error ?? r.value);
        }
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { results, ...o, hookResume: undefined };
    },

    async "drop-during-replay"(base) {
        const conn = build(`${base}/testhub?faults=drop_randomly:3`, { stateful: true });
        const o = observe(conn);
        const box = inbox(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        o.hookResume();
        let next = 0, completed = 0;
        const errors = {};
        await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
            while (next < INVOCATIONS) {
                const r = await settle(conn.invoke("InvokeWithString", `m${next++}`), "an invocation");
                if (r.error) errors[r.error] = (errors[r.error] ?? 0) + 1;
                else completed++;
            }
        }));
        await sleep(500);
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { completed, errors, arrived: box.texts.length, distinct: box.seen.size, ...o, hookResume: undefined };
    },

    async "bad-sequence-high"(base) {
        const conn = build(`${base}/testhub?faults=bad_sequence:1000`, { stateful: true, reconnect: [0] });
        const o = observe(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        const firstId = conn.connectionId;
        for (let i = 0; i < 3; i++) await within(conn.invoke("Echo", `m${i}`), CALL_LIMIT_MS, "Echo");
        // A call pending across the drop (a stream: it does not hold up Abort on the server).
        const pending = settle(new Promise((resolve, reject) => {
            conn.stream("InfiniteStream").subscribe({ next: () => {}, error: reject, complete: resolve });
        }), "InfiniteStream");
        await conn.send("Abort");
        await waitFor(() => o.reconnected > 0 || o.closed.length > 0, CALL_LIMIT_MS, "the end of the reconnect");
        const r = await pending;
        const echo = await settle(conn.invoke("Echo", "after"), "Echo");
        const newId = conn.connectionId !== firstId;
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { pending: r, echo, newId, ...o, hookResume: undefined };
    },

    async "bad-sequence-low"(base) {
        const conn = build(`${base}/testhub?faults=bad_sequence:1`, { stateful: true });
        const o = observe(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        for (let i = 0; i < 5; i++) await within(conn.invoke("Echo", `m${i}`), CALL_LIMIT_MS, "Echo");
        await sleep(1_500);
        await conn.send("Abort");
        await sleep(500);
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => within(conn.invoke("Echo", `after${i}`), 3_000, "Echo").then(() => "ok", (e) => String(e.message))));
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { results, ...o, hookResume: undefined };
    },

    async "ignore-sequence"(base) {
        const conn = build(`${base}/testhub?faults=ignore_sequence`, { stateful: true });
        conn.keepAliveIntervalInMilliseconds = 200;
        conn.serverTimeoutInMilliseconds = 1_000;
        const o = observe(conn);
        await within(conn.start(), CALL_LIMIT_MS, "start");
        for (let i = 0; i < 2; i++) await within(conn.invoke("Echo", `m${i}`), CALL_LIMIT_MS, "Echo");
        await conn.send("Abort");
        await sleep(300);
        const r = await within(conn.invoke("Echo", "deaf"), 3_000, "Echo").then(() => "ok", (e) => String(e.message));
        const state = conn.state;
        await within(conn.stop(), CALL_LIMIT_MS, "stop");
        return { echo: r, state, ...o, hookResume: undefined };
    },
};

if (process.env.FAULTS_CHILD) {
    const unhandled = [];
    process.on("unhandledRejection", (e) => unhandled.push(String(e?.message ?? e)));
    const [name, base, options] = [process.env.FAULTS_CHILD, process.env.FAULTS_BASE_URL, JSON.parse(process.env.FAULTS_OPTIONS ?? "{}")];
    try {
        const record = await scenarios[name](base, options);
        record.unhandledRejections = unhandled.length;
        record.unhandledSample = [...new Set(unhandled)].slice(0, 3);
        process.stdout.write(`RESULT ${JSON.stringify(record)}\n`);
        process.exit(0);
    } catch (e) {
        process.stdout.write(`RESULT ${JSON.stringify({ crashed: String(e?.stack ?? e), unhandledRejections: unhandled.length })}\n`);
        process.exit(0);
    }
}

// =============================================================================================
// test side
// =============================================================================================

let server;
let serverReady;
let failures = 0;

if (!process.env.FAULTS_CHILD) {
    before(async () => {
        serverReady = (async () => {
            server = await startTestServer(REPO_ROOT, BUILD_TIMEOUT_MS);
            return server;
        })();
        await serverReady;
    }, { timeout: BUILD_TIMEOUT_MS + 40_000 });

    after(() => stopTestServer(server, failures), { timeout: 30_000 });
}

/** Runs a scenario in a child process (bounded) and returns its record. */
function runChild(name, options = {}, limitMs = 120_000, baseUrl = server.url) {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [THIS_FILE], {
            env: { ...process.env, FAULTS_CHILD: name, FAULTS_BASE_URL: baseUrl, FAULTS_OPTIONS: JSON.stringify(options) },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "", err = "";
        child.stdout.on("data", (d) => { out += d; });
        child.stderr.on("data", (d) => { err += d; });
        const timer = setTimeout(() => {
            try { process.kill(child.pid, "SIGKILL"); } catch { /* gone */ }
            reject(new Error(`scenario ${name} did not finish within ${limitMs} ms (hung); stderr: ${err.slice(-2000)}`));
        }, limitMs);
        child.on("exit", (code, signal) => {
            clearTimeout(timer);
            const line = out.split("\n").find((l) => l.startsWith("RESULT "));
            if (!line) return reject(new Error(`scenario ${name} ended (code ${code}, signal ${signal}) without a result; stderr: ${err.slice(-2000)}`));
            const record = JSON.parse(line.slice(7));
            if (record.crashed) return reject(new Error(`scenario ${name} failed: ${record.crashed}`));
            resolve(record);
        });
    });
}

function it(name, fn, timeout = 180_000) {
    return test(name, { timeout }, async (t) => {
        await within(serverReady, BUILD_TIMEOUT_MS + 40_000, "the test server");
        try {
            await fn(t);
        } catch (err) {
            failures++;
            throw err;
        }
    });
}

const errorsOf = (t) => Object.values(t.errors).reduce((a, b) => a + b, 0);

for (const [p, msgpack] of [["ws.json", false], ["ws.msgpack", true]]) {
    it(`[${p}.stateful.soak-random-drops] official client, stateful reconnect, ${DROPS} random drops: exactly once, in order, invisible`, async (t) => {
        const r = await runChild("stateful-soak", { msgpack });
        t.diagnostic(`${r.n} items per flow, mean gap ${r.mean}: ${r.seconds} s; ${r.drops} drops, ${r.resumed} resumed, ${r.resumeFailed} resume failures, ${r.reconnecting.length} reconnects, ${r.unhandledRejections} unhandled rejections`);
        assert.deepEqual(r.problems, [], "every message exactly once, in order");
        for (const [what, tl] of [["Echo", r.echoes], ["send", r.sends], ["StreamingConcat", r.concat]]) {
            assert.equal(tl.ok, tl.calls, `${what}: no errors: ${JSON.stringify(tl.errors)}`);
        }
        assert.deepEqual(r.reconnecting, [], "no reconnecting event");
        assert.deepEqual(r.closed, [null], "one close, from stop()");
        assert.ok(r.sameId, "the same connection id");
        assert.equal(r.unhandledRejections, 0);
        assert.ok(r.resumed >= DROPS / 2, `the fault dropped the WebSocket only ${r.resumed} times (aimed at ${DROPS})`);
    });

    it(`[${p}.reconnect.soak-random-drops] official client, automatic reconnect, ${DROPS} drops: every call ends with its result or an error`, async (t) => {
        const r = await runChild("reconnect-soak", { msgpack });
        const flows = { Echo: r.echoes, send: r.sends, StreamCount: r.streams, UploadSum: r.sums, StreamingConcat: r.concats };
        t.diagnostic(`mean gap ${r.mean}, chunk ${r.chunk}: ${r.seconds} s; ${r.reconnecting.length} reconnects; ${r.unhandledRejections} unhandled rejections ${JSON.stringify(r.unhandledSample)}; Messages ${r.messages}, sends lost ${r.sends.lost}; resources ${r.resourcesBefore} before, ${r.resourcesAfter} after stop`);
        for (const [what, tl] of Object.entries(flows)) {
            t.diagnostic(`${what}: ${JSON.stringify(tl)}`);
            assert.equal(tl.ok + errorsOf(tl), tl.calls, `${what}: every call ends`);
            assert.equal(tl.errors.HUNG ?? 0, 0, `${what}: no call hangs`);
            assert.ok(tl.ok > 0, `${what}: some calls make it between drops`);
        }
        assert.deepEqual(r.problems, [], "what arrives is right, once, in order");
        assert.ok(r.reconnecting.length >= DROPS, `only ${r.reconnecting.length} reconnects (aimed at ${DROPS})`);
        assert.equal(r.reconnected, r.reconnecting.length);
        assert.deepEqual(r.closed, [null], "one close, from stop()");
        assert.ok(r.resourcesAfter <= r.resourcesBefore, `resources left after stop: ${JSON.stringify(r.resourcesLeft)}`);
    });
}

const CHAOS_SECONDS = Number(process.env.HUBLINK_CHAOS_SECONDS ?? 12);

for (const [p, msgpack] of [["ws.json", false], ["ws.msgpack", true]]) {
    it(`[${p}.stateful.chaos-tcp-cuts] official client through a proxy cutting TCP every ~25 ms: exactly once per direction on each connection`, async (t) => {
        const proxyBin = path.join(path.dirname(server.bin), "hublink-chaos-proxy");
        const upstream = new URL(server.url).host;
        const seed = process.env.HUBLINK_CHAOS_SEED ?? "1";
        const proxy = await startServer(proxyBin, ["--upstream", upstream, "--interval-ms", process.env.HUBLINK_CHAOS_INTERVAL_MS ?? "25", "--seed", seed], { name: "hublink-chaos-proxy" });
        let r;
        try {
            r = await runChild("chaos-cuts", { msgpack, seconds: CHAOS_SECONDS }, CHAOS_SECONDS * 1000 + 120_000, proxy.url);
        } finally {
            await proxy.stop();
        }
        const counts = JSON.parse(fs.readFileSync(proxy.logPath, "utf8").trim().split("\n").pop());
        fs.rmSync(proxy.tmpDir, { recursive: true, force: true });
        const cuts = Object.values(counts.cuts).reduce((a, b) => a + b, 0);
        t.diagnostic(`cuts ${JSON.stringify(counts.cuts)} (${cuts}) over ${counts.accepted} TCP connections; ${JSON.stringify(r)}`);
        assert.ok(cuts >= CHAOS_SECONDS * 10, `only ${cuts} cuts`);
        assert.ok(r.okSends > 0 && r.okEmits > 0, "something got through");
        // r.hung is reported, not failed: now and then (1 of about 12 runs) an official call
        // never settles within 30 s here (see 8. at the top of this file). hublink's chaos.rs
        // fails on any call that does not resolve.
        // The server never runs a message twice on one connection (the test server's
        // superseded-WebSocket fix). The official client may send one message on two
        // connections (see 8. at the top of this file): counted, not failed.
        assert.equal(r.duplicatedOnOneConnection, 0, "client → server: nothing runs twice on one connection");
        assert.equal(r.lostInStateful, 0, "client → server: nothing acknowledged is lost while the connection is resumed");
        assert.equal(r.numberedTwice, 0, "server → client: nothing arrives twice");
        assert.equal(r.missingAfterOk, 0, "server → client: every message of a completed call arrived");
    }, CHAOS_SECONDS * 1000 + 180_000);
}

it("[ws.json.reconnect.upload-across-drop] official client: an upload across a drop fails its invocation and leaves an unhandled rejection", async (t) => {
    const r = await runChild("upload-across-drop");
    t.diagnostic(JSON.stringify(r));
    assert.match(r.invocation.error, /WebSocket closed with status code: 1006/);
    assert.equal(r.reconnected, 1);
    // The difference from hublink (see the top of this file).
    assert.ok(r.unhandledRejections >= 1, "the official client leaves the upload's send rejection unhandled");
    assert.match(r.unhandledSample[0], /Cannot send data if the connection is not in the 'Connected' State/);
});

it("[ws.json.stateful.send-across-drop] official client: send() never fails when the WebSocket drops under it; everything is delivered", async (t) => {
    const r = await runChild("stateful-send-across-drop");
    t.diagnostic(`${r.drops} drops, ${r.resumed} resumed; ${r.failed} sends failed ${JSON.stringify(r.failedSample)}; ${r.arrived} Messages (${r.distinct} distinct)`);
    assert.equal(r.failed, 0);
    assert.equal(r.arrived, SENDS);
    assert.equal(r.distinct, SENDS);
    assert.deepEqual(r.reconnecting, []);
    assert.ok(r.drops > 10, `only ${r.drops} drops`);
});

it("[ws.json.stateful.upload-across-drop] official client: uploads go on across drops; every sum exact", async (t) => {
    const r = await runChild("stateful-upload-across-drop");
    t.diagnostic(`${r.drops} drops, ${r.resumed} resumed`);
    assert.deepEqual(r.results, Array(20).fill(125_250));
    assert.deepEqual(r.reconnecting, []);
    assert.equal(r.unhandledRejections, 0);
});

it("[ws.json.stateful.drop-during-replay] official client: drops during the resume's replay keep exactly once", async (t) => {
    const r = await runChild("drop-during-replay");
    t.diagnostic(`${r.drops} drops, ${r.resumed} resumed, ${r.resumeFailed} resume failures; ${r.completed} completed, ${r.arrived} Messages (${r.distinct} distinct) ${JSON.stringify(r.errors)}`);
    assert.equal(r.completed, INVOCATIONS, `every invocation completes: ${JSON.stringify(r.errors)}`);
    assert.equal(r.arrived, INVOCATIONS, "every invocation ran once");
    assert.equal(r.distinct, INVOCATIONS);
    assert.deepEqual(r.reconnecting, []);
});

it("[ws.json.stateful.bad-sequence-high] official client: a Sequence above what was received ends the connection; automatic reconnect takes over", async (t) => {
    const r = await runChild("bad-sequence-high");
    t.diagnostic(JSON.stringify(r));
    assert.deepEqual(r.reconnecting, ["Sequence ID greater than amount of messages we've received."]);
    assert.equal(r.pending.error, "Sequence ID greater than amount of messages we've received.", "the pending call fails with it");
    if (r.reconnected === 1) {
        assert.ok(r.newId, "a new connection");
        assert.equal(r.echo.value, "after");
    } else {
        // The official client's race (see the top of this file): the transport it is stopping
        // reconnects to the old connection meanwhile, and its Sequence reaches the new
        // connection's handshake.
        assert.equal(r.reconnected, 0);
        assert.ok(r.unhandledSample.some((m) => /Expected a handshake response from the server|still in the connecting state/.test(m)), JSON.stringify(r.unhandledSample));
    }
});

it("[ws.json.stateful.bad-sequence-low] official client: a Sequence below the right one silently swallows as many messages", async (t) => {
    const r = await runChild("bad-sequence-low");
    t.diagnostic(JSON.stringify(r.results));
    assert.equal(r.results.filter((x) => x === "ok").length, 1, "five completions dropped as duplicates, the sixth arrives");
    assert.deepEqual(r.reconnecting, []);
});

it("[ws.json.stateful.ignore-sequence] official client: without the server's Sequence the resumed connection stays deaf", async (t) => {
    // A server of its own that pings every 200 ms: the pings keep the client's 1 s server
    // timeout from firing although every message is ignored.
    const pinging = await startServer(server.bin, ["--keep-alive-ms", "200"], { name: "hublink-testserver-pings" });
    let r;
    try {
        r = await runChild("ignore-sequence", {}, 60_000, pinging.url);
    } finally {
        await stopTestServer(pinging, 0);
    }
    t.diagnostic(JSON.stringify(r));
    assert.match(r.echo, /timed out/, "no completion gets through");
    assert.equal(r.state, "Connected");
    assert.deepEqual(r.reconnecting, []);
});
