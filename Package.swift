// swift-tools-version:6.0
//
// wheelfarm: a build farm that releases CPU-variant Python wheels.
// Dependencies point one way (see docs/ARCHITECTURE.md):
//   wheelfarm → FarmCommands → Release → (Scheduling, Remote, Wheels, Publishing)
//            → (Inventory, Recipes) → FarmCore
import PackageDescription

// Linux only: the coordinator and its agents rely on Glibc, /proc, flock(2) and setsid, so no
// other platform is declared.
let package = Package(
    name: "wheelfarm",
    products: [
        .executable(name: "wheelfarm", targets: ["wheelfarm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // Thin entry point: everything lives in FarmCommands.
        .executableTarget(name: "wheelfarm", dependencies: ["FarmCommands"]),

        // One file per subcommand; option groups shared between them.
        .target(name: "FarmCommands", dependencies: [
            "FarmCore", "Inventory", "Recipes", "Scheduling", "Remote", "Wheels", "Publishing", "Release", "Agents",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], exclude: ["README.md"]),

        // Shared vocabulary: CPU arch and capabilities, PEP 440 versions, Python versions, digests, errors.
        .target(name: "FarmCore", dependencies: [
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Yams", package: "Yams"),
        ], exclude: ["README.md"]),

        // Build hosts: YAML loading with file/line/key diagnostics, groups, defaults, hot reload.
        .target(name: "Inventory", dependencies: [
            "FarmCore", .product(name: "Yams", package: "Yams"),
        ], exclude: ["README.md"]),

        // Recipes and variants as data; job matrix expansion.
        .target(name: "Recipes", dependencies: [
            "FarmCore", .product(name: "Yams", package: "Yams"),
        ], exclude: ["README.md"]),

        // Pure placement policy and simulator: no I/O.
        .target(name: "Scheduling", dependencies: [
            "FarmCore", "Inventory", "Recipes", .product(name: "HeapModule", package: "swift-collections"),
        ], exclude: ["README.md"]),

        // libssh2, imported only by Remote.
        .systemLibrary(name: "CLibSSH2", pkgConfig: "libssh2", providers: [.apt(["libssh2-1-dev"])]),

        // Transports (SSH, local): exec, upload, download.
        .target(name: "Remote", dependencies: [
            "FarmCore", "Inventory", "CLibSSH2",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["README.md"]),

        // Build-host agents: probe reports, build protocol, agent bundle, and running them over a transport.
        .target(name: "Agents", dependencies: [
            "FarmCore", "Inventory", "Recipes", "Remote",
            .product(name: "Logging", package: "swift-log"),
        ], exclude: ["README.md"]),

        // Zydis x86 decoder, imported only by Wheels (ISA audit).
        // Debian 12's libzydis-dev 4.0 ships no pkg-config file: the modulemap links Zydis and Zycore.
        .systemLibrary(name: "CZydis", providers: [.apt(["libzydis-dev"])]),

        // System zlib (raw inflate/deflate, CRC-32), imported only by Wheels.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Wheel format: read, verify, audit, rewrite.
        .target(name: "Wheels", dependencies: [
            "FarmCore", "Recipes", "CZydis", "CZlib",
            .product(name: "Crypto", package: "swift-crypto"),
        ], exclude: ["README.md"]),

        // Upload-API indexes, local index, GitHub Releases, credentials.
        .target(name: "Publishing", dependencies: [
            "FarmCore", "Wheels",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ], exclude: ["README.md"]),

        // The release pipeline: phases, journal, report.
        .target(name: "Release", dependencies: [
            "FarmCore", "Inventory", "Recipes", "Scheduling", "Remote", "Agents", "Wheels", "Publishing",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ], exclude: ["README.md"]),

        // Benchmarks/scheduling.sh: makespan vs lower bound, first-fit and one host; placement speed.
        .executableTarget(name: "scheduling-benchmark", dependencies: ["FarmCore", "Inventory", "Recipes", "Scheduling"],
                          path: "Benchmarks/scheduling"),

        // Test-only helpers: sshd farm, index server, fixtures.
        .target(name: "FarmTestSupport", dependencies: ["FarmCore", "Inventory"], exclude: ["README.md", "Servers"]),

        // Benchmarks/ssh-download.sh: wheelfarm's SSH download against OpenSSH scp.
        .executableTarget(name: "ssh-download-bench", dependencies: [
            "Remote", "FarmTestSupport", "Inventory", .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/ssh-download"),

        // Benchmark: wheelfarm's upload client vs twine (Benchmarks/upload.sh).
        .executableTarget(name: "upload-benchmark", dependencies: [
            "Publishing", "FarmTestSupport", "FarmCore", .product(name: "Logging", package: "swift-log"),
        ], path: "Benchmarks/upload-benchmark"),

        .testTarget(name: "FarmCoreTests", dependencies: ["FarmCore"]),
        .testTarget(name: "InventoryTests", dependencies: ["Inventory", "FarmTestSupport"]),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes"]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling", "FarmTestSupport"]),
        .testTarget(name: "RemoteTests", dependencies: [
            "Remote", "FarmTestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "AgentsTests", dependencies: [
            "Agents", "FarmCore", "Inventory", "Recipes", "FarmTestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "WheelsTests", dependencies: ["Wheels", "FarmTestSupport"]),
        .testTarget(name: "PublishingTests", dependencies: [
            "Publishing", "FarmTestSupport", "FarmCore", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ReleaseTests", dependencies: [
            "Release", "FarmTestSupport", .product(name: "InMemoryLogging", package: "swift-log"),
        ]),
        .testTarget(name: "FarmCommandsTests", dependencies: ["FarmCommands", "FarmTestSupport"]),
    ]
)
