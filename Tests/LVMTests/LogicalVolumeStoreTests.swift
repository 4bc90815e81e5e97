import Testing
import VHD
@testable import LVM

/// The LV slice: reads and writes through the segment map.
@Suite struct LogicalVolumeStoreTests {
    /// A VG with 1 MiB extents on a memory PV of `extents` extents, and its device.
    func device(extents: UInt64 = 16) throws -> (PVDevice, VolumeGroup, MemoryStore) {
        let mem = MemoryStore(bytes: [UInt8](repeating: 0, count: Int((2 + extents) << 20)), isBlockDevice: true)
        let (dev, vg) = try PVDevice.create(on: mem, vgName: "vgmem", extentSize: 2048)
        return (dev, vg, mem)
    }

    @Test func writesCrossingSegmentsLandAtTheirExtents() throws {
        let (dev, vg0, mem) = try device()
        var vg = vg0
        try vg.createLV(name: "a", extents: 2)
        try vg.createLV(name: "b", extents: 1)
        try vg.resizeLV("a", extents: 4)     // a: PE 0-1, then PE 3-4
        vg = try dev.commit(vg)
        let lv = try dev.open(lv: "a", in: vg)
        #expect(lv.size == 4 << 20)
        #expect(lv.isBlockDevice)
        #expect(lv.extents.count == 2)
        let peStart = Int(vg.physicalVolumes[0].peStart * 512)
        let pattern = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try lv.write(pattern, at: 1 << 20)          // LV 1..4 MiB: PE 1, 3, 4
        #expect(Array(mem.bytes[peStart + (1 << 20)..<peStart + (2 << 20)]) == Array(pattern[0..<(1 << 20)]))
        #expect(Array(mem.bytes[peStart + (3 << 20)..<peStart + (5 << 20)]) == Array(pattern[(1 << 20)...]))
        #expect(mem.bytes[peStart + (2 << 20)..<peStart + (3 << 20)].allSatisfy { $0 == 0 })  // b untouched
        #expect(try lv.read(count: 3 << 20, at: 1 << 20) == pattern)
        #expect(throws: VHDError.self) { try lv.read(count: 2, at: (4 << 20) - 1) }
        #expect(throws: VHDError.self) { try lv.write([1, 2], at: (4 << 20) - 1) }
        #expect(throws: LVMError.self) { try lv.resize(to: 8 << 20) }
    }

    @Test func readOnlyLVRefusesWrites() throws {
        let (dev, vg0, _) = try device()
        var vg = vg0
        try vg.createLV(name: "ro", extents: 1, readOnly: true)
        vg = try dev.commit(vg)
        let lv = try dev.open(lv: "ro", in: vg)
        #expect(throws: LVMError.readOnlyLV("ro")) { try lv.write([1], at: 0) }
        #expect(try lv.read(count: 4, at: 0) == [0, 0, 0, 0])
    }

    @Test func commitsAreVersionedAndStalenessIsSeen() throws {
        let (dev, vg0, mem) = try device()
        #expect(vg0.seqno == 1)
        var vg = vg0
        try vg.createLV(name: "x", extents: 1)
        let v2 = try dev.commit(vg)
        #expect(v2.seqno == 2)
        // A second host's view of the same bytes.
        let other = try PVDevice(store: mem)
        let seen = try other.read()
        #expect(seen == v2)
        #expect(try other.hasChanged() == false)
        #expect(try other.isStale(seen) == false)
        var v3 = v2
        try v3.createLV(name: "y", extents: 1)
        v3 = try dev.commit(v3)
        #expect(try other.hasChanged())
        #expect(try other.isStale(seen))
        #expect(try other.peekSeqno() == 3)
        // Committing from the old view is refused.
        var late = seen
        try late.createLV(name: "z", extents: 1)
        #expect(throws: LVMError.staleMetadata(expected: 2, found: 3)) { try other.commit(late) }
        #expect(try PVDevice(store: mem).read() == v3)
    }

    @Test func createRefusesAnExistingPVUnlessTold() throws {
        let (_, vg, mem) = try device()
        #expect(throws: LVMError.self) { try PVDevice.create(on: mem, vgName: "other") }
        #expect(try PVDevice(store: mem).read() == vg)
        let (_, replaced) = try PVDevice.create(on: mem, vgName: "other", extentSize: 2048, overwrite: true)
        #expect(try PVDevice(store: mem).read() == replaced)
        #expect(replaced.name == "other" && replaced.id != vg.id)
    }

    @Test func manyCommitsWrapTheBuffer() throws {
        let mem = MemoryStore(bytes: [UInt8](repeating: 0, count: 32 << 20), isBlockDevice: true)
        let (dev, first) = try PVDevice.create(on: mem, vgName: "vgwrap", extentSize: 2048, metadataSize: 64 << 10)
        var vg = first
        var wrapped = 0
        for i in 0..<120 {
            try vg.createLV(name: "lv\(i % 7)-\(i)", extents: 1)
            if vg.logicalVolumes.count > 6 { try vg.removeLV(vg.logicalVolumes[0].name) }
            vg = try dev.commit(vg)
            let loc = dev.knownLocations[0]
            if loc.offset + loc.size > 64 << 10 { wrapped += 1 }
            #expect(try PVDevice(store: mem).read() == vg)
        }
        #expect(wrapped > 0)
        #expect(vg.seqno == 121)
    }
}
