import TestSupport
import Foundation
import Logging
import LVM
import LVMoISCSIDriver
import SMCore
import Testing
import VHD

/// lvm2's tools read what the LVHD container wrote, and the container reads what lvm2 wrote with
/// the Python SM's names. Needs root (loop devices) and lvm2.
@Suite("LVHD interop with lvm2", .serialized, .enabled(if: lvm2Installed && getuid() == 0, "needs root and lvm2"))
struct LVHDInteropTests {
    /// `lvs` rows by LV name.
    static func lvs(_ pv: LoopPV, _ vg: String) throws -> [String: [String: String]] {
        let rows = try pv.report(["lvs", "-o", "lv_name,lv_size,lv_tags,lv_attr", vg])
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["lv_name"] ?? "", $0) })
    }

    /// The tags of an `lvs` row.
    static func tags(_ row: [String: String]?) -> Set<String> {
        Set((row?["lv_tags"] ?? "").split(separator: ",").map(String.init))
    }

    @Test("after a life cycle (create, write, snapshot, resize, tags, journal, rename, remove) lvm2 shows it exactly")
    func lvm2ReadsOurSR() throws {
        let pv = try LoopPV(size: 1 << 30)
        defer { pv.close() }
        let sr = VDIName.newUUID(), vgName = "VG_XenStorage-" + sr
        let c = try LVHDContainer.create(on: pv.store(), sr: sr)
        let repo = VHDRepository(container: c)
        let a = VDIName.newUUID(), copy = VDIName.newUUID(), base = VDIName.newUUID(), b = VDIName.newUUID(), gone = VDIName.newUUID()
        _ = try repo.create(uuid: a, size: 64 << 20)
        let data = pattern(3 << 20, seed: 11)
        let chain = try VHDChain(path: repo.path(a), provider: c.provider, writable: true)
        try chain.write(data, at: 0)
        try chain.flush()
        _ = try repo.snapshot(uuid: a, copyUUID: copy, baseUUID: base)
        _ = try repo.create(uuid: b, size: 100 << 20)
        _ = try repo.resize(uuid: b, size: 200 << 20)
        try c.setTags(["swiftsm.test", "x=1"], of: "VHD-" + b)
        _ = try repo.create(uuid: gone, size: 10 << 20)
        try repo.delete(uuid: gone)
        try c.writeJournal("test_" + a, Array("pending".utf8))
        try c.sync()

        try pv.attach()
        defer { pv.detach() }
        let vgs = try pv.report(["vgs", "-o", "vg_name,vg_extent_size,lv_count,vg_free"])
        #expect(vgs.count == 1)
        #expect(vgs.first?["vg_name"] == vgName)
        #expect(vgs.first?["vg_extent_size"] == String(4 << 20))
        #expect(vgs.first?["lv_count"] == "6")
        #expect(vgs.first?["vg_free"] == String(try c.freeSpace()))
        print(try pv.lvm(["vgs", vgName]).stdout + (try pv.lvm(["lvs", "-o", "lv_name,lv_size,lv_tags,lv_attr", "--units", "m", vgName]).stdout))
        let lvs = try Self.lvs(pv, vgName)
        #expect(Set(lvs.keys) == ["MGT", "VHD-" + a, "VHD-" + copy, "VHD-" + base, "VHD-" + b, "journal-test_" + a])
        let mib = UInt64(1 << 20)
        #expect(lvs["MGT"]?["lv_size"] == String(4 * mib))
        // Leaves: calcSizeVHDLV (64 MiB → 72 MiB, 200 MiB → 208 MiB); the base copy deflated to its
        // 2 blocks of data and the metadata made for 2 TiB (4.13 MiB): 12 MiB, and read-only.
        #expect(lvs["VHD-" + a]?["lv_size"] == String(72 * mib))
        #expect(lvs["VHD-" + copy]?["lv_size"] == String(72 * mib))
        #expect(lvs["VHD-" + b]?["lv_size"] == String(208 * mib))
        #expect(lvs["VHD-" + base]?["lv_size"] == String(12 * mib))
        #expect(lvs["VHD-" + base]?["lv_attr"]?.dropFirst().first == "r")
        for leaf in [a, copy, b] { #expect(lvs["VHD-" + leaf]?["lv_attr"]?.dropFirst().first == "w") }
        #expect(Self.tags(lvs["VHD-" + b]) == ["swiftsm.test", "x=1"])
        #expect(Self.tags(lvs["journal-test_" + a]) == ["journaler"])
        #expect(lvs["journal-test_" + a]?["lv_size"] == String(4 * mib))
        let check = try pv.lvm(["vgck", vgName])
        #expect(check.status == 0 && check.warnings.isEmpty, "vgck: \(check.stderr)")

        // What lvm2 saw is what a new container reads, contents included.
        let again = try LVHDContainer(store: pv.store())
        let repo2 = VHDRepository(container: again)
        #expect(try VHDChain(path: repo2.path(copy), provider: again.provider).read(count: data.count, at: 0) == data)
        #expect(try again.journal("test_" + a) == Array("pending".utf8))
    }

    @Test("after the collector removed garbage and coalesced, lvm2 shows exactly the VDIs' LVs, sized and flagged")
    func lvm2ReadsAfterTheCollector() throws {
        let pv = try LoopPV(size: 1 << 30)
        defer { pv.close() }
        let sr = VDIName.newUUID(), vgName = "VG_XenStorage-" + sr
        let c = try LVHDContainer.create(on: pv.store(), sr: sr)
        let repo = VHDRepository(container: c)
        let a = VDIName.newUUID(), copy = VDIName.newUUID()
        _ = try repo.create(uuid: a, size: 64 << 20)
        func write(_ bytes: [UInt8], at offset: UInt64) throws {
            try repo.prepareLeaf(a)
            let chain = try VHDChain(path: repo.path(a), provider: c.provider, writable: true)
            try chain.write(bytes, at: offset)
            try chain.flush()
        }
        try write(pattern(4 << 20, seed: 1), at: 0)
        _ = try repo.snapshot(uuid: a, copyUUID: nil)
        try write(pattern(2 << 20, seed: 2), at: 8 << 20)
        _ = try repo.snapshot(uuid: a, copyUUID: copy)
        try write(pattern(2 << 20, seed: 3), at: 16 << 20)
        try repo.delete(uuid: copy)
        let before = try VHDChain(path: repo.path(a), provider: c.provider).read(count: 64 << 20, at: 0)
        let treeBefore = try repo.scan()
        let run = RunDirectory(root: pv.dir + "/run")
        try FileManager.default.createDirectory(atPath: run.root, withIntermediateDirectories: true)
        let report = GarbageCollector(sr: sr, repo: VHDRepository(container: try LVHDContainer(store: pv.store())), run: run,
                                      log: Logger(label: "lvhd", factory: { _ in SwiftLogNoOpLogHandler() })).collect()
        #expect(!report.removed.isEmpty || !report.coalesced.isEmpty || !report.leafCoalesced.isEmpty, "\(report)")
        let after = try LVHDContainer(store: pv.store())
        let repo2 = VHDRepository(container: after)
        let tree = try repo2.scan()
        #expect(tree.count < treeBefore.count, "\(treeBefore.count) VDIs before, \(tree.count) after")
        #expect(try VHDChain(path: repo2.path(a), provider: after.provider).read(count: 64 << 20, at: 0) == before)

        try pv.attach()
        defer { pv.detach() }
        let lvs = try Self.lvs(pv, vgName)
        #expect(Set(lvs.keys) == Set(["MGT"] + tree.keys.map { "VHD-" + $0 }), "\(lvs.keys.sorted())")
        for (uuid, state) in tree {
            let row = lvs["VHD-" + uuid]
            #expect(row?["lv_size"] == String(try after.utilisation(of: "VHD-" + uuid)))
            #expect(row?["lv_attr"]?.dropFirst().first == (state.readOnly ? "r" : "w"), "\(uuid): \(row ?? [:])")
            let image = try repo2.image(uuid)
            let want = after.roundedToExtents(state.readOnly ? LVHDSize.deflated(image) : LVHDSize.inflated(image, virtualSize: image.virtualSize))
            #expect(try after.utilisation(of: "VHD-" + uuid) == want, "\(uuid) readOnly \(state.readOnly)")
        }
        let check = try pv.lvm(["vgck", vgName])
        #expect(check.status == 0 && check.warnings.isEmpty, "vgck: \(check.stderr)")
    }

    @Test("a VG and LVs lvm2 made with the Python SM's names are read, resized, written and removed by the container")
    func weReadLVM2sSR() throws {
        let pv = try LoopPV(size: 512 << 20)
        defer { pv.close() }
        try pv.attach()
        defer { pv.detach() }
        let sr = VDIName.newUUID(), vgName = "VG_XenStorage-" + sr
        let u = VDIName.newUUID(), v = VDIName.newUUID()
        for args in [["pvcreate", "-ff", "-y", "--metadatasize", "10M", pv.device],
                     ["vgcreate", vgName, pv.device],
                     ["lvcreate", "-n", "MGT", "-L", "4m", "-Zn", "-Wn", "-y", vgName],
                     ["lvcreate", "-n", "VHD-" + u, "-L", "12m", "--addtag", "xapi.test", "-Zn", "-Wn", "-y", vgName],
                     ["lvcreate", "-n", "VHD-" + v, "-L", "8m", "-pr", "-Zn", "-Wn", "-y", vgName]] {
            let r = try pv.lvm(args)
            #expect(r.status == 0, "lvm \(args.joined(separator: " ")): \(r.stderr)")
        }
        // A journal the Python SM left (an interrupted inflate: `inflate_<vdi>_<old size>`).
        let jr = try pv.lvm(["lvcreate", "-n", "inflate_\(u)_12582912", "-L", "4m", "--addtag", "journaler", "-Zn", "-Wn", "-y", vgName])
        #expect(jr.status == 0, "lvcreate journal: \(jr.stderr)")
        let c = try LVHDContainer(store: pv.store())
        #expect(c.vgName == vgName)
        #expect(try c.journals() == ["inflate_\(u)_12582912": Array("12582912".utf8)])
        #expect(try c.journal("inflate_\(u)_12582912") == Array("12582912".utf8))
        try c.removeJournal("inflate_\(u)_12582912")
        #expect(try c.journals().isEmpty)
        #expect(try c.list() == ["VHD-" + u, "VHD-" + v].sorted())
        #expect(try c.tags(of: "VHD-" + u) == ["xapi.test"])
        #expect(try c.utilisation(of: "VHD-" + u) == 12 << 20)
        #expect(try c.isReadOnly("VHD-" + v))
        #expect(try !c.isReadOnly("VHD-" + u))
        try c.resize("VHD-" + u, to: 20 << 20)
        let bytes = pattern(1 << 20, seed: 5)
        let store = try c.open("VHD-" + u, writable: true)
        try store.write(bytes, at: 18 << 20)
        try store.sync()
        try c.remove("VHD-" + v)
        // And a VDI made by the repository in lvm2's VG.
        let w = VDIName.newUUID()
        _ = try VHDRepository(container: c).create(uuid: w, size: 20 << 20)
        let lvs = try Self.lvs(pv, vgName)
        #expect(Set(lvs.keys) == ["MGT", "VHD-" + u, "VHD-" + w])
        #expect(lvs["VHD-" + u]?["lv_size"] == String(20 << 20))
        #expect(Self.tags(lvs["VHD-" + u]) == ["xapi.test"])
        #expect(lvs["VHD-" + w]?["lv_size"] == String(28 << 20))
        let again = try LVHDContainer(store: pv.store())
        var back = [UInt8](repeating: 0, count: bytes.count)
        try back.withUnsafeMutableBytes { try again.open("VHD-" + u, writable: false).read(into: $0, at: 18 << 20) }
        #expect(back == bytes)
    }
}
