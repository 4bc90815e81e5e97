import TestSupport
import Foundation
import Testing
import VHD
@testable import LVM

/// Corrupt or hostile metadata on a real image: a typed error, and not one byte written.
@Suite(.serialized) struct HostileMetadataTests {
    /// A 64 MiB image with a VG and one LV, and the device handle that made it.
    func image() throws -> (LoopPV, VolumeGroup) {
        let pv = try LoopPV(size: 64 << 20)
        let store = try pv.store()
        let (dev, first) = try PVDevice.create(on: store, vgName: "vghostile")
        var vg = first
        try vg.createLV(name: "lv", extents: 2)
        vg = try dev.commit(vg)
        try store.sync()
        return (pv, vg)
    }

    /// Replaces the committed copy by `text` with a correct crc (so only the content is hostile).
    func commitRaw(_ text: [UInt8], on store: FileStore) throws {
        let dev = try PVDevice(store: store)
        let mda = dev.metadataAreas[0]
        var header = try mda.readHeader(from: store)
        let loc = try mda.writeText(text + [0], at: header.nextOffset, header: header, to: store)
        header.committed = loc
        try mda.writeHeader(header, to: store)
        try store.sync()
    }

    /// Opens, reads and tries to commit a change: must throw an `LVMError` and change nothing.
    func expectRefusedUntouched(_ pv: LoopPV, _ what: String) throws {
        let before = try pv.fingerprint()
        do {
            let store = try pv.store()
            let dev = try PVDevice(store: store)
            var vg = try dev.read()
            try vg.createLV(name: "new", extents: 1)
            _ = try dev.commit(vg)
            Issue.record("\(what): read and committed")
        } catch is LVMError {
        } catch {
            Issue.record("\(what): not an LVMError: \(error)")
        }
        #expect(try pv.fingerprint() == before, "\(what): the image changed")
    }

    /// Each corruption, applied to a fresh image.
    static let corruptions: [(String, @Sendable (FileStore, VolumeGroup) throws -> Void)] = [
        ("label crc", { s, _ in var b = try s.read(count: 512, at: 512); b[100] ^= 0xff; try s.write(b, at: 512) }),
        ("mda header crc", { s, _ in var b = try s.read(count: 512, at: 4096); b[50] ^= 1; try s.write(b, at: 4096) }),
        ("mda header magic with good crc", { s, _ in
            var b = try s.read(count: 512, at: 4096); b[6] = 0x21
            b.setLE32(LVMChecksum.compute(b, 4..<512), at: 0); try s.write(b, at: 4096) }),
        ("text crc", { s, _ in
            let h = try MetadataArea(area: DiskArea(offset: 4096, size: PVDevice.defaultMetadataSize)).readHeader(from: s)
            var b = try s.read(count: 16, at: 4096 + h.committed.offset + 20); b[3] ^= 1
            try s.write(b, at: 4096 + h.committed.offset + 20) }),
        ("text size past the area", { s, _ in
            var b = try s.read(count: 512, at: 4096); b.setLE64(1 << 40, at: 48)
            b.setLE32(LVMChecksum.compute(b, 4..<512), at: 0); try s.write(b, at: 4096) }),
        ("text offset past the area", { s, _ in
            var b = try s.read(count: 512, at: 4096); b.setLE64(UInt64.max - 10, at: 40)
            b.setLE32(LVMChecksum.compute(b, 4..<512), at: 0); try s.write(b, at: 4096) }),
        ("mda size past the device", { s, _ in
            var b = try s.read(count: 512, at: 512); b.setLE64(1 << 50, at: 624 - 512)
            b.setLE32(LVMChecksum.compute(b, 20..<512), at: 16); try s.write(b, at: 512) }),
        ("truncated text", { s, vg in
            let t = MetadataText(vg: vg, description: "", creationHost: "h", creationTime: 0).encode()
            try HostileMetadataTests().commitRaw(Array(t[0..<t.count / 2]), on: s) }),
        ("deep nesting", { s, _ in
            try HostileMetadataTests().commitRaw(Array((String(repeating: "x {", count: 5000) + String(repeating: "}", count: 5000)).utf8), on: s) }),
        ("huge numbers", { s, vg in
            let t = String(decoding: MetadataText(vg: vg, description: "", creationHost: "h", creationTime: 0).encode().dropLast(), as: UTF8.self)
            try HostileMetadataTests().commitRaw(Array(t.replacingOccurrences(of: "extent_count = 2", with: "extent_count = 184467440737095516150").utf8), on: s) }),
        ("extents past the device", { s, vg in
            var v = vg; v.physicalVolumes[0].peCount = 1 << 40; v.physicalVolumes[0].devSize = 1 << 60
            let t = MetadataText(vg: v, description: "", creationHost: "h", creationTime: 0).encode()
            try HostileMetadataTests().commitRaw(Array(t.dropLast()), on: s) }),
        ("PV extents past the real device", { s, vg in
            var v = vg; v.physicalVolumes[0].peCount += 4; v.physicalVolumes[0].devSize += 4 * 8192
            let t = MetadataText(vg: v, description: "", creationHost: "h", creationTime: 0).encode()
            try HostileMetadataTests().commitRaw(Array(t.dropLast()), on: s) }),
        ("segment loop: an LV using its own extents twice", { s, vg in
            var v = vg
            v.logicalVolumes[0].segments = [LVSegment(startExtent: 0, extentCount: 2, pv: "pv0", pvExtent: 0),
                                            LVSegment(startExtent: 2, extentCount: 2, pv: "pv0", pvExtent: 1)]
            let t = MetadataText(vg: v, description: "", creationHost: "h", creationTime: 0).encode()
            try HostileMetadataTests().commitRaw(Array(t.dropLast()), on: s) }),
        ("unterminated string", { s, _ in try HostileMetadataTests().commitRaw(Array("vg {\nid = \"abc".utf8), on: s) }),
    ]

    @Test(arguments: corruptions.indices)
    func corruptMetadataIsATypedErrorAndNothingIsWritten(_ i: Int) throws {
        let (what, corrupt) = HostileMetadataTests.corruptions[i]
        let (pv, vg) = try image()
        defer { pv.close() }
        let store = try pv.store()
        try corrupt(store, vg)
        try store.sync()
        try expectRefusedUntouched(pv, what)
    }
}
