import Foundation
import TestSupport
import ISCSI
import Testing
import VHD

/// ISCSIStore over the shared target's LUNs: what is written is what is read back, through
/// the store and straight from the LUN's backing file; unaligned heads and tails; large
/// requests split into many commands; writers on several threads; UNMAP where the LUN offers
/// it; the bounds and refusals of a block device. Each test uses its own region of the LUN.
@Suite(.enabled(if: TestTarget.available, "needs SWIFTSM_TEST_ISCSI (scripts/with-iscsi-target.sh)"))
struct ISCSIStoreTests {
    private func open(lun: Int = 1) throws -> (TestTarget, ISCSIStore) {
        let t = try TestTarget.plain()
        return (t, ISCSIStore(device: try ISCSIDevice(target: t.target(lun: lun))))
    }

    @Test func alignedAndUnalignedWritesReadBackThroughTheStoreAndTheFile() throws {
        let (t, store) = try open()
        defer { store.device.close() }
        #expect(store.isBlockDevice && store.size == 256 << 20)
        let region = 6 << 20   // region [0, 6 MiB)
        var model = try store.read(count: region, at: 0)
        let cases: [(offset: Int, count: Int)] = [(0, 4096), (512, 512), (1000, 10), (4095, 2), (8191, 70_000),
                                                  (200_000, 1), (300_001, 1 << 20), (2 << 20, 3 << 20 + 17)]
        for (i, c) in cases.enumerated() {
            let data = Pattern.bytes(c.count, seed: 1, n: UInt64(i))
            try store.write(data, at: UInt64(c.offset))
            model.replaceSubrange(c.offset..<c.offset + c.count, with: data)
            let back = try store.read(count: c.count, at: UInt64(c.offset))
            #expect(SHA256.hex(back) == SHA256.hex(data), "case \(i) at \(c.offset)")
        }
        try store.sync()
        #expect(SHA256.hex(try store.read(count: region, at: 0)) == SHA256.hex(model))
        #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: 0, count: region)) == SHA256.hex(model))
    }

    @Test func largeRequestsSpanManyCommands() throws {
        let (t, store) = try open()
        defer { store.device.close() }
        let base: UInt64 = 16 << 20   // region [16, 64) MiB
        let data = Pattern.bytes(40 << 20, seed: 2)
        try store.write(data, at: base)
        try store.sync()
        #expect(store.commandBytes <= 1 << 20)
        let back = try store.read(count: data.count, at: base)
        #expect(SHA256.hex(back) == SHA256.hex(data))
        #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: base, count: data.count)) == SHA256.hex(data))
        // Bytes written to the file directly are what the store reads.
        let direct = Pattern.bytes(8192, seed: 3)
        let h = try #require(FileHandle(forWritingAtPath: t.backingFile(lun: 1)))
        try h.seek(toOffset: base + 4096)
        try h.write(contentsOf: Data(direct))
        try h.synchronize()
        try h.close()
        #expect(try store.read(count: 8192, at: base + 4096) == direct)
    }

    @Test func writersOnSeveralThreadsUseSeveralSessions() throws {
        let (t, store) = try open()
        defer { store.device.close() }
        let base: UInt64 = 64 << 20    // region [64, 96) MiB: 8 threads × 32 blocks of 128 KiB
        let block = 128 << 10
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for k in 0..<32 {
                let n = UInt64(thread * 32 + k)
                try? store.write(Pattern.bytes(block, seed: 4, n: n), at: base + n * UInt64(block))
            }
        }
        try store.sync()
        for n in 0..<UInt64(256) {
            let want = SHA256.hex(Pattern.bytes(block, seed: 4, n: n))
            #expect(SHA256.hex(try store.read(count: block, at: base + n * UInt64(block))) == want, "block \(n)")
            #expect(SHA256.hex(try Pattern.fileBytes(t.backingFile(lun: 1), offset: base + n * UInt64(block), count: block)) == want)
        }
    }

    @Test func unalignedWritesToOneBlockFromManyThreadsAllLand() throws {
        let (_, store) = try open()
        defer { store.device.close() }
        let base: UInt64 = 96 << 20
        // 64 threads each write 8 bytes into the same 512-byte block: read-modify-write must not lose any.
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            try? store.write([UInt8](repeating: UInt8(i + 1), count: 8), at: base + UInt64(i * 8))
        }
        let back = try store.read(count: 512, at: base)
        #expect(back == (0..<64).flatMap { [UInt8](repeating: UInt8($0 + 1), count: 8) })
    }

    @Test func boundsAndRefusals() throws {
        let (_, store) = try open()
        defer { store.device.close() }
        #expect(throws: VHDError.self) { _ = try store.read(count: 1024, at: store.size - 512) }
        #expect(throws: VHDError.self) { try store.write([1, 2, 3], at: store.size - 1) }
        let tail = Pattern.bytes(700, seed: 5)
        try store.write(tail, at: store.size - 700)
        #expect(try store.read(count: 700, at: store.size - 700) == tail)
        do {
            try store.resize(to: store.size * 2)
            Issue.record("resize accepted")
        } catch let e as ISCSIError {
            #expect(e.smapiCode == 38)
        }
        try store.resize(to: store.size)
        // LUN 1 is thick: no UNMAP, the data stays.
        #expect(try store.discard(offset: 1 << 20, count: 1 << 20) == false)
        let ro = ISCSIStore(device: store.device, writable: false)
        #expect(throws: VHDError.self) { try ro.write([1], at: 0) }
    }

    @Test func discardUnmapsOnTheThinLUN() throws {
        let (t, store) = try open(lun: 2)
        defer { store.device.close() }
        #expect(store.canDiscard)
        let base: UInt64 = 8 << 20
        let data = Pattern.bytes(4 << 20, seed: 6)
        try store.write(data, at: base)
        try store.sync()
        let file = t.backingFile(lun: 2)
        let before = try allocatedBytes(file)
        #expect(before >= 4 << 20)
        // Whole blocks are unmapped; the partial ones at the ends are zeroed.
        #expect(try store.discard(offset: base + 100, count: (3 << 20) - 200))
        try store.sync()
        let back = try store.read(count: data.count, at: base)
        #expect(Array(back[0..<100]) == Array(data[0..<100]))
        #expect(back[100..<((3 << 20) - 100)].allSatisfy { $0 == 0 })
        #expect(Array(back[((3 << 20) - 100)...]) == Array(data[((3 << 20) - 100)...]))
        let after = try allocatedBytes(file)
        #expect(after <= before - (2 << 20), "allocated \(before) -> \(after)")
        #expect(try Pattern.fileBytes(file, offset: base + 4096, count: 1 << 20).allSatisfy { $0 == 0 })
    }

    private func allocatedBytes(_ path: String) throws -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TestFailure("stat \(path)") }
        return UInt64(st.st_blocks) * 512
    }
}
