import Foundation
import Testing
@testable import Toolstack
#if canImport(Glibc)
import Glibc
#endif

/// The NBD client (libnbd) and the copier against a real NBD server (qemu-nbd serving qcow2 and
/// raw files): allocation maps, full copies into new and used destinations, delta copies against
/// a base, with the results compared by hash with `qemu-img convert`.
@Suite(.serialized) struct CopierTests {
    private let MiB: Int64 = 1 << 20

    /// qemu-nbd serving `file` (format `format`) on a unix socket, until `stop`.
    private final class Served {
        let process = Process()
        let export: NBDExport

        init(_ file: String, format: String, dir: String, name: String) throws {
            let socket = dir + "/" + name + ".sock"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/qemu-nbd")
            process.arguments = ["-f", format, "--socket=\(socket)", "-x", name, "-t", "--shared=16", file]
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(20_000) }
            export = NBDExport(paramsNBD: "nbd:unix:\(socket):exportname=\(name)")!
        }

        func stop() {
            process.terminate()
            process.waitUntilExit()
        }
    }

    private func sh(_ command: String) throws -> String {
        let (status, out, err) = try Executables.run("/bin/sh", ["-c", command])
        #expect(status == 0, "\(command): \(err)")
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "copier-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A 16 MiB qcow2 with data at 0 (64 KiB) and 6 MiB (1 MiB): its allocation map shows them,
    /// and a full copy into an empty raw file moves only those two chunks and equals qemu-img's.
    @Test func fullCopyMovesOnlyAllocatedChunks() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try sh("cd \(dir) && qemu-img create -q -f qcow2 src.qcow2 16M && qemu-io -q -f qcow2 -c 'write -P 0x5a 0 64k' -c 'write -P 0x33 6M 1M' src.qcow2 && truncate -s 16M dst.raw")
        let src = try Served(dir + "/src.qcow2", format: "qcow2", dir: dir, name: "src")
        defer { src.stop() }
        let dst = try Served(dir + "/dst.raw", format: "raw", dir: dir, name: "dst")
        defer { dst.stop() }
        let client = try NBDClient(socketPath: src.export.socketPath, exportName: "src")
        #expect(client.size == 16 * MiB)
        #expect(client.hasAllocationMap)
        let map = try client.allocation(offset: 0, length: 16 * MiB)
        #expect(map.first?.offset == 0 && map.reduce(0) { $0 + $1.length } == 16 * MiB)
        let data = map.filter { !$0.zero }
        #expect(data.contains { $0.offset == 0 } && data.contains { $0.offset <= 6 * MiB && $0.offset + $0.length >= 7 * MiB })
        #expect(data.reduce(0) { $0 + $1.length } < 4 * MiB)

        let copier = VDICopier(source: src.export, destination: dst.export)
        let plan = try copier.plan(size: 16 * MiB, destinationIsNew: true)
        #expect(plan.map(\.offset) == [0, 6 * MiB] && plan.allSatisfy { $0.action == .copy })
        let seen = ProgressRecorder()
        let written = try copier.run(plan, progress: { seen.set($0) }, cancelled: { false })
        #expect(written == 4 * MiB && seen.value == 4 * MiB)
        _ = try sh("cd \(dir) && qemu-img convert -O raw src.qcow2 ref.raw")
        #expect(try sh("sha256sum < \(dir)/dst.raw") == (try sh("sha256sum < \(dir)/ref.raw")))
    }

    /// A copy into a destination holding data where the source has none zeroes it there, and a
    /// cancelled copy stops with `.cancelled`.
    @Test func copyIntoUsedDestinationZeroesStaleDataAndCancelStops() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try sh("cd \(dir) && qemu-img create -q -f qcow2 src.qcow2 16M && qemu-io -q -f qcow2 -c 'write -P 0x11 2M 1M' src.qcow2 && qemu-img create -q -f qcow2 dst.qcow2 16M && qemu-io -q -f qcow2 -c 'write -P 0x77 10M 2M' -c 'write -P 0x77 2M 4k' dst.qcow2")
        let src = try Served(dir + "/src.qcow2", format: "qcow2", dir: dir, name: "src")
        defer { src.stop() }
        let dst = try Served(dir + "/dst.qcow2", format: "qcow2", dir: dir, name: "dst")
        let copier = VDICopier(source: src.export, destination: dst.export, connections: 2)
        let plan = try copier.plan(size: 16 * MiB, destinationIsNew: false)
        #expect(plan.map { [$0.offset: $0.action] } == [[2 * MiB: .copy], [10 * MiB: .zero]])
        #expect(throws: VDICopyError.self) { try copier.run(plan, progress: { _ in }, cancelled: { true }) }
        try copier.run(plan, progress: { _ in }, cancelled: { false })
        dst.stop()
        _ = try sh("cd \(dir) && qemu-img convert -O raw src.qcow2 a.raw && qemu-img convert -O raw dst.qcow2 b.raw")
        #expect(try sh("sha256sum < \(dir)/a.raw") == (try sh("sha256sum < \(dir)/b.raw")))
    }

    /// A delta copy (source = base + changes in an overlay) into a copy of the base writes only
    /// the chunks that differ and gives the source's content.
    @Test func deltaCopyWritesOnlyDifferingChunks() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try sh("""
            cd \(dir) && qemu-img create -q -f qcow2 base.qcow2 32M \
            && qemu-io -q -f qcow2 -c 'write -P 0x01 0 8M' -c 'write -P 0x02 20M 4M' base.qcow2 \
            && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 \
            && qemu-io -q -f qcow2 -c 'write -P 0x09 4M 64k' -c 'write -P 0x0a 30M 1M' top.qcow2 \
            && qemu-img convert -O raw base.qcow2 dst.raw
            """)
        let src = try Served(dir + "/top.qcow2", format: "qcow2", dir: dir, name: "top")
        defer { src.stop() }
        let base = try Served(dir + "/base.qcow2", format: "qcow2", dir: dir, name: "base")
        defer { base.stop() }
        let dst = try Served(dir + "/dst.raw", format: "raw", dir: dir, name: "dst")
        let copier = VDICopier(source: src.export, destination: dst.export, base: base.export)
        let plan = try copier.plan(size: 32 * MiB, destinationIsNew: false)
        #expect(plan.allSatisfy { $0.action == .delta })
        let written = try copier.run(plan, progress: { _ in }, cancelled: { false })
        #expect(written == 4 * MiB)   // the chunks at 4 MiB and 30 MiB
        dst.stop()
        _ = try sh("cd \(dir) && qemu-img convert -O raw top.qcow2 ref.raw")
        #expect(try sh("sha256sum < \(dir)/dst.raw") == (try sh("sha256sum < \(dir)/ref.raw")))
    }
}

/// The last progress a copy reported.
private final class ProgressRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var last: Int64 = 0
    var value: Int64 { lock.lock(); defer { lock.unlock() }; return last }
    func set(_ v: Int64) { lock.lock(); last = max(last, v); lock.unlock() }
}
