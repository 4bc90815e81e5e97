import Foundation
import LVM
import LVMoISCSIDriver
import SMCore
import Testing
import VHD

/// An empty block device of `bytes` bytes in memory.
func blankDisk(_ bytes: UInt64) -> MemoryStore { MemoryStore(bytes: [UInt8](repeating: 0, count: Int(bytes)), isBlockDevice: true) }

/// Deterministic pseudo-random bytes.
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
}

@Suite("LVHD container", .serialized)
struct LVHDContainerTests {
    @Test("calcSizeVHDLV: the Python SM's sizes (1 GiB → 1032 MiB, 100 GiB → +208 MiB, 2040 GiB → +4088 MiB)")
    func pythonSizes() {
        let mib: UInt64 = 1 << 20, gib: UInt64 = 1 << 30
        func lv(_ v: UInt64) -> UInt64 { LVHDSize.roundUp(LVHDSize.inflated(virtualSize: v), 4 * mib) }
        #expect(LVHDSize.emptyOverhead(virtualSize: 2 << 40) == 4_329_472)
        #expect(lv(gib) == 1032 * mib)
        #expect(lv(100 * gib) == 100 * gib + 208 * mib)
        #expect(lv(2040 * gib) == 2040 * gib + 4088 * mib)
    }

    @Test("SR create: VG_XenStorage-<sr>, 4 MiB extents, a 4 MiB MGT LV that is not a volume")
    func createLayout() throws {
        let sr = VDIName.newUUID()
        let disk = blankDisk(256 << 20)
        let c = try LVHDContainer.create(on: disk, sr: sr)
        let vg = try c.group.current()
        #expect(vg.name == "VG_XenStorage-" + sr)
        #expect(vg.extentBytes == 4 << 20)
        #expect(vg.lv("MGT").map { vg.sizeInBytes(of: $0) } == 4 << 20)
        #expect(try c.list() == [])
        // A new process finds the same VG.
        let again = try LVHDContainer(store: disk)
        #expect(again.vgName == vg.name)
        #expect(try again.freeSpace() == vg.freeBytes)
        #expect(try again.capacity().size == vg.totalExtents * (4 << 20))
    }

    @Test("a VHD inside an LV: LV stores are block devices; create, write, reopen and read back; inflated leaf")
    func vhdInsideAnLV() throws {
        let disk = blankDisk(128 << 20)
        let c = try LVHDContainer.create(on: disk, sr: VDIName.newUUID())
        let repo = VHDRepository(container: c)
        let uuid = VDIName.newUUID()
        _ = try repo.create(uuid: uuid, size: 64 << 20)
        #expect(try c.list() == ["VHD-" + uuid])
        let store = try c.open("VHD-" + uuid, writable: true)
        #expect(store.isBlockDevice)
        #expect(store is LogicalVolumeStore)
        // Python's calcSizeVHDLV(64 MiB) = 64 MiB + 4,329,472 + 32 × 4 KiB, rounded to 4 MiB: 72 MiB.
        #expect(try c.utilisation(of: "VHD-" + uuid) == 72 << 20)
        #expect(try !c.isReadOnly("VHD-" + uuid))
        let data = pattern(3 << 20, seed: 7)
        let chain = try VHDChain(path: repo.path(uuid), provider: c.provider, writable: true)
        try chain.write(data, at: 1 << 20)
        try chain.flush()
        let reopened = try LVHDContainer(store: disk)
        let back = try VHDChain(path: VHDRepository(container: reopened).path(uuid), provider: reopened.provider).read(count: data.count, at: 1 << 20)
        #expect(back == data)
        let image = try VHDImage(store: try reopened.open("VHD-" + uuid, writable: false), path: reopened.path(of: "VHD-" + uuid), writable: false)
        #expect(image.footerSource == .primary)
        let reports = Check.run(path: reopened.path(of: "VHD-" + uuid), provider: reopened.provider)
        let problems = reports.flatMap(\.problems)
        #expect(!reports.isEmpty && problems.isEmpty, "\(problems)")
    }

