import TestSupport
import Foundation
import Testing
import VHD
@testable import LVM

/// Both ways with lvm2's own tools on a loop device (activation off, private configuration).
@Suite(.serialized) struct InteropTests {
    /// Fails the test when the tools are missing (scripts/install-deps.sh installs lvm2).
    func requireLVM2() throws {
        try #require(lvm2Installed, "lvm2 is not installed (run scripts/install-deps.sh)")
    }

    /// Rows of `lvs --segments` keyed by LV name: (size in bytes, tags, PE ranges joined by " ").
    func lvm2LVs(_ pv: LoopPV, _ vg: String) throws -> [String: (size: UInt64, tags: [String], ranges: [String], attr: String)] {
        var out: [String: (size: UInt64, tags: [String], ranges: [String], attr: String)] = [:]
        for row in try pv.report(["lvs", "--segments", "-o", "lv_name,lv_size,lv_tags,seg_pe_ranges,lv_attr", vg]) {
            let name = row["lv_name"] ?? ""
            var e = out[name] ?? (UInt64(row["lv_size"] ?? "") ?? 0, (row["lv_tags"] ?? "").split(separator: ",").map(String.init).sorted(), [], row["lv_attr"] ?? "")
            e.ranges.append(row["seg_pe_ranges"] ?? "")
            out[name] = e
        }
        return out
    }

    /// What our model says lvm2 should print for `lv` (`/dev/loopN:a-b` per segment).
    func ourRanges(_ vg: VolumeGroup, _ lv: String, device: String) -> [String] {
        vg.lv(lv)!.segments.map { "\(device):\($0.pvExtent)-\($0.pvExtent + $0.extentCount - 1)" }
    }

    /// Checks that lvm2's view of the device equals `vg` and that no tool warns.
    func expectLVM2Agrees(_ pv: LoopPV, _ vg: VolumeGroup) throws {
        let vgs = try pv.report(["vgs", "-o", "vg_name,vg_seqno,vg_extent_size,vg_extent_count,vg_free_count,vg_tags,lv_count"])
        let row = try #require(vgs.first)
        #expect(row["vg_name"] == vg.name)
        #expect(row["vg_seqno"] == String(vg.seqno))
        #expect(row["vg_extent_size"] == String(vg.extentBytes))
        #expect(row["vg_extent_count"] == String(vg.totalExtents))
        #expect(row["vg_free_count"] == String(vg.freeExtents))
        #expect((row["vg_tags"] ?? "").split(separator: ",").map(String.init).sorted() == vg.tags.sorted())
        #expect(row["lv_count"] == String(vg.logicalVolumes.count))
        let pvs = try pv.report(["pvs", "-o", "pv_name,pv_uuid,pe_start,pv_pe_count,pv_mda_count"])
        #expect(pvs.first?["pe_start"] == String(vg.physicalVolumes[0].peStart * 512))
        #expect(pvs.first?["pv_pe_count"] == String(vg.physicalVolumes[0].peCount))
        #expect(pvs.first?["pv_uuid"] == vg.physicalVolumes[0].id.description)
        let lvs = try lvm2LVs(pv, vg.name)
        #expect(Set(lvs.keys) == Set(vg.logicalVolumes.map(\.name)))
        for lv in vg.logicalVolumes {
            let l = try #require(lvs[lv.name])
            #expect(l.size == vg.sizeInBytes(of: lv), "\(lv.name) size")
            #expect(l.tags == lv.tags.sorted(), "\(lv.name) tags")
            #expect(l.ranges == ourRanges(vg, lv.name, device: pv.device), "\(lv.name) segments")
            #expect(l.attr.dropFirst().first == (lv.isReadOnly ? "r" : "w"), "\(lv.name) attr \(l.attr)")
        }
        let ck = try pv.lvm(["vgck", vg.name])
        #expect(ck.status == 0 && ck.warnings.isEmpty, "vgck: \(ck.stderr)")
        let dump = try pv.lvm(["pvck", "--dump", "headers", pv.device])
        #expect(dump.status == 0, "pvck: \(dump.stderr)")
        #expect(!dump.stdout.contains("CHECK") && !dump.stderr.contains("CHECK"), "pvck: \(dump.stdout)")
        let all = try pv.lvm(["pvck", "--dump", "metadata_all", pv.image])
        #expect(all.status == 0 && all.warnings.isEmpty && !all.stdout.contains("WARNING"), "pvck metadata_all: \(all.stdout) \(all.stderr)")
    }

