// swift-tools-version:5.9
// The Swift binding of hublink: the uniffi-generated `HublinkFFI` module (gen/, committed and
// checked fresh by check.sh) over the `hublink_ffiFFI` C module of an XCFramework built on macOS
// by build-xcframework.sh, plus the hand-written `Hublink` layer (Sources/Hublink).
import PackageDescription

let package = Package(
    name: "Hublink",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Hublink", targets: ["Hublink"]),
    ],
    targets: [
        .binaryTarget(name: "hublink_ffiFFI", path: "build/hublink_ffiFFI.xcframework"),
        .target(
            name: "HublinkFFI",
            dependencies: ["hublink_ffiFFI"],
            path: "gen",
            exclude: ["hublink_ffiFFI.h", "hublink_ffiFFI.modulemap"],
            sources: ["HublinkFFI.swift"]
        ),
        .target(name: "Hublink", dependencies: ["HublinkFFI"], path: "Sources/Hublink"),
    ]
)
