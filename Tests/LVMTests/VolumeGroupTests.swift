import Testing
import VHD
@testable import LVM

/// A fresh VG of `extents` extents of 4 MiB on one PV (metadata only, no store).
func sampleVG(extents: UInt64 = 100) -> VolumeGroup {
    VolumeGroup(name: "VG_XenStorage-test", seqno: 1, extentSize: 8192,
                physicalVolumes: [PhysicalVolume(id: .random(), device: "/dev/x", devSize: 2048 + extents * 8192,
                                                 peStart: 2048, peCount: extents)])
}

/// LV operations and extent allocation on the VG value.
@Suite struct VolumeGroupTests {
    @Test func createAllocatesContiguousExtents() throws {
        var vg = sampleVG()
        let a = try vg.createLV(name: "MGT", bytes: 4 << 20, tags: ["t1"])
        let b = try vg.createLV(name: "VHD-1", bytes: 10 << 20)
        #expect(a.segments == [LVSegment(startExtent: 0, extentCount: 1, pv: "pv0", pvExtent: 0)])
        #expect(b.segments == [LVSegment(startExtent: 0, extentCount: 3, pv: "pv0", pvExtent: 1)])
        #expect(vg.freeExtents == 96)
        #expect(vg.freeBytes == 96 * 4 << 20)
        #expect(vg.sizeInBytes(of: b) == 12 << 20)
        #expect(throws: LVMError.lvExists("MGT")) { try vg.createLV(name: "MGT", extents: 1) }
        #expect(throws: LVMError.insufficientSpace(needed: 97, free: 96)) { try vg.createLV(name: "big", extents: 97) }
        #expect(throws: LVMError.self) { try vg.createLV(name: "snapshot1", extents: 1) }
        #expect(throws: LVMError.self) { try vg.createLV(name: "a/b", extents: 1) }
        try vg.validate()
    }

    @Test func fragmentedFreeSpaceGivesSeveralSegments() throws {
        var vg = sampleVG(extents: 10)
        for i in 0..<5 { try vg.createLV(name: "l\(i)", extents: 2) }
        try vg.removeLV("l1")
        try vg.removeLV("l3")
        // Free: 2-3 and 6-7; a 4-extent LV must take both.
        let big = try vg.createLV(name: "big", extents: 4)
        #expect(big.segments.count == 2)
        #expect(big.extentCount == 4)
        #expect(Set(big.segments.map(\.pvExtent)) == [2, 6])
        #expect(vg.freeExtents == 0)
        try vg.validate()
    }

    @Test func growExtendsInPlaceThenElsewhereAndShrinkDropsTheEnd() throws {
        var vg = sampleVG(extents: 20)
        try vg.createLV(name: "a", extents: 2)
        try vg.resizeLV("a", extents: 5)
        #expect(vg.lv("a")?.segments == [LVSegment(startExtent: 0, extentCount: 5, pv: "pv0", pvExtent: 0)])
        try vg.createLV(name: "b", extents: 2)
        try vg.resizeLV("a", extents: 8)
        #expect(vg.lv("a")?.segments == [LVSegment(startExtent: 0, extentCount: 5, pv: "pv0", pvExtent: 0),
                                        LVSegment(startExtent: 5, extentCount: 3, pv: "pv0", pvExtent: 7)])
        try vg.resizeLV("a", extents: 4)
        #expect(vg.lv("a")?.segments == [LVSegment(startExtent: 0, extentCount: 4, pv: "pv0", pvExtent: 0)])
        #expect(vg.freeExtents == 14)
        #expect(throws: LVMError.insufficientSpace(needed: 15, free: 14)) { try vg.resizeLV("a", extents: 19) }
        #expect(vg.lv("a")?.extentCount == 4)
        try vg.validate()
    }

    @Test func renameTagsReadOnly() throws {
        var vg = sampleVG()
        try vg.createLV(name: "VHD-a", extents: 1)
        try vg.renameLV("VHD-a", to: "VHD-b")
        #expect(vg.lv("VHD-a") == nil && vg.lv("VHD-b") != nil)
        try vg.addTag("hidden", toLV: "VHD-b")
        try vg.addTag("hidden", toLV: "VHD-b")
        try vg.addTag("vdi_type=vhd", toLV: "VHD-b")
        #expect(vg.lv("VHD-b")?.tags == ["hidden", "vdi_type=vhd"])
        try vg.removeTag("hidden", fromLV: "VHD-b")
        #expect(vg.lv("VHD-b")?.tags == ["vdi_type=vhd"])
        #expect(throws: LVMError.self) { try vg.addTag("bad tag", toLV: "VHD-b") }
        try vg.setReadOnly(true, lv: "VHD-b")
        #expect(vg.lv("VHD-b")?.status == ["READ", "VISIBLE"])
        #expect(vg.lv("VHD-b")?.isReadOnly == true)
        try vg.setReadOnly(false, lv: "VHD-b")
        #expect(vg.lv("VHD-b")?.status == ["READ", "WRITE", "VISIBLE"])
        try vg.addTag("sr_tag")
        #expect(vg.tags == ["sr_tag"])
        vg.removeTag("sr_tag")
        #expect(vg.tags.isEmpty)
        #expect(throws: LVMError.lvNotFound("nope")) { try vg.removeLV("nope") }
    }
}
