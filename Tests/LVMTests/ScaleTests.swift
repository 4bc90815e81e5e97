import Foundation
import Testing
import VHD
@testable import LVM

/// A VG the size an LVHD SR reaches: many LVs, timed commit and read.
@Suite struct ScaleTests {
    @Test func thousandLVsCommitAndReadQuickly() throws {
        let mem = MemoryStore(bytes: [UInt8](repeating: 0, count: (4 << 20) + 1100 * 4096), isBlockDevice: true)
        let (dev, first) = try PVDevice.create(on: mem, vgName: "VG_XenStorage-scale", extentSize: 8)
        var vg = first
        for i in 0..<1000 {
            try vg.createLV(name: "VHD-\(i)", extents: 1, tags: ["vdi_type=vhd"])
        }
        let clock = ContinuousClock()
        var committed = vg
        let commit = try clock.measure { committed = try dev.commit(vg) }
        var read = vg
        let parse = try clock.measure { read = try PVDevice(store: mem).read() }
        let stale = try clock.measure { _ = try dev.hasChanged() }
        let size = dev.knownLocations[0].size
        print("LVM scale: 1000 LVs, text \(size) bytes: commit \(commit), read \(parse), hasChanged \(stale)")
        #expect(read == committed)
        #expect(commit < .seconds(2) && parse < .seconds(2))
        // Past the area's limit (half of it, lvm2's rule): refused, nothing committed.
        var big = committed
        for i in 0..<800 { try big.createLV(name: "more-\(i)", extents: 1) }
        #expect { try dev.commit(big) } throws: { e in if case LVMError.metadataTooLarge = e { return true }; return false }
        #expect(try PVDevice(store: mem).read() == committed)
    }
}
