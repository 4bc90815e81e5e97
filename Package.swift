// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SwiftSM",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "VHD", targets: ["VHD"]),
        .library(name: "SMCore", targets: ["SMCore"]),
        .library(name: "LVM", targets: ["LVM"]),
        .executable(name: "vhd", targets: ["vhd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // C shims over Debian's libraries (system-library targets, found with pkg-config).
        .systemLibrary(name: "CISCSI", path: "Sources/CLibs/CISCSI", pkgConfig: "libiscsi",
                       providers: [.apt(["libiscsi-dev"])]),
        .systemLibrary(name: "CNBD", path: "Sources/CLibs/CNBD", pkgConfig: "libnbd",
                       providers: [.apt(["libnbd-dev"])]),
        .systemLibrary(name: "CNFS", path: "Sources/CLibs/CNFS", pkgConfig: "libnfs",
                       providers: [.apt(["libnfs-dev"])]),
        .systemLibrary(name: "CDeviceMapper", path: "Sources/CLibs/CDeviceMapper", pkgConfig: "devmapper",
                       providers: [.apt(["libdevmapper-dev"])]),
        .systemLibrary(name: "CLVM2Cmd", path: "Sources/CLibs/CLVM2Cmd",
                       providers: [.apt(["liblvm2-dev"])]),
        .systemLibrary(name: "CXenCtrl", path: "Sources/CLibs/CXenCtrl", pkgConfig: "xencontrol",
                       providers: [.apt(["libxen-dev"])]),

        // The VHD engine: formats, images, chains and operations over BlockStore.
        .target(name: "VHD",
                dependencies: [.product(name: "SystemPackage", package: "swift-system")],
                path: "Sources/VHD"),
        // LVM2 on-disk metadata (label, PV header, metadata areas, text format, VG/LV model) over BlockStore.
        .target(name: "LVM", dependencies: ["VHD"], path: "Sources/LVM"),
        // The wire module beneath SMCore and Toolstack: the XML-RPC codec.
        .target(name: "XenAPIWire", path: "Sources/XenAPIWire"),
        // Changed-block tracking logs in blktap's `cbt-util` format, over a BlockStore.
        .target(name: "CBT", dependencies: ["VHD"], path: "Sources/CBT"),
        // The storage manager core (SMAPIv1, VHD repository, journal, locks, datapath, GC).
        .target(name: "SMCore", dependencies: ["VHD", "CBT", "XenAPIWire", "LibNBD", .product(name: "Logging", package: "swift-log"),
                                               .product(name: "NIOCore", package: "swift-nio"),
                                               .product(name: "NIOPosix", package: "swift-nio"),
                                               .product(name: "SystemPackage", package: "swift-system")],
                path: "Sources/SMCore"),
        // SR drivers.
        .target(name: "EXTDriver", dependencies: ["SMCore", "VHD"], path: "Sources/Drivers/EXT"),
        .target(name: "NFSDriver", dependencies: ["SMCore", "VHD", "CNFS", "RemoteStorage"], path: "Sources/Drivers/NFS"),
        // What clients of storage servers share: the hold policy through an outage, its tracking,
        // the TCP reachability probe.
        .target(name: "RemoteStorage", path: "Sources/RemoteStorage"),
        // iSCSI in user space through libiscsi: sessions, discovery, LUN identity, a BlockStore over a LUN.
        .target(name: "ISCSI", dependencies: ["VHD", "CISCSI", "RemoteStorage"], path: "Sources/ISCSI"),
        // The LVM-over-iSCSI SR (LVHD): the iSCSI LUN as the PV of our own LVM2 engine, VHDs in LVs.
        .target(name: "LVMoISCSIDriver", dependencies: ["SMCore", "LVM", "VHD", "ISCSI", "RemoteStorage", .product(name: "Logging", package: "swift-log")], path: "Sources/Drivers/LVMoISCSI"),
        // Every driver by name, for the executables that must find one again (smdriver, the data path).
        .target(name: "DriverRegistry", dependencies: ["SMCore", "EXTDriver", "NFSDriver", "LVMoISCSIDriver", .product(name: "Logging", package: "swift-log")], path: "Sources/Drivers/Registry"),
        // A blocking NBD client over Debian's libnbd: the toolstack's copies, a datapath's mirror.
        .target(name: "LibNBD", dependencies: ["CNBD"], path: "Sources/LibNBD"),
        // The thin toolstack on top of SMAPIv1.
        .target(name: "Toolstack", dependencies: ["XenAPIWire", "LibNBD", "VHD", .product(name: "GRDB", package: "GRDB.swift"),
                                                  .product(name: "Logging", package: "swift-log"),
                                                  .product(name: "NIOCore", package: "swift-nio"),
                                                  .product(name: "NIOPosix", package: "swift-nio"),
                                                  .product(name: "NIOHTTP1", package: "swift-nio"),
                                                  .product(name: "NIOSSL", package: "swift-nio-ssl")],
                path: "Sources/Toolstack", linkerSettings: [.linkedLibrary("crypt")]),

        // The PostgreSQL store of the toolstack (a pool's hosts share one database), apart so that
        // what does not need it does not build it.
        .target(name: "ToolstackPostgres", dependencies: ["Toolstack", .product(name: "PostgresNIO", package: "postgres-nio")],
                path: "Sources/ToolstackPostgres"),

        // Executables: thin, parse arguments, call a library, print.
        .executableTarget(name: "vhd",
                          dependencies: ["VHD", "CBT", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Commands/vhd"),

        .executableTarget(name: "smdriver",
                          dependencies: ["SMCore", "DriverRegistry", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Commands/smdriver"),
        .executableTarget(name: "toolstackd",
                          dependencies: ["Toolstack", "ToolstackPostgres", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          path: "Sources/Commands/toolstackd"),
        .executableTarget(name: "xe", dependencies: ["Toolstack"], path: "Sources/Commands/xe"),
        .executableTarget(name: "swiftsm-datapath", dependencies: ["SMCore", "DriverRegistry",
                                                                 .product(name: "Logging", package: "swift-log")],
                          path: "Sources/Commands/swiftsm-datapath"),
        .executableTarget(name: "vhd-bench",
                          dependencies: ["VHD", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/Commands/vhd-bench"),
        // ISCSIStore's throughput on a LUN, for bench/iscsi.sh.
        .executableTarget(name: "iscsi-bench", dependencies: ["ISCSI", "VHD"], path: "Sources/Commands/iscsi-bench"),

        .testTarget(name: "VHDTests", dependencies: ["VHD", "TestSupport"], path: "Tests/VHDTests"),
        // What several test suites share: lvm2's own tools on a loop device, SHA-256.
        .target(name: "TestSupport", dependencies: ["VHD"], path: "Tests/TestSupport"),
        .testTarget(name: "LVMTests", dependencies: ["LVM", "VHD", "TestSupport"], path: "Tests/LVMTests"),
        .testTarget(name: "ISCSITests", dependencies: ["ISCSI", "VHD", "RemoteStorage", "TestSupport"], path: "Tests/ISCSITests"),
        .target(name: "FakeXapi", dependencies: ["SMCore"], path: "Tests/FakeXapi"),
        .testTarget(name: "SMCoreTests", dependencies: ["SMCore", "CBT", "FakeXapi"], path: "Tests/SMCoreTests"),
        .testTarget(name: "EXTDriverTests", dependencies: ["EXTDriver", "NFSDriver", "LVMoISCSIDriver", "ISCSI", "LVM", "TestSupport",
                                                            "RemoteStorage", "SMCore", "CBT", "VHD", "FakeXapi"], path: "Tests/EXTDriverTests"),
        .testTarget(name: "ToolstackTests", dependencies: ["Toolstack", "ToolstackPostgres", "XenAPIWire"], path: "Tests/ToolstackTests"),
        .testTarget(name: "DatapathTests", dependencies: ["SMCore", "CBT", "VHD"], path: "Tests/DatapathTests"),
        // A container with LV semantics (extents of one preallocated file) for the contract suite.
        .target(name: "TestContainers", dependencies: ["SMCore", "VHD"], path: "Tests/TestContainers"),
        .testTarget(name: "ExtentContainerTests", dependencies: ["TestContainers", "SMCore", "VHD"],
                    path: "Tests/ExtentContainerTests"),
        // One suite run against every container (`swift test --filter Contract`).
        .testTarget(name: "ContractTests", dependencies: ["TestContainers", "SMCore", "CBT", "VHD", "NFSDriver", "LVMoISCSIDriver", "LVM",
                                                          .product(name: "Logging", package: "swift-log")],
                    path: "Tests/ContractTests"),
        // The LVHD container against lvm2's own tools, and its space and journal rules.
        .testTarget(name: "LVHDTests", dependencies: ["LVMoISCSIDriver", "LVM", "TestSupport", "SMCore", "VHD",
                                                      .product(name: "Logging", package: "swift-log")],
                    path: "Tests/LVHDTests"),
    ],
    swiftLanguageModes: [.v6]
)