    @Test("snapshot: the base copy is deflated and read-only, the leaves inflated; contents kept apart")
    func snapshotSizes() throws {
        let disk = blankDisk(256 << 20)
        let c = try LVHDContainer.create(on: disk, sr: VDIName.newUUID())
        let repo = VHDRepository(container: c)
        let a = VDIName.newUUID(), copy = VDIName.newUUID(), base = VDIName.newUUID()
        _ = try repo.create(uuid: a, size: 64 << 20)
        let data = pattern(3 << 20, seed: 3)
        let chain = try VHDChain(path: repo.path(a), provider: c.provider, writable: true)
        try chain.write(data, at: 0)
        try chain.flush()
        _ = try repo.snapshot(uuid: a, copyUUID: copy, baseUUID: base)
        #expect(try c.isReadOnly("VHD-" + base))
        // 3 MiB of data (2 blocks) and the metadata made for 2 TiB (4.13 MiB), in whole extents.
        #expect(try c.utilisation(of: "VHD-" + base) == 12 << 20)
        #expect(try c.utilisation(of: "VHD-" + a) == 72 << 20)
        #expect(try c.utilisation(of: "VHD-" + copy) == 72 << 20)
        #expect(try !c.isReadOnly("VHD-" + a))
        let other = pattern(1 << 20, seed: 9)
        let leaf = try VHDChain(path: repo.path(a), provider: c.provider, writable: true)
        try leaf.write(other, at: 0)
        try leaf.flush()
        #expect(try VHDChain(path: repo.path(copy), provider: c.provider).read(count: data.count, at: 0) == data)
        #expect(try VHDChain(path: repo.path(a), provider: c.provider).read(count: other.count, at: 0) == other)
        #expect(try c.journals().isEmpty)
    }

    @Test("a VHD laid out as vhd-util does on LVHD (BAT preallocated: 2040 GiB, our engine's limit) sits in an 8 MiB LV, inflates to calcSizeVHDLV, deflates back")
    func pythonLayoutVHD() throws {
        let disk = blankDisk(256 << 20)
        let c = try LVHDContainer.create(on: disk, sr: VDIName.newUUID())
        let u = VDIName.newUUID()
        try Create.dynamic(at: c.path(of: "VHD-" + u), size: 100 << 20, fastResizeLimit: 2040 << 30, provider: c.provider)
        // The Python SM's "thin" size: roundup4MiB(4,329,472) = 8 MiB.
        #expect(try c.utilisation(of: "VHD-" + u) == 8 << 20)
        let repo = VHDRepository(container: c)
        try repo.prepareLeaf(u)
        // calcSizeVHDLV(100 MiB) = 100 MiB + 4,329,472 + 50 × 4 KiB → 108 MiB.
        #expect(try c.utilisation(of: "VHD-" + u) == 108 << 20)
        let data = pattern(5 << 20, seed: 4)
        let chain = try VHDChain(path: repo.path(u), provider: c.provider, writable: true)
        try chain.write(data, at: 50 << 20)
        try chain.flush()
        _ = try repo.resize(uuid: u, size: 200 << 20)
        #expect(try c.utilisation(of: "VHD-" + u) == 208 << 20)
        try c.settleReadOnly("VHD-" + u)
        // Metadata for 2 TiB and 3 blocks: 4,329,472 + 3 × (2 MiB + 4 KiB) + footer → 12 MiB.
        #expect(try c.utilisation(of: "VHD-" + u) == 12 << 20)
        #expect(try c.isReadOnly("VHD-" + u))
        #expect(try VHDChain(path: repo.path(u), provider: LVHDContainer(store: disk).provider).read(count: data.count, at: 50 << 20) == data)
    }

