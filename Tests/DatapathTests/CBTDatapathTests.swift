import CBT
import Foundation
import SMCore
import Testing
import VHD

/// Changed-block tracking through real `swiftsm-datapath` processes and real NBD clients
/// (qemu-io, nbdcopy): after each snapshot `vdi_list_changed_blocks` equals the blocks the test
/// wrote, computed here from the requests it sent; a kill -9 leaves the log inconsistent.
@Suite struct CBTDatapathTests {
    static let blockSize: UInt64 = 64 << 10

    /// One client request and the blocks it changes.
    struct Op {
        var command: String
        var offset: UInt64
        var length: UInt64
        var blocks: Set<UInt64> { Set((offset / CBTDatapathTests.blockSize)...((offset + length - 1) / CBTDatapathTests.blockSize)) }
    }

    /// A seeded mix of writes (4 KiB, sector-sized, spanning block boundaries), write-zeroes and
    /// discards inside a disk of `size` bytes.
    static func ops(seed: UInt64, count: Int, size: UInt64) -> [Op] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        return (0..<count).map { i in
            let kind = i % 6
            let length: UInt64 = [4096, 512, 96 << 10, 4096, 8192, 128 << 10][kind]
            let offset = (next() % ((size - length) / 512)) * 512
            let command = kind == 3 ? "write -z" : (kind == 5 ? "discard" : "write -P \(i % 250 + 1)")
            return Op(command: command, offset: offset, length: length)
        }
    }

    /// Sends `ops` to `uri` with qemu-io (one process, requests in order; writeback, so that the
    /// writes are plain WRITEs without FUA and may take the event loop's fast and inline paths).
    static func send(_ ops: [Op], to uri: String) throws {
        var args = ["-f", "raw", "-t", "writeback"]
        for o in ops { args += ["-c", "\(o.command) \(o.offset) \(o.length)"] }
        try Command.check("qemu-io", args + [uri])
    }

    /// The blocks a `vdi_list_changed_blocks` answer marks (xapi's bit order: block 0 is the top bit of byte 0).
    static func blocks(_ answer: XMLRPCValue) throws -> Set<UInt64> {
        let text = try #require(answer.stringValue)
        let bytes = try #require(Data(base64Encoded: text))
        var out = Set<UInt64>()
        for (i, b) in bytes.enumerated() { for bit in 0..<8 where b & (0x80 >> bit) != 0 { out.insert(UInt64(i * 8 + bit)) } }
        return out
    }

    static func snapshot(_ sm: TestSM, _ vdi: String) throws -> String {
        try #require(try sm.ok(.vdiSnapshot, vdi: vdi)[member: "uuid"]?.stringValue)
    }

    @Test func listedBlocksAreTheBlocksWritten() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let size: UInt64 = 64 << 20
        let vdi = try sm.createVDI(mib: 64)
        try sm.ok(.vdiEnableCBT, vdi: vdi)
        let logs = CBTLogs(container: try DirectoryContainer(directory: sm.srDirectory))
        #expect(try logs.header(vdi).consistent && logs.header(vdi).size == size)
        try sm.ok(.vdiAttach, vdi: vdi, args: ["true"])
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        #expect(try !logs.header(vdi).consistent, "an active log is marked inconsistent")

        try Self.send(Self.ops(seed: 1, count: 60, size: size), to: sm.uri(vdi))
        let s1 = try Self.snapshot(sm, vdi)
        let round2 = Self.ops(seed: 2, count: 80, size: size)
        try Self.send(round2, to: sm.uri(vdi))
        let s2 = try Self.snapshot(sm, vdi)
        let expected2 = round2.reduce(into: Set<UInt64>()) { $0.formUnion($1.blocks) }
        #expect(try Self.blocks(sm.ok(.vdiListChangedBlocks, vdi: s1, args: [s2])) == expected2)
        #expect(try logs.header(s1).child == s2 && logs.header(s2).child == vdi && logs.header(vdi).parent == s2)

        // A whole-disk copy with nbdcopy, then a few writes: every block changed.
        let src = try s.file("src.raw", pattern(Int(size), seed: 3))
        try Command.check("nbdcopy", [src, sm.uri(vdi)])
        let round3 = Self.ops(seed: 4, count: 10, size: size)
        try Self.send(round3, to: sm.uri(vdi))
        let s3 = try Self.snapshot(sm, vdi)
        #expect(try Self.blocks(sm.ok(.vdiListChangedBlocks, vdi: s2, args: [s3])) == Set(0..<(size / Self.blockSize)))
        #expect(try Self.blocks(sm.ok(.vdiListChangedBlocks, vdi: s1, args: [s3])).count == Int(size / Self.blockSize))

        // Up to the active VDI itself: its datapath is paused for the read, and nothing was written yet.
        let round4 = Self.ops(seed: 5, count: 7, size: size)
        try Self.send(round4, to: sm.uri(vdi))
        let expected4 = round4.reduce(into: Set<UInt64>()) { $0.formUnion($1.blocks) }
        #expect(try Self.blocks(sm.ok(.vdiListChangedBlocks, vdi: s3, args: [vdi])) == expected4)
        #expect(sm.call(.vdiListChangedBlocks, vdi: s3, args: [s1]).faultValue?.code == 460, "not forwards along the chain")

        try sm.ok(.vdiDeactivate, vdi: vdi)
        #expect(try logs.header(vdi).consistent, "a clean deactivate leaves the log consistent")
        let b = try logs.open(vdi).bitmap(try logs.header(vdi))
        #expect(Set((0..<(size / Self.blockSize)).filter { b.isSet($0) }) == expected4)
    }

    @Test func killNineLeavesTheLogInconsistent() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let size: UInt64 = 32 << 20
        let vdi = try sm.createVDI(mib: 32)
        try sm.ok(.vdiEnableCBT, vdi: vdi)
        let logs = CBTLogs(container: try DirectoryContainer(directory: sm.srDirectory))
        let s0 = try Self.snapshot(sm, vdi)
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        try Self.send(Self.ops(seed: 7, count: 20, size: size), to: sm.uri(vdi))
        let pid = try #require(sm.pid(vdi))
        kill(pid, SIGKILL)
        #expect(DatapathLauncher.waitForExit(pid, directory: sm.datapath(vdi), timeout: 5))
        #expect(try !logs.header(vdi).consistent)
        // A snapshot keeps the flag with the log: the list says a full backup is needed.
        let s1 = try Self.snapshot(sm, vdi)
        #expect(try !logs.header(s1).consistent && logs.header(vdi).consistent)
        #expect(sm.call(.vdiListChangedBlocks, vdi: s0, args: [s1]).faultValue?.code == 459)

        // Killed again: enabling finds the log inconsistent and starts a new chain.
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let again = try #require(sm.pid(vdi))
        kill(again, SIGKILL)
        #expect(DatapathLauncher.waitForExit(again, directory: sm.datapath(vdi), timeout: 5))
        try sm.ok(.vdiEnableCBT, vdi: vdi)
        #expect(try logs.header(vdi).consistent && logs.header(vdi).parent == nil && logs.header(s1).child == nil)
        // And once more: the next activation turns tracking off.
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let third = try #require(sm.pid(vdi))
        kill(third, SIGKILL)
        #expect(DatapathLauncher.waitForExit(third, directory: sm.datapath(vdi), timeout: 5))
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        #expect(!logs.exists(vdi), "tracking disabled")
        try sm.ok(.vdiDeactivate, vdi: vdi)
    }

    @Test func enableDisableResizeWhileActive() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 16)
        let logs = CBTLogs(container: try DirectoryContainer(directory: sm.srDirectory))
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        // Every block present in the leaf before tracking starts: the writes below take the
        // event loop's fast path (pwrite into a block the read map knows), which must mark too.
        try Command.check("nbdcopy", [try s.file("full.raw", pattern(16 << 20, seed: 8)), sm.uri(vdi)])
        try sm.ok(.vdiEnableCBT, vdi: vdi)
        #expect(try !logs.header(vdi).consistent, "the datapath picked the new log up at unpause")
        // A read teaches the read map every block; the writes are then pwritten by the event loop.
        try Command.check("qemu-io", ["-f", "raw", "-r", "-c", "read 0 \(16 << 20)", sm.uri(vdi)])
        try Self.send([Op(command: "write -P 9", offset: 5 << 16, length: 4096), Op(command: "write -P 9", offset: 9 << 16, length: 4096),
                       Op(command: "write -P 9", offset: (77 << 16) + 4096, length: 4096), Op(command: "write -P 9", offset: 78 << 16, length: 4096),
                       Op(command: "write -P 9", offset: 200 << 16, length: 8192), Op(command: "write -P 9", offset: 201 << 16, length: 512)],
                      to: sm.uri(vdi))
        let stats = try DatapathControlClient(socketPath: sm.datapath(vdi).controlSocket).stats()
        #expect(stats.fastWrites >= 3, "the writes took the event loop's fast path: \(stats)")
        try sm.ok(.vdiResize, vdi: vdi, args: [String(32 << 20)])
        #expect(try logs.header(vdi).size == 32 << 20)
        try Self.send([Op(command: "write -P 9", offset: 500 << 16, length: 4096)], to: sm.uri(vdi))
        try sm.ok(.vdiDeactivate, vdi: vdi)
        let h = try logs.header(vdi)
        let bits = try logs.open(vdi).bitmap(h)
        #expect(h.consistent && (0..<512).filter { bits.isSet(UInt64($0)) } == [5, 9, 77, 78, 200, 201, 500])
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        try sm.ok(.vdiDisableCBT, vdi: vdi)
        #expect(!logs.exists(vdi))
        try Self.send([Op(command: "write -P 9", offset: 0, length: 4096)], to: sm.uri(vdi))
        try sm.ok(.vdiDeactivate, vdi: vdi)
        #expect(!logs.exists(vdi), "the datapath made no log of its own")
    }
}
