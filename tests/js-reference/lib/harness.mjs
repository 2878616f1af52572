// Shared helpers for node:test suites that drive the official @microsoft/signalr client
// against a server binary that prints its base URL as the first stdout line.
//
// Everything here is bounded: every await that depends on the server goes through within().

import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

export const START_TIMEOUT_MS = 30_000;
export const WAIT_MS = 5_000;

/** Rejects with a descriptive error if `promise` does not settle within `ms`. */
export function within(promise, ms = WAIT_MS, what = "operation") {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A promise with its resolve/reject exposed (like the official tests' PromiseSource). */
export function promiseSource() {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
}

/** Builds a cargo package's binary and returns its path. */
export function cargoBuild(repoRoot, pkg, bin, timeoutMs) {
    execFileSync("cargo", ["build", "-q", "-p", pkg], {
        cwd: repoRoot,
        stdio: ["ignore", "inherit", "inherit"],
        timeout: timeoutMs,
    });
    const targetDir = process.env.CARGO_TARGET_DIR
        ? path.resolve(repoRoot, process.env.CARGO_TARGET_DIR)
        : path.join(repoRoot, "target");
    return path.join(targetDir, "debug", bin);
}

async function stopProcess(proc, what) {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    try { process.kill(proc.pid, "SIGTERM"); } catch { return; }
    try {
        await within(exited, 5_000, `${what} exit after SIGTERM`);
    } catch {
        try { process.kill(proc.pid, "SIGKILL"); } catch { /* gone */ }
        await within(exited, 5_000, `${what} exit after SIGKILL`);
    }
}

/**
 * Starts `bin` (args), waits (bounded) for its first stdout line, which must be
 * `http://127.0.0.1:PORT`, and returns { url, proc, logPath, tmpDir, stop() }.
 * stderr goes to a log file; the process is killed by PID on stop() and on exit.
 */
export async function startServer(bin, args = [], { name = "server", env } = {}) {
    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `hublink-${name}-`));
    const logPath = path.join(tmpDir, "stderr.log");
    const log = fs.openSync(logPath, "w");
    const proc = spawn(bin, args, { stdio: ["ignore", "pipe", log], env: { ...process.env, ...env } });
    fs.closeSync(log);
    process.on("exit", () => {
        if (proc.exitCode === null && proc.signalCode === null) {
            try { process.kill(proc.pid, "SIGKILL"); } catch { /* already gone */ }
        }
    });
    const rl = readline.createInterface({ input: proc.stdout });
    const firstLine = new Promise((resolve, reject) => {
        rl.once("line", resolve);
        proc.once("exit", (code, sig) => reject(new Error(`${name} exited early (code ${code}, signal ${sig})`)));
        proc.once("error", reject);
    });
    let url;
    try {
        url = (await within(firstLine, START_TIMEOUT_MS, `the ${name}'s URL line`)).trim();
    } catch (err) {
        await stopProcess(proc, name);
        throw new Error(`${err.message}; log: ${logPath}`);
    }
    rl.close();
    proc.stdout.resume();
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, `unexpected first stdout line: ${url}`);
    return {
        url, proc, logPath, tmpDir,
        stop: () => stopProcess(proc, name),
    };
}

/**
 * Starts hublink's in-repo test server: $TEST_SERVER_BIN if set, else built with cargo
 * (bounded by `buildTimeoutMs`). Returns startServer()'s handle plus the binary as `bin`.
 */
export async function startTestServer(repoRoot, buildTimeoutMs) {
    const bin = process.env.TEST_SERVER_BIN
        ? path.resolve(process.env.TEST_SERVER_BIN)
        : cargoBuild(repoRoot, "hublink-testserver", "hublink-testserver", buildTimeoutMs);
    const server = await startServer(bin, [], { name: "hublink-testserver" });
    return { ...server, bin };
}

/**
 * Stops a startTestServer() server; removes its log unless a test failed (`failures` > 0)
 * or KEEP_SERVER_LOG is set, in which case it says where the log is kept.
 */
export async function stopTestServer(server, failures) {
    if (!server) return;
    await server.stop();
    if (failures === 0 && !process.env.KEEP_SERVER_LOG) {
        fs.rmSync(server.tmpDir, { recursive: true, force: true });
    } else {
        console.error(`hublink-testserver log kept at ${server.logPath}`);
    }
}