    @Test("a full VG: create and inflate past the free extents fail typed (44 / 180) and change nothing")
    func fullVolumeGroup() throws {
        // 80 MiB: 11 MiB before the first extent, 17 extents, MGT takes one: 64 MiB free.
        let disk = blankDisk(80 << 20)
        let c = try LVHDContainer.create(on: disk, sr: VDIName.newUUID())
        #expect(try c.freeSpace() == 64 << 20)
        let repo = VHDRepository(container: c)
        let a = VDIName.newUUID()
        _ = try repo.create(uuid: a, size: 32 << 20)
        let before = try c.group.current()
        #expect(throws: LVHDError.self) { _ = try c.create("VHD-" + VDIName.newUUID(), size: 100 << 20) }
        do {
            try c.prepareForGrowth("VHD-" + a, virtualSize: 1 << 30)
            Issue.record("inflating past the VG's free extents succeeded")
        } catch let e as LVHDError {
            guard case .outOfSpace = e else { Issue.record("wrong error \(e)"); return }
            #expect(e.fault(for: .vdiAttach).code == 180)
            #expect(e.fault(for: .vdiAttach).name == "LVMProvisionAttach")
            #expect(e.fault(for: .vdiCreate).code == 44)
        }
        #expect(throws: LVHDError.self) { try c.resize("VHD-" + a, to: 1 << 30) }
        #expect(throws: LVHDError.self) { try c.writeJournal("big_" + a, [UInt8](repeating: 1, count: 100 << 20)) }
        let after = try LVHDContainer(store: disk).group.current()
        #expect(after.seqno == before.seqno)
        #expect(after == before)
        #expect(try c.utilisation(of: "VHD-" + a) == 40 << 20)
    }

    @Test("tags, rename over an existing LV, remove; CBT logs are tagged cbtlog")
    func tagsRenameRemove() throws {
        let c = try LVHDContainer.create(on: blankDisk(128 << 20), sr: VDIName.newUUID())
        let u = VDIName.newUUID()
        _ = try c.create("VHD-" + u, size: 5 << 20)
        #expect(try c.utilisation(of: "VHD-" + u) == 8 << 20)
        try c.setTags(["hidden", "x=1"], of: "VHD-" + u)
        #expect(try c.tags(of: "VHD-" + u) == ["hidden", "x=1"])
        try c.setTags(["y"], of: "VHD-" + u)
        #expect(try c.tags(of: "VHD-" + u) == ["y"])
        _ = try c.create("VHD-" + u + ".new", size: 1)
        try c.rename("VHD-" + u + ".new", to: "VHD-" + u)
        #expect(try c.list() == ["VHD-" + u])
        #expect(try c.utilisation(of: "VHD-" + u) == 4 << 20)
        _ = try c.create(u + ".cbtlog", size: 1)
        #expect(try c.tags(of: u + ".cbtlog") == ["cbtlog"])
        try c.remove("VHD-" + u)
        #expect(!c.exists("VHD-" + u))
        #expect(throws: (any Error).self) { try c.remove("VHD-" + u) }
    }

    @Test("two containers on one PV (two processes): each re-reads the VG the other committed")
    func twoWriters() throws {
        let dir = NSTemporaryDirectory() + "lvhd-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = try FileStore.create(path: dir + "/pv.img")
        try file.resize(to: 256 << 20)
        _ = try LVHDContainer.create(on: file, sr: VDIName.newUUID())
        let a = try LVHDContainer(store: FileStore(path: dir + "/pv.img", writable: true))
        let b = try LVHDContainer(store: FileStore(path: dir + "/pv.img", writable: true))
        _ = try a.create("VHD-" + VDIName.newUUID(), size: 1)
        #expect(try b.list().count == 1)
        _ = try b.create("VHD-" + VDIName.newUUID(), size: 1)
        try b.writeJournal("j_1", [1, 2, 3])
        _ = try a.create("VHD-" + VDIName.newUUID(), size: 1)
        #expect(try a.journal("j_1") == [1, 2, 3])
        let fresh = try LVHDContainer(store: FileStore(path: dir + "/pv.img", writable: true))
        #expect(try fresh.list().count == 3)
        #expect(try fresh.group.current().seqno == 6)
    }

