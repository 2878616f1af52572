// Three clients chat through a hub, in Kotlin: the same chat as examples/rust-chat
// (scripts/demo.sh). By default the hub is the bundled test server, started as a child process
// (target/debug/hublink-testserver, or $HUBLINK_TESTSERVER); `--url <hub url>` uses your own
// server (it needs the hub methods JoinGroup, SendToGroup, Broadcast, StreamCount and
// GetClientResult). Run it with examples/kotlin-chat/run.sh.
package io.hublink.examples.chat

import io.hublink.HubConnection
import io.hublink.HubConnectionBuilder
import java.io.File
import kotlin.system.exitProcess
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull

private suspend fun join(hubUrl: String, name: String, messagePack: Boolean, log: Channel<String>): HubConnection {
    val builder = HubConnectionBuilder.create(hubUrl)
    if (messagePack) builder.withMessagePack()
    val connection = builder.build()
    connection.on<String>("Message") { text -> log.send("  $name received: $text") }
    // A client result: the server asks this client a question and awaits the answer.
    connection.onResult("Mood") { "$name is happy" }
    connection.start()
    println(
        "$name connected over ${connection.transport} with ${if (messagePack) "MessagePack" else "Json"} " +
            "(connection id ${connection.connectionId})",
    )
    return connection
}

private suspend fun printReceived(log: Channel<String>, count: Int) {
    repeat(count) {
        val line = withTimeoutOrNull(5_000) { log.receive() }
        if (line == null) {
            println("  (a message did not arrive in time)")
            exitProcess(1)
        }
        println(line)
    }
}

/** Starts the test server binary and returns it with its base URL (its first line of output). */
private fun startServer(): Pair<Process, String> {
    val binary = System.getenv("HUBLINK_TESTSERVER")
        ?: File("../../target/debug/hublink-testserver").takeIf { it.exists() }?.path
        ?: "target/debug/hublink-testserver"
    val process = ProcessBuilder(binary).redirectError(ProcessBuilder.Redirect.DISCARD).start()
    val base = process.inputStream.bufferedReader().readLine()
    check(base != null && base.startsWith("http://")) { "the test server printed $base" }
    return process to base
}

fun main(args: Array<String>) = runBlocking {
    val external = args.indexOf("--url").takeIf { it >= 0 }?.let { args.getOrNull(it + 1) }
    val server = if (external == null) startServer() else null
    val hubUrl = external ?: "${server!!.second}/testhub"
    println("hub: $hubUrl\n")
    try {
        val log = Channel<String>(Channel.UNLIMITED)
        val alice = join(hubUrl, "alice", messagePack = false, log)
        val bob = join(hubUrl, "bob", messagePack = true, log)
        val carol = join(hubUrl, "carol", messagePack = false, log)

        println("\nalice and bob join the group 'kotlin'")
        alice.invoke<Unit>("JoinGroup", "kotlin")
        bob.invoke<Unit>("JoinGroup", "kotlin")
        println("carol sends to the group: 'hello kotliners'")
        carol.invoke<Unit>("SendToGroup", "kotlin", "carol: hello kotliners")
        printReceived(log, 2)

        println("\nbob broadcasts to everyone: 'hi all'")
        bob.send("Broadcast", "bob: hi all")
        printReceived(log, 3)

        println("\nalice streams a countdown from the server:")
        alice.stream<Long>("StreamCount", 5).collect { println("  alice got item $it") }

        println("\ncarol's hub call makes the server ask carol for a client result:")
        val mood = carol.invoke<String>("GetClientResult", "Mood")
        println("  the server got back: $mood")

        for (connection in listOf(alice, bob, carol)) {
            connection.stop()
            connection.close()
        }
        println("\nall clients stopped; demo finished")
    } finally {
        server?.first?.destroy()
    }
}