    @Test func lvm2ReadsWhatWeWrite() throws {
        try requireLVM2()
        let pv = try LoopPV(size: 256 << 20)
        defer { pv.close() }
        let store = try pv.store()
        let (dev, first) = try PVDevice.create(on: store, vgName: "VG_XenStorage-ours", device: "/dev/loop")
        var vg = first
        try vg.createLV(name: "MGT", bytes: 4 << 20, tags: ["mgt"])
        try vg.createLV(name: "VHD-a", extents: 3, tags: ["vdi_type=vhd", "hidden"])
        try vg.createLV(name: "VHD-b", extents: 2)
        try vg.createLV(name: "VHD-c", extents: 5, readOnly: true)
        try vg.resizeLV("VHD-a", extents: 6)              // a second segment after VHD-c
        try vg.addTag("swiftsm-sr")
        vg = try dev.commit(vg, description: "Write from the interop test")
        try vg.removeLV("VHD-b")
        try vg.resizeLV("VHD-c", extents: 3)
        try vg.renameLV("VHD-c", to: "VHD-c2")
        vg = try dev.commit(vg)
        #expect(vg.seqno == 3)
        #expect(vg.lv("VHD-a")!.segments.count == 2)
        try store.sync()
        try pv.attach()
        try expectLVM2Agrees(pv, vg)
        let listed = try pv.lvm(["pvck", "--dump", "metadata_all", pv.image])
        #expect(listed.stdout.contains("vg VG_XenStorage-ours seqno 3 "), "\(listed.stdout)")
        #expect(listed.stdout.contains("seqno 2 ") && listed.stdout.contains("seqno 1 "), "every copy is listed: \(listed.stdout)")
    }

    @Test func weReadAndChangeWhatLVM2Writes() throws {
        try requireLVM2()
        let pv = try LoopPV(size: 128 << 20)
        defer { pv.close() }
        try pv.attach()
        let d = pv.device
        for args in [["pvcreate", d], ["vgcreate", "-s", "4m", "vglvm2", d],
                     ["lvcreate", "-an", "-Zn", "-L", "12m", "-n", "one", "--addtag", "first", "vglvm2"],
                     ["lvcreate", "-an", "-Zn", "-L", "8m", "-n", "two", "vglvm2"],
                     ["lvcreate", "-an", "-Zn", "-L", "4m", "-n", "three", "vglvm2"],
                     ["lvextend", "-L", "20m", "vglvm2/one"],
                     ["lvchange", "--addtag", "tagged", "vglvm2/two"], ["lvchange", "-p", "r", "vglvm2/two"],
                     ["lvrename", "vglvm2", "three", "drei"], ["lvcreate", "-an", "-Zn", "-L", "4m", "-n", "gone", "vglvm2"],
                     ["lvremove", "-f", "vglvm2/gone"], ["vgchange", "--addtag", "vgtag", "vglvm2"]] {
            let r = try pv.lvm(args)
            try #require(r.status == 0, "lvm \(args): \(r.stderr)")
        }
        pv.detach()
        // Our reading matches what lvm2 says (checked again on the re-attached device below).
        let store = try pv.store()
        let dev = try PVDevice(store: store)
        var vg = try dev.read()
        #expect(vg.name == "vglvm2")
        #expect(Set(vg.logicalVolumes.map(\.name)) == ["one", "two", "drei"])
        #expect(vg.lv("one").map { vg.sizeInBytes(of: $0) } == 20 << 20)
        #expect(vg.lv("one")?.segments.count == 2)
        #expect(vg.lv("one")?.tags == ["first"])
        #expect(vg.lv("two")?.tags == ["tagged"])
        #expect(vg.lv("two")?.isReadOnly == true)
        #expect(vg.tags == ["vgtag"])
        try pv.attach()
        try expectLVM2Agrees(pv, vg)
        pv.detach()
        // We change it; lvm2 still reads it without a warning.
        try vg.createLV(name: "ours", extents: 2, tags: ["made-by-swiftsm"])
        try vg.resizeLV("drei", extents: 4)
        try vg.removeLV("two")
        try vg.addTag("ours", toLV: "one")
        vg = try dev.commit(vg)
        try store.sync()
        try pv.attach()
        try expectLVM2Agrees(pv, vg)
        // And lvm2 changes it again on top of ours: we read its next seqno.
        let r = try pv.lvm(["lvextend", "-L", "+4m", "vglvm2/ours"])
        try #require(r.status == 0, "lvextend: \(r.stderr)")
        pv.detach()
        #expect(try dev.hasChanged())
        let after = try PVDevice(store: try pv.store()).read()
        #expect(after.seqno == vg.seqno + 1)
        #expect(after.lv("ours").map { after.extents(forBytes: after.sizeInBytes(of: $0)) } == 3)
    }

    @Test func lvSliceBytesSitAtTheExtentsLVM2Reports() throws {
        try requireLVM2()
        let pv = try LoopPV(size: 128 << 20)
        defer { pv.close() }
        let store = try pv.store()
        let (dev, first) = try PVDevice.create(on: store, vgName: "vgbytes")
        var vg = first
        try vg.createLV(name: "a", extents: 1)
        try vg.createLV(name: "b", extents: 1)
        try vg.resizeLV("a", extents: 3)
        vg = try dev.commit(vg)
        let lv = try dev.open(lv: "a", in: vg)
        let pattern = (0..<Int(lv.size)).map { UInt8(truncatingIfNeeded: ($0 >> 9) &* 13 &+ $0) }
        try lv.write(pattern, at: 0)
        try lv.sync()
        try pv.attach()
        let peStart = try #require(UInt64(try pv.report(["pvs", "-o", "pe_start"]).first?["pe_start"] ?? ""))
        let ranges = try pv.report(["lvs", "--segments", "-o", "lv_name,seg_start_pe,seg_pe_ranges", "vgbytes/a"])
        #expect(ranges.count == 2)
        let raw = try FileStore(path: pv.device, writable: false)
        var lvOffset = 0
        for row in ranges {
            let spec = (row["seg_pe_ranges"] ?? "").split(separator: ":").last ?? ""
            let pe = spec.split(separator: "-").compactMap { UInt64($0) }
            try #require(pe.count == 2)
            let bytes = Int((pe[1] - pe[0] + 1) * vg.extentBytes)
            let onDevice = try raw.read(count: bytes, at: peStart + pe[0] * vg.extentBytes)
            #expect(onDevice == Array(pattern[lvOffset..<lvOffset + bytes]), "segment \(row)")
            lvOffset += bytes
        }
        #expect(lvOffset == pattern.count)
    }

