// The Kotlin binding as a hublink-benchmarks peer (see ../README.md for the arguments and output).
package io.hublink.bench

import io.hublink.HubConnectionBuilder
import io.hublink.TransportType
import java.util.concurrent.atomic.AtomicLong
import kotlin.system.exitProcess
import kotlinx.coroutines.Deferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.joinAll
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

@Volatile
private var stopping = false

private fun say(line: String) {
    println(line)
    System.out.flush()
}

private fun checkEcho(echoed: String) {
    if (echoed != "x") {
        System.err.println("Echo returned $echoed")
        exitProcess(1)
    }
}

fun main(args: Array<String>): Unit = runBlocking(Dispatchers.Default) {
    if (args.size != 7) {
        System.err.println("usage: peer URL PROTOCOL WORKLOAD INFLIGHT WARMUP_SECS DURATION_SECS STREAM_ITEMS")
        exitProcess(2)
    }
    val url = args[0]
    val protocol = args[1]
    val workload = args[2]
    val inflight = args[3].toInt()
    val warmupMs = (args[4].toDouble() * 1000).toLong()
    val durationMs = (args[5].toDouble() * 1000).toLong()
    val items = args[6].toLong()

    val builder = HubConnectionBuilder.create(url).withTransports(TransportType.WebSockets)
    if (protocol == "messagepack") builder.withMessagePack()
    val conn = builder.build()
    conn.start()
    val count = AtomicLong()

    suspend fun window() {
        delay(warmupMs)
        val start = count.get()
        val t0 = System.nanoTime()
        say("window")
        delay(durationMs)
        val ops = count.get() - start
        val seconds = (System.nanoTime() - t0) / 1e9
        say("done $ops $seconds")
        stopping = true
    }

    when (workload) {
        // One coroutine per call in flight, each looping invoke (a resumption per call).
        "echo" -> {
            val callers = List(inflight) {
                launch {
                    while (!stopping) {
                        checkEcho(conn.invoke<String>("Echo", "x"))
                        count.incrementAndGet()
                    }
                }
            }
            window()
            callers.joinAll()
        }
        // One coroutine keeping the calls in flight: it awaits the oldest (the server answers
        // in order) and submits a new one for each that ends.
        "echo-one-task" -> {
            val caller = launch {
                val calls = ArrayDeque<Deferred<String>>()
                repeat(inflight) { calls.addLast(conn.invokeAsync<String>("Echo", "x")) }
                while (calls.isNotEmpty()) {
                    checkEcho(calls.removeFirst().await())
                    count.incrementAndGet()
                    if (!stopping) calls.addLast(conn.invokeAsync<String>("Echo", "x"))
                }
            }
            window()
            caller.join()
        }
        "stream" -> {
            suspend fun streamCount(n: Long): Long {
                var seen = 0L
                var last = -1L
                conn.stream<Long>("StreamCount", n).collect {
                    last = it
                    seen++
                }
                check(seen == n && last == n - 1) { "$seen items ending with $last, expected 0..$n" }
                return seen
            }
            streamCount(maxOf(items / 10, 1))
            say("window")
            val t0 = System.nanoTime()
            val seen = streamCount(items)
            say("done $seen ${(System.nanoTime() - t0) / 1e9}")
        }
        else -> {
            System.err.println("unknown workload $workload")
            exitProcess(2)
        }
    }
    conn.stop()
    conn.close()
    exitProcess(0)
}
