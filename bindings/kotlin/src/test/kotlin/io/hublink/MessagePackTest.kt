package io.hublink

import io.hublink.ffi.HubValue
import io.hublink.ffi.MapEntry
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The MessagePack codec of the raw call path, without a server. */
class MessagePackTest {
    private fun roundTrip(value: HubValue): HubValue {
        val writer = MessagePackWriter(1)
        writer.value(value)
        val reader = MessagePackReader(writer.bytes, 0, writer.size)
        return reader.value().also { assertEquals(writer.size, reader.pos, "all bytes read") }
    }

    @Test
    fun valuesKeepTheirType() {
        val numbers = listOf(0L, 1L, 127L, 128L, 255L, 256L, 65_535L, 65_536L, 4_294_967_295L, 4_294_967_296L,
            Long.MAX_VALUE, -1L, -32L, -33L, -128L, -129L, -32_768L, -32_769L, Int.MIN_VALUE.toLong(),
            Int.MIN_VALUE - 1L, Long.MIN_VALUE)
        val value = HubValue.Array(
            numbers.map { HubValue.Int64(it) } + listOf(
                HubValue.Null,
                HubValue.Bool(true),
                HubValue.Bool(false),
                HubValue.UInt64(ULong.MAX_VALUE),
                HubValue.Float32(0.5f),
                HubValue.Float64(-1.25),
                HubValue.Text(""),
                HubValue.Text("é".repeat(40)),
                HubValue.Text("x".repeat(70_000)),
                HubValue.Timestamp(-5, 999_999_999u),
                HubValue.Map(List(20) { MapEntry(HubValue.Int64(it.toLong()), HubValue.Text("$it")) }),
                HubValue.Array(List(70_000) { HubValue.Null }),
            ),
        )
        assertEquals(value, roundTrip(value))
    }

    @Test
    fun bytesAndExtensions() {
        for (size in listOf(0, 1, 255, 256, 70_000)) {
            val data = ByteArray(size) { it.toByte() }
            assertArrayEquals(data, (roundTrip(HubValue.Bytes(data)) as HubValue.Bytes).value)
            val ext = roundTrip(HubValue.Extension(5, data)) as HubValue.Extension
            assertEquals(5.toByte(), ext.typeCode)
            assertArrayEquals(data, ext.data)
        }
    }

    @Test
    fun theNativeSmallTimestampFormsAreRead() {
        // Timestamp 32 (seconds only) and 64 (30-bit nanoseconds, 34-bit seconds).
        val ts32 = byteArrayOf(0xd6.toByte(), -1, 0, 0, 0, 7)
        assertEquals(HubValue.Timestamp(7, 0u), MessagePackReader(ts32, 0, ts32.size).value())
        val packed = (3L shl 34) or 9L
        val ts64 = byteArrayOf(0xd7.toByte(), -1) + ByteArray(8) { (packed ushr (56 - 8 * it)).toByte() }
        assertEquals(HubValue.Timestamp(9, 3u), MessagePackReader(ts64, 0, ts64.size).value())
    }

    @Test
    fun malformedInputIsAnException() {
        val inputs = listOf(
            byteArrayOf(),
            byteArrayOf(0xc1.toByte()),
            byteArrayOf(0xa5.toByte(), 'a'.code.toByte()),
            byteArrayOf(0xdd.toByte(), 0x7f, -1, -1, -1),
            byteArrayOf(0xc6.toByte(), -1, -1, -1, -1),
            ByteArray(2000) { 0x91.toByte() },
        )
        for (input in inputs) assertThrows<ProtocolException> { MessagePackReader(input, 0, input.size).value() }
        assertThrows<InvalidArgumentException> { MessagePackWriter().value(HubValue.Timestamp(0, 1_000_000_000u)) }
    }
}