    @Test func twoMetadataAreasStayConsistent() throws {
        try requireLVM2()
        let pv = try LoopPV(size: 64 << 20)
        defer { pv.close() }
        try pv.attach()
        for args in [["pvcreate", "--pvmetadatacopies", "2", pv.device], ["vgcreate", "vgtwo", pv.device],
                     ["lvcreate", "-an", "-Zn", "-L", "8m", "-n", "l1", "vgtwo"]] {
            let r = try pv.lvm(args)
            try #require(r.status == 0, "lvm \(args): \(r.stderr)")
        }
        pv.detach()
        let dev = try PVDevice(store: try pv.store())
        #expect(dev.metadataAreas.count == 2)
        var vg = try dev.read()
        try vg.createLV(name: "l2", extents: 3)
        try vg.resizeLV("l1", extents: 1)
        vg = try dev.commit(vg)
        let headers = try dev.metadataAreas.map { try $0.readHeader(from: dev.store) }
        let texts = try zip(dev.metadataAreas, headers).map { try $0.readText(at: $1.committed, header: $1, from: dev.store) }
        #expect(texts[0] == texts[1])
        try pv.attach()
        try expectLVM2Agrees(pv, vg)
        let mdas = try pv.report(["pvs", "-o", "pv_mda_count,pv_mda_used_count"])
        #expect(mdas.first?["pv_mda_count"] == "2" && mdas.first?["pv_mda_used_count"] == "2")
    }

    @Test func weReadLVM2sWrappedCopies() throws {
        try requireLVM2()
        let pv = try LoopPV(size: 64 << 20)
        defer { pv.close() }
        try pv.attach()
        for args in [["pvcreate", "--metadatasize", "32k", "--dataalignment", "64k", pv.device], ["vgcreate", "vgwrapped", pv.device],
                     ["lvcreate", "-an", "-Zn", "-L", "4m", "-n", "l", "vgwrapped"]] {
            let r = try pv.lvm(args)
            try #require(r.status == 0, "lvm \(args): \(r.stderr)")
        }
        let store = try pv.store(writable: false)
        var wrapped = 0
        for i in 0..<40 {
            let tag = "t\(i)-" + String(repeating: "x", count: 120)
            let r = try pv.lvm(["lvchange", "--addtag", tag, "vgwrapped/l"])
            try #require(r.status == 0, "lvchange: \(r.stderr)")
            let dev = try PVDevice(store: store)
            let vg = try dev.read()
            #expect(vg.seqno == UInt64(i) + 3)   // vgcreate 1, lvcreate 2
            #expect(vg.lv("l")?.tags.count == i + 1)
            let loc = dev.knownLocations[0]
            if loc.offset + loc.size > dev.metadataAreas[0].area.size { wrapped += 1 }
        }
        #expect(wrapped > 0, "no lvm2 copy wrapped")
    }

    @Test func commitsBesideLVM2s() throws {
        try requireLVM2()
        let pv = try LoopPV(size: 256 << 20)
        defer { pv.close() }
        try pv.attach()
        for args in [["pvcreate", pv.device], ["vgcreate", "-s", "1m", "vgtimed", pv.device]] {
            let r = try pv.lvm(args)
            try #require(r.status == 0, "lvm \(args): \(r.stderr)")
        }
        let clock = ContinuousClock()
        let theirs = try clock.measure {
            for i in 0..<20 {
                let r = try pv.lvm(["lvcreate", "-an", "-Zn", "-L", "1m", "-n", "lvm2-\(i)", "vgtimed"])
                try #require(r.status == 0, "lvcreate: \(r.stderr)")
            }
        }
        let store = try pv.store()
        let dev = try PVDevice(store: store)
        var vg = try dev.read()
        let ours = try clock.measure {
            for i in 0..<20 {
                try vg.createLV(name: "ours-\(i)", extents: 1)
                vg = try dev.commit(vg)      // text, precommit, commit: each followed by fsync
            }
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        print("LVM commit time, 20 LV creations: lvm2 lvcreate (a process each) \(theirs), SwiftSM commits \(ours): \(seconds(theirs) / seconds(ours))x")
        #expect(vg.logicalVolumes.count == 40)
        try expectLVM2Agrees(pv, vg)
    }
}