    @Test("one container used by many threads: every commit serialised, none lost")
    func threadsShareOneContainer() throws {
        let disk = blankDisk(256 << 20)
        let c = try LVHDContainer.create(on: disk, sr: VDIName.newUUID())
        let names = (0..<24).map { _ in "VHD-" + VDIName.newUUID() }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            do {
                _ = try c.create(names[i], size: 1)
                try c.setTags(["n\(i)"], of: names[i])
                try c.writeJournal("j_\(i)", [UInt8(i)])
            } catch { failures.add("\(names[i]): \(error)") }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        let again = try LVHDContainer(store: disk)
        #expect(try again.list() == names.sorted())
        #expect(try again.journals().count == names.count)
        for (i, n) in names.enumerated() { #expect(try again.tags(of: n) == ["n\(i)"]) }
        // SR create (1), MGT (2), then three commits per thread.
        #expect(try again.group.current().seqno == 2 + 3 * UInt64(names.count))
    }

    @Test("two containers over one PV in one process, used by many threads: their commits never interleave")
    func threadsOnTwoInstances() throws {
        let disk = blankDisk(256 << 20)
        _ = try LVHDContainer.create(on: disk, sr: VDIName.newUUID())
        let pair = [try LVHDContainer(store: disk), try LVHDContainer(store: disk)]
        let names = (0..<24).map { _ in "VHD-" + VDIName.newUUID() }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            do {
                _ = try pair[i % 2].create(names[i], size: 1)
                try pair[(i + 1) % 2].setTags(["n\(i)"], of: names[i])
            } catch { failures.add("\(names[i]): \(error)") }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        let again = try LVHDContainer(store: disk)
        #expect(try again.list() == names.sorted())
        #expect(try again.group.current().seqno == 2 + 2 * UInt64(names.count))
    }

    @Test("journals survive a crash at every write: an entry reads back whole (old or new) or is absent")
    func journalCrashAtEveryWrite() throws {
        let setup = blankDisk(64 << 20)
        let c = try LVHDContainer.create(on: setup, sr: VDIName.newUUID())
        let old = pattern(5000, seed: 1), new = pattern(7000, seed: 2), other = pattern(300, seed: 3)
        try c.writeJournal("resize_x", old)
        var n = 0, completed = false, sawOld = false, sawNew = false
        while !completed {
            let disk = MemoryStore(bytes: setup.bytes, isBlockDevice: true)
            let crashing = CrashAfterStore(disk, writes: n)
            do {
                let live = try LVHDContainer(store: crashing)
                try live.writeJournal("resize_x", new)
                try live.writeJournal("snapshot_y", other)
                try live.removeJournal("resize_x")
                completed = true
            } catch is CrashAfterStore.Crash {
            }
            let after = try LVHDContainer(store: disk)
            let x = try after.journal("resize_x"), y = try after.journal("snapshot_y")
            #expect(x == nil || x == old || x == new, "after \(n) writes resize_x is neither old nor new")
            #expect(y == nil || y == other, "after \(n) writes snapshot_y is half-written")
            if x == old { sawOld = true }
            if x == new { sawNew = true }
            if y != nil { #expect(x != old, "snapshot_y committed before resize_x was replaced") }
            if completed {
                #expect(x == nil)
                #expect(y == other)
                #expect(try after.journals().keys.sorted() == ["snapshot_y"])
                #expect(try after.list() == [])
            }
            n += 1
            #expect(n < 200)
            if n >= 200 { break }
        }
        #expect(sawOld && sawNew)
    }
}

/// Errors collected from several threads.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    /// Records one.
    func add(_ s: String) { lock.withLock { items.append(s) } }
    /// Every one recorded.
    var all: [String] { lock.withLock { items } }
}
