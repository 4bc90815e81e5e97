import Foundation
import SMCore
import Testing
import VHD

/// The NBD server against the real clients users run: qemu-img, nbdinfo, nbdcopy, fio.
@Suite struct NBDClientInteropTests {
    /// A two-image chain: parent data at 1 MiB (4 MiB), child data at 3 MiB (2 MiB, over the
    /// parent's) and one sector at 40 MiB. Returns the child's path and the whole disk's bytes.
    static func chain(_ s: Scratch) throws -> (leaf: String, disk: [UInt8]) {
        let parent = try s.dynamicVHD("parent.vhd", mib: 64)
        try s.write(parent, pattern(4 << 20, seed: 1), at: 1 << 20)
        let leaf = s.path + "/leaf.vhd"
        try Snapshot.create(child: leaf, parent: parent, provider: s.provider)
        try s.write(leaf, pattern(2 << 20, seed: 2), at: 3 << 20)
        try s.write(leaf, pattern(512, seed: 3), at: 40 << 20)
        return (leaf, try s.read(leaf, count: 64 << 20, at: 0))
    }

    @Test func qemuImgInfoConvertCompare() throws {
        let s = try Scratch(); defer { s.remove() }
        let (leaf, disk) = try Self.chain(s)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let info = try Command.check("qemu-img", ["info", "-f", "raw", dp.uri])
        #expect(info.contains("67108864 bytes"))
        let out = s.path + "/out.raw"
        try Command.check("qemu-img", ["convert", "-f", "raw", "-O", "raw", dp.uri, out])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == disk)
        try Command.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", dp.uri, out])
        // The Python SM's params_nbd form is a qemu filename too.
        try Command.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", dp.directory.paramsNBD(export: dp.export), out])
    }

    @Test func nbdinfoListsTheExportAndMapsTheChainsAllocation() throws {
        let s = try Scratch(); defer { s.remove() }
        let (leaf, _) = try Self.chain(s)
        let dp = try LocalDatapath(s, leaf: leaf, export: "vdi-1"); defer { dp.stop() }
        let list = try Command.check("nbdinfo", ["--list", "nbd+unix://?socket=" + dp.directory.nbdSocket])
        #expect(list.contains("export=\"vdi-1\""))
        #expect(list.contains("base:allocation"))
        let map = try Command.check("nbdinfo", ["--map", dp.uri])
        let got = map.split(separator: "\n").map { line -> [UInt64] in
            line.split(separator: " ", omittingEmptySubsequences: true).prefix(3).compactMap { UInt64($0) }
        }
        let expected = try AllocationMap.extents(VHDChain(path: leaf, provider: s.provider))
            .map { [$0.offset, $0.length, $0.allocated ? 0 : 3] }
        #expect(got == expected)
        #expect(expected.contains { $0 == [1 << 20, 4 << 20, 0] }, "parent and child data merge into one extent")
    }

    /// `qemu:allocation-depth` as qemu-nbd serves it for a backing chain: nbdinfo's map says
    /// which image each range reads from, and the stats name those images.
    @Test func nbdinfoMapsWhichImageEachRangeReadsFrom() throws {
        let s = try Scratch(); defer { s.remove() }
        let (middle, _) = try Self.chain(s)
        let leaf = s.path + "/top.vhd"
        try Snapshot.create(child: leaf, parent: middle, provider: s.provider)
        try s.write(leaf, pattern(1024, seed: 6), at: (2 << 20) - 512)       // over the parent's data and a hole
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let list = try Command.check("nbdinfo", ["--list", "nbd+unix://?socket=" + dp.directory.nbdSocket])
        #expect(list.contains("qemu:allocation-depth"))
        let map = try Command.check("nbdinfo", ["--map=qemu:allocation-depth", dp.uri])
        let got = map.split(separator: "\n").map { line -> [UInt64] in
            line.split(separator: " ", omittingEmptySubsequences: true).prefix(3).compactMap { UInt64($0) }
        }
        let M: UInt64 = 1 << 20
        #expect(got == [[0, M, 0], [M, M - 512, 3], [2 * M - 512, 1024, 1], [2 * M + 512, M - 512, 3], [3 * M, 2 * M, 2],
                        [5 * M, 35 * M, 0], [40 * M, 512, 2], [40 * M + 512, 24 * M - 512, 0]], "\(map)")
        #expect(map.contains("local") && map.contains("backing depth 3") && map.contains("absent"), "\(map)")
        let uuids = try [leaf, middle, s.path + "/parent.vhd"].map { path in
            try VHDImage(store: try s.provider.open(path, writable: false), path: path, writable: false).footer.uuid.description
        }
        #expect(try dp.control.stats().layers == uuids)
    }

    @Test func nbdcopyWritesReadBackByTheEngineAndAnotherClient() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 32)
        // A sparse source: 3 MiB of data at 5 MiB, 100 KiB at 20 MiB, the rest holes.
        var source = [UInt8](repeating: 0, count: 32 << 20)
        source.replaceSubrange((5 << 20)..<(8 << 20), with: pattern(3 << 20, seed: 4))
        source.replaceSubrange((20 << 20)..<((20 << 20) + 102_400), with: pattern(102_400, seed: 5))
        let src = try s.file("src.raw", source)
        let dp = try LocalDatapath(s, leaf: leaf)
        try Command.check("nbdcopy", ["--flush", src, dp.uri])
        let back = s.path + "/back.raw"
        try Command.check("nbdcopy", [dp.uri, back])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: back))) == source)
        try Command.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", dp.uri, src])
        let stats = try dp.control.stats()
        #expect(stats.bytesWritten >= UInt64(3 << 20) + 102_400)
        #expect(stats.errors == 0)
        dp.stop()
        // File by file: the leaf holds the data and stayed sparse (holes were not written).
        #expect(try s.read(leaf, count: 32 << 20, at: 0) == source)
        let image = try VHDImage(store: try s.provider.open(leaf, writable: false), path: leaf, writable: false)
        #expect(image.allocatedBlockCount <= 3, "only the blocks with data are allocated")
        #expect(s.problems(leaf).isEmpty)
    }

    @Test func fioRandomWritesVerifyThroughNBD() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 64)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let r = try Command.run("fio", ["--name=verify", "--ioengine=nbd", "--uri=" + dp.uri, "--rw=randwrite", "--bs=4k",
                                        "--iodepth=16", "--size=16m", "--verify=crc32c", "--do_verify=1",
                                        "--verify_fatal=1", "--verify_state_save=0", "--output-format=terse"], timeout: 60)
        #expect(r.ok, "fio: \(r.stderr) \(r.stdout.prefix(500))")
        let mixed = try Command.run("fio", ["--name=mixed", "--ioengine=nbd", "--uri=" + dp.uri, "--rw=randrw", "--bs=4k",
                                            "--iodepth=16", "--size=16m", "--runtime=2", "--time_based"], timeout: 60)
        #expect(mixed.ok && mixed.stdout.contains("err= 0"), "fio: \(mixed.stderr)")
        #expect(try dp.control.stats().errors == 0)
    }

    @Test func readOnlyExportRefusesWrites() throws {
        let s = try Scratch(); defer { s.remove() }
        let (leaf, disk) = try Self.chain(s)
        let before = try Data(contentsOf: URL(fileURLWithPath: leaf))
        let dp = try LocalDatapath(s, leaf: leaf, readOnly: true); defer { dp.stop() }
        #expect(try Command.check("nbdinfo", [dp.uri]).contains("is_read_only: true"))
        let src = try s.file("src.raw", pattern(1 << 20, seed: 9))
        #expect(!(try Command.run("nbdcopy", [src, dp.uri])).ok)
        #expect(!(try Command.run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", src, dp.uri])).ok)
        let c = try RawNBDClient(dp.directory.nbdSocket)
        _ = try c.negotiate(dp.export)
        c.request(NBD.Command.write, cookie: 1, offset: 0, length: 512, payload: pattern(512, seed: 1))
        #expect(c.reply()?.error == NBD.Errno.eperm)
        c.request(NBD.Command.writeZeroes, cookie: 2, offset: 0, length: 4096)
        #expect(c.reply()?.error == NBD.Errno.eperm)
        c.request(NBD.Command.read, cookie: 3, offset: 3 << 20, length: 4096)
        let r = try #require(c.reply())
        #expect(r.error == 0 && Array(r.payload.dropFirst(8)) == Array(disk[(3 << 20)..<((3 << 20) + 4096)]))
        dp.stop()
        #expect(try Data(contentsOf: URL(fileURLWithPath: leaf)) == before)
    }

    @Test func servesOverTCPToo() throws {
        let s = try Scratch(); defer { s.remove() }
        let (leaf, disk) = try Self.chain(s)
        let dp = try LocalDatapath(s, leaf: leaf, tcp: true); defer { dp.stop() }
        let port = try #require(dp.datapath.tcpPort)
        let saved = try String(contentsOfFile: dp.directory.tcpPortFile, encoding: .utf8)
        #expect(saved.trimmingCharacters(in: .whitespacesAndNewlines) == String(port))
        let out = s.path + "/tcp.raw"
        try Command.check("nbdcopy", ["nbd://127.0.0.1:\(port)/\(dp.export)", out])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == disk)
    }

    @Test func severalConnectionsAtOnce() throws {
        let s = try Scratch(); defer { s.remove() }
        let (leaf, disk) = try Self.chain(s)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        // nbdcopy with 4 connections (CAN_MULTI_CONN) while qemu-img and nbdinfo run alongside.
        let outputs = (0..<3).map { s.path + "/multi\($0).raw" }
        let results = LockedResults()
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            let r: CommandResult?
            switch i {
            case 0: r = try? Command.run("nbdcopy", ["--connections=4", "--threads=4", dp.uri, outputs[0]])
            case 1: r = try? Command.run("qemu-img", ["convert", "-f", "raw", "-O", "raw", dp.uri, outputs[1]])
            default: r = try? Command.run("nbdcopy", [dp.uri, outputs[2]])
            }
            results.set(i, r?.ok == true)
        }
        #expect(results.all(3))
        for o in outputs { #expect(Array(try Data(contentsOf: URL(fileURLWithPath: o))) == disk) }
        #expect(try dp.control.stats().connectionsTotal >= 6)
    }
}

/// Booleans set from concurrent closures.
final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Bool] = [:]
    func set(_ i: Int, _ v: Bool) { lock.withLock { values[i] = v } }
    func all(_ n: Int) -> Bool { lock.withLock { (0..<n).allSatisfy { values[$0] == true } } }
}
