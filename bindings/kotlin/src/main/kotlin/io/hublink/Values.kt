@file:OptIn(ExperimentalSerializationApi::class, InternalSerializationApi::class, ExperimentalEncodingApi::class, ExperimentalTime::class)

package io.hublink

import io.hublink.ffi.HubValue
import io.hublink.ffi.MapEntry
import kotlin.io.encoding.Base64
import kotlin.reflect.KClass
import kotlin.io.encoding.ExperimentalEncodingApi
import kotlin.time.ExperimentalTime
import kotlin.time.Instant
import kotlinx.serialization.ExperimentalSerializationApi
import kotlinx.serialization.InternalSerializationApi
import kotlinx.serialization.KSerializer
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonElement
import kotlinx.serialization.json.JsonNull
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.JsonUnquotedLiteral
import kotlinx.serialization.json.booleanOrNull
import kotlinx.serialization.json.doubleOrNull
import kotlinx.serialization.json.longOrNull
import kotlinx.serialization.serializerOrNull

/**
 * Kotlin values ↔ [HubValue], the core's dynamic value.
 *
 * Plain values (null, Boolean, integers, Float, Double, String, ByteArray, lists, arrays, maps,
 * [HubValue], [JsonElement]) are converted directly, keeping their exact type (a ByteArray is
 * binary, a Float is a 32-bit float). Any other object goes through kotlinx.serialization
 * (a `@Serializable` class) as a JSON element. Results are decoded the same way: a [HubValue]
 * becomes a JSON element (bytes as base64, timestamps as ISO-8601 text, as the JSON protocol
 * writes them) and is decoded with the requested type's serializer.
 */
object HubValues {
    /** The JSON configuration of the kotlinx.serialization mapping. */
    val json: Json = Json {
        ignoreUnknownKeys = true
        encodeDefaults = true
        explicitNulls = true
    }

    /** [value] as a hub value; throws [InvalidArgumentException] for what cannot be one. */
    fun encode(value: Any?): HubValue = when (value) {
        null, Unit -> HubValue.Null
        is HubValue -> value
        is JsonElement -> fromJson(value)
        is Boolean -> HubValue.Bool(value)
        is Byte -> HubValue.Int64(value.toLong())
        is Short -> HubValue.Int64(value.toLong())
        is Int -> HubValue.Int64(value.toLong())
        is Long -> HubValue.Int64(value)
        is UByte -> HubValue.Int64(value.toLong())
        is UShort -> HubValue.Int64(value.toLong())
        is UInt -> HubValue.Int64(value.toLong())
        is ULong -> if (value <= Long.MAX_VALUE.toULong()) HubValue.Int64(value.toLong()) else HubValue.UInt64(value)
        is Float -> HubValue.Float32(value)
        is Double -> HubValue.Float64(value)
        is String -> HubValue.Text(value)
        is Char -> HubValue.Text(value.toString())
        is ByteArray -> HubValue.Bytes(value)
        is Instant -> HubValue.Timestamp(value.epochSeconds, value.nanosecondsOfSecond.toUInt())
        is Array<*> -> HubValue.Array(value.map(::encode))
        is Iterable<*> -> HubValue.Array(value.map(::encode))
        is Map<*, *> -> HubValue.Map(value.map { (k, v) -> MapEntry(encode(k), encode(v)) })
        else -> {
            @Suppress("UNCHECKED_CAST")
            val serializer = value::class.serializerOrNull() as KSerializer<Any>?
                ?: throw InvalidArgumentException(
                    "a ${value::class.simpleName} is not a hub value: use a @Serializable class", null,
                )
            fromJson(json.encodeToJsonElement(serializer, value))
        }
    }

    /** [value] with [serializer] as a hub value. */
    fun <T> encode(serializer: KSerializer<T>, value: T): HubValue = fromJson(json.encodeToJsonElement(serializer, value))

    /** What [decodePlain] returns when it cannot decode the value directly. */
    @PublishedApi
    internal val NotPlain = Any()

    /**
     * [value] as [type] without going through a JSON element, for the plain cases that
     * kotlinx.serialization would decode to the same value (text as String, an integer as Long
     * or, when it fits, Int, a boolean, a 64-bit float as Double); otherwise [NotPlain].
     */
    @PublishedApi
    internal fun decodePlain(value: HubValue, type: KClass<*>): Any? = when {
        type == String::class && value is HubValue.Text -> value.value
        type == Long::class && value is HubValue.Int64 -> value.value
        type == Int::class && value is HubValue.Int64 && value.value in Int.MIN_VALUE..Int.MAX_VALUE -> value.value.toInt()
        type == Boolean::class && value is HubValue.Bool -> value.value
        type == Double::class && value is HubValue.Float64 -> value.value
        else -> NotPlain
    }

    /** [value] decoded with [serializer]; throws [InvalidArgumentException] when it does not fit. */
    fun <T> decode(serializer: KSerializer<T>, value: HubValue): T = try {
        json.decodeFromJsonElement(serializer, toJson(value))
    } catch (e: IllegalArgumentException) {
        throw InvalidArgumentException("the value does not fit ${serializer.descriptor.serialName}: ${e.message}", null)
    }

    /** A JSON element as a hub value (object keys are text). */
    fun fromJson(element: JsonElement): HubValue = when (element) {
        is JsonNull -> HubValue.Null
        is JsonPrimitive -> when {
            element.isString -> HubValue.Text(element.content)
            element.booleanOrNull != null -> HubValue.Bool(element.booleanOrNull!!)
            element.longOrNull != null -> HubValue.Int64(element.longOrNull!!)
            element.content.toULongOrNull() != null -> HubValue.UInt64(element.content.toULong())
            else -> HubValue.Float64(element.doubleOrNull ?: throw InvalidArgumentException("not a number: ${element.content}", null))
        }
        is JsonArray -> HubValue.Array(element.map(::fromJson))
        is JsonObject -> HubValue.Map(element.map { (k, v) -> MapEntry(HubValue.Text(k), fromJson(v)) })
    }

    /** A hub value as a JSON element (as the JSON protocol would carry it). */
    fun toJson(value: HubValue): JsonElement = when (value) {
        is HubValue.Null -> JsonNull
        is HubValue.Bool -> JsonPrimitive(value.value)
        is HubValue.Int64 -> JsonPrimitive(value.value)
        is HubValue.UInt64 -> JsonUnquotedLiteral(value.value.toString())
        is HubValue.Float32 -> JsonPrimitive(value.value)
        is HubValue.Float64 -> JsonPrimitive(value.value)
        is HubValue.Text -> JsonPrimitive(value.value)
        is HubValue.Bytes -> JsonPrimitive(Base64.encode(value.value))
        is HubValue.Array -> JsonArray(value.items.map(::toJson))
        is HubValue.Map -> JsonObject(value.entries.associate { keyText(it.key) to toJson(it.value) })
        is HubValue.Timestamp ->
            JsonPrimitive(Instant.fromEpochSeconds(value.seconds, value.nanoseconds.toLong()).toString())
        is HubValue.Extension -> JsonObject(
            mapOf("type" to JsonPrimitive(value.typeCode), "data" to JsonPrimitive(Base64.encode(value.data))),
        )
    }

    private fun keyText(key: HubValue): String = when (val k = toJson(key)) {
        is JsonPrimitive -> k.content
        else -> k.toString()
    }
}
