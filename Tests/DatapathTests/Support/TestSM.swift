import Foundation
import Logging
import SMCore
import Testing
import VHD

/// An SR driver over a plain directory, enough to run the SMAPI service's VDI and datapath
/// commands in tests (the EXT driver lives in a target this one does not depend on).
final class DirectoryDriver: SRDriver {
    let directory: String
    init(directory: String) { self.directory = directory }
    let info = SMAPIDriverInfo(name: "test", description: "test", vendor: "", copyright: "", driverVersion: "1",
                               capabilities: [], configuration: [])
    let storageType = "ext"
    /// `ext`: the `swiftsm-datapath` processes rebuild the container with the EXT driver from
    /// the plug record `TestSM` writes for the directory.
    let type = "ext"
    var requiredKeys: [(key: String, missing: SMErrorCode)] { [] }
    func probe(_ context: DriverContext) throws -> String { "" }
    func create(_ context: DriverContext, size: UInt64) throws {}
    func delete(_ context: DriverContext) throws {}
    func attach(_ context: DriverContext) throws {}
    func detach(_ context: DriverContext) throws {}
    func container(_ context: DriverContext) throws -> any VolumeContainer { try DirectoryContainer(directory: directory) }
}

/// The SMAPI service over a scratch SR: `<scratch>/sr` holds the VHDs, `<scratch>/run` is the
/// run directory (short enough for the sockets), datapaths are real `swiftsm-datapath` processes.
struct TestSM {
    let scratch: Scratch
    let sr: String
    let srDirectory: String
    let run: RunDirectory
    let service: SMAPIService

    init(_ scratch: Scratch, run root: String? = nil, sr: String = UUID().uuidString.lowercased()) throws {
        self.scratch = scratch
        self.sr = sr
        srDirectory = scratch.path + "/sr"
        try FileManager.default.createDirectory(atPath: srDirectory, withIntermediateDirectories: true)
        run = RunDirectory(root: root ?? scratch.path + "/run")
        // What an EXT SR on a directory holds and what its attach records, so that datapath
        // processes (which link the real drivers) reach the same directory.
        try Data((sr + "\n").utf8).write(to: URL(fileURLWithPath: srDirectory + "/.swiftsm-sr"))
        try SRPlugRecord(sr: sr, deviceConfig: ["path": srDirectory]).write(run: run)
        service = SMAPIService(driver: DirectoryDriver(directory: srDirectory), run: run,
                               log: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })) { _ in NoCallbacks() }
    }

    /// Runs `command` on VDI `vdi`.
    func call(_ command: SMAPICommand, vdi: String? = nil, args: [String] = [], driverParams: SMAPIStringMap? = nil) -> XMLRPCMethodResponse {
        service.handle(SMAPIRequest(command: command, args: args, deviceConfig: ["SRmaster": "true"], srUUID: sr,
                                    vdiLocation: vdi, vdiUUID: vdi, driverParams: driverParams))
    }

    /// Runs `command` and requires success.
    @discardableResult
    func ok(_ command: SMAPICommand, vdi: String? = nil, args: [String] = [], driverParams: SMAPIStringMap? = nil,
            sourceLocation: SourceLocation = #_sourceLocation) throws -> XMLRPCValue {
        let r = call(command, vdi: vdi, args: args, driverParams: driverParams)
        if let f = r.faultValue { Issue.record("\(command) failed: \(f)", sourceLocation: sourceLocation) }
        return try #require(r.value, sourceLocation: sourceLocation)
    }

    /// Creates a VDI of `mib` MiB and returns its uuid.
    func createVDI(mib: UInt64) throws -> String {
        let uuid = UUID().uuidString.lowercased()
        try ok(.vdiCreate, vdi: uuid, args: [String(mib << 20)])
        return uuid
    }

    /// The VHD of VDI `uuid`.
    func vhd(_ uuid: String) -> String { srDirectory + "/" + uuid + ".vhd" }

    /// The datapath folder of VDI `uuid`.
    func datapath(_ uuid: String) -> DatapathDirectory { run.datapath(sr: sr, vdi: uuid) }

    /// The pid in the datapath's pid file.
    func pid(_ uuid: String) -> pid_t? {
        (try? String(contentsOfFile: datapath(uuid).pidFile, encoding: .utf8)).flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The NBD URI of VDI `uuid`'s datapath.
    func uri(_ uuid: String) -> String { datapath(uuid).uri(export: uuid) }
}

/// CLOCK_MONOTONIC in nanoseconds (the clock Python's time.monotonic_ns reads).
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
