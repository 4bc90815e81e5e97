import FakeXapi
import Foundation
import ISCSI
import TestSupport
import LVMoISCSIDriver
import SMCore
import Testing
import VHD

/// What the LVM-over-iSCSI SR does beyond the request documents' life cycle, each test on a
/// private tgt target: sr_probe's lists for XenCenter, bad device-config refused with the
/// Python SM's faults and nothing written, CHAP secrets through XenAPI that never reach a log
/// or a process's arguments, thin provisioning, multipath with a path taken away under a
/// writing guest, a target restarted under one, and a second host reading what the master made.
@Suite(.serialized) struct LVMoISCSITests {
    static let skip = ISCSITestTarget.unavailableReason

    /// An SR environment on a private target (nothing created yet).
    func makeSR(sizeMB: UInt64 = 512, chap: (user: String, password: String, targetUser: String?, targetPassword: String?)? = nil) throws -> TestSR {
        try TestSR(mode: .lvmoiscsi, imageSize: sizeMB << 20, chap: chap)
    }

    /// A hash of the LUN's bytes (what "nothing written" compares).
    func lunHash(_ sr: TestSR) throws -> [UInt8] {
        let store = try FileStore(path: sr.iscsi!.backingFile, writable: false)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < store.size {
            let n = Int(min(UInt64(buffer.count), store.size - offset))
            try buffer.withUnsafeMutableBytes { try store.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: offset) }
            for b in buffer[0..<n] { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
            offset += UInt64(n)
        }
        return withUnsafeBytes(of: h) { Array($0) }
    }

    /// Replaces (or with nil removes) device-config `key`.
    static func set(_ key: String, _ value: String?) -> (inout RequestDocument) -> Void {
        { doc in
            doc.editDeviceConfig { m in
                m.removeAll { $0.name == key }
                if let value { m.append(XMLRPCMember(key, .string(value))) }
            }
        }
    }

    /// `a` then `b`.
    static func both(_ a: @escaping (inout RequestDocument) -> Void, _ b: @escaping (inout RequestDocument) -> Void) -> (inout RequestDocument) -> Void {
        { doc in a(&doc); b(&doc) }
    }

    /// vdi_create's arguments for a disk of `size` bytes.
    static func size(_ size: UInt64) -> (inout RequestDocument) -> Void {
        { $0.setArgs([String(size), "test disk", "", "", "false", "19700101T00:00:00Z", "", "false"]) }
    }

    /// `allocation=thin` in every call of a thin SR.
    static var thin: (inout RequestDocument) -> Void { Self.set("allocation", "thin") }

    /// A thin SR, made and attached, holding one 64 MiB VDI.
    func thinSR() throws -> (TestSR, String) {
        let sr = try makeSR()
        do {
            try sr.value(try sr.call("sr_create", Self.thin))
            try sr.value(try sr.call("sr_attach", Self.thin))
            return (sr, try sr.vdiInfo(try sr.value(try sr.call("vdi_create", Self.both(Self.thin, Self.size(64 << 20))))))
        } catch {
            sr.cleanup()
            throw error
        }
    }

    // MARK: - Probe

    @Test func probeListsTheTargetsAndTheLUNsForXenCenter() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        let iscsi = try #require(sr.iscsi)
        // Without targetIQN: the targets on stderr, fault 96.
        let noIQN = try sr.call("sr_probe") { doc in Self.set("targetIQN", nil)(&doc); Self.set("SCSIid", nil)(&doc) }
        #expect(sr.fault(noIQN)?.code == 96)
        #expect(noIQN.stderr.contains("<iscsi-target-iqns>\n\t<TGT>\n\t\t<Index>0</Index>\n\t\t<IPAddress>127.0.0.1</IPAddress>\n\t\t<TargetIQN>\(iscsi.iqn)</TargetIQN>\n\t</TGT>\n</iscsi-target-iqns>"),
                "\(noIQN.stderr)")
        // Without SCSIid: the target's disks on stderr, fault 107.
        let noID = try sr.call("sr_probe", Self.set("SCSIid", nil))
        #expect(sr.fault(noID)?.code == 107)
        #expect(noID.stderr.contains("<iscsi-target>\n\t<LUN>\n\t\t<vendor>IET</vendor>"), "\(noID.stderr)")
        #expect(noID.stderr.contains("<LUNid>1</LUNid>\n\t\t<size>\(512 << 20)</size>\n\t\t<SCSIid>\(iscsi.scsiID)</SCSIid>"), "\(noID.stderr)")
        // Complete: the SR on the LUN, if any.
        #expect(try sr.value(try sr.call("sr_probe")).stringValue == "<?xml version=\"1.0\" ?>\n<SRlist/>\n")
        try sr.createAndAttach()
        let listed = try #require(try sr.value(try sr.call("sr_probe")).stringValue)
        #expect(listed.contains("<UUID>\(sr.srUUID)</UUID>\n\t\t<Devlist>/dev/disk/by-id/scsi-\(iscsi.scsiID)</Devlist>"), "\(listed)")
    }

    // MARK: - Bad configuration

    @Test func badConfigurationGetsThePythonSMFaultsAndWritesNothing() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        let iscsi = try #require(sr.iscsi)
        let before = try lunHash(sr)
        let cases: [(Int32, String, (inout RequestDocument) -> Void)] = [
            (95, "no target", Self.set("target", nil)),
            (141, "a port nothing listens on", Self.set("port", String(iscsi.port + 1))),
            (142, "a port that is not a number", Self.set("port", "32a60")),
            (140, "a target that is no address", Self.set("target", "no/such host")),
            (106, "an IQN that is not one", Self.set("targetIQN", "not-an-iqn")),
            (96, "an IQN the portal does not serve", Self.set("targetIQN", "iqn.2026-12.org.swiftsm.test:nobody")),
            (107, "a SCSI id no LUN has", Self.set("SCSIid", "36001405deadbeefdeadbeefdeadbeef0")),
            (99, "two LUNs for one shared SR", Self.set("SCSIid", iscsi.scsiID + "," + iscsi.scsiID)),
            (58, "sr_create on a host that is not the master", Self.set("SRmaster", "false")),
            (115, "chapuser without chappassword", Self.set("chapuser", "someone")),
        ]
        for (code, what, edit) in cases {
            let result = try sr.call("sr_create", edit)
            #expect(sr.fault(result)?.code == code, "\(what): \(result)")
        }
        #expect(try lunHash(sr) == before, "a refused sr_create wrote nothing")
        #expect(try sr.lvm2Report(["pvs", "-o", "pv_name"]).isEmpty)

        try sr.value(try sr.call("sr_create"))
        let again = try sr.call("sr_create")
        #expect(sr.fault(again)?.code == 42, "the LUN already holds this SR (SRExists): \(again)")
        // Another SR's create on an LUN that holds a PV: 16, unless forced.
        let other = UUID().uuidString.lowercased()
        let inUse = try sr.call("sr_create") { $0[member: "sr_uuid"] = .string(other) }
        #expect(sr.fault(inUse)?.code == 16, "\(inUse)")
        #expect(try sr.lvm2Report(["vgs", "-o", "vg_name"]).map { $0["vg_name"] } == ["VG_XenStorage-" + sr.srUUID])
        try sr.value(try sr.call("sr_create") { doc in doc[member: "sr_uuid"] = .string(other); Self.set("force", "true")(&doc) })
        #expect(try sr.lvm2Report(["vgs", "-o", "vg_name"]).map { $0["vg_name"] } == ["VG_XenStorage-" + other])
        // Attaching the SR whose VG is gone: 47.
        #expect(sr.fault(try sr.call("sr_attach"))?.code == 47)
    }

    // MARK: - CHAP

    @Test func chapSecretsComeFromXenAPIAndReachNoLogNorArgv() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let password = "pw-" + UUID().uuidString.prefix(12).lowercased()
        let targetPassword = "tpw-" + UUID().uuidString.prefix(12).lowercased()
        let sr = try makeSR(chap: ("swiftsm-user", password, "swiftsm-target", targetPassword))
        defer { sr.cleanup() }
        let secret = sr.fake.addSecret(password), targetSecret = sr.fake.addSecret(targetPassword)
        // xapi keeps the passwords in secrets: device-config names them.
        let bySecret: (inout RequestDocument) -> Void = { doc in
            Self.set("chappassword", nil)(&doc)
            Self.set("chappassword_secret", secret)(&doc)
            Self.set("incoming_chappassword", nil)(&doc)
            Self.set("incoming_chappassword_secret", targetSecret)(&doc)
        }
        var outputs: [String] = []
        func record(_ r: SmdriverResult) -> SmdriverResult { outputs += [r.stdout, r.stderr]; return r }
        try sr.value(record(try sr.call("sr_create", bySecret)))
        try sr.value(record(try sr.call("sr_attach", bySecret)))
        let v = try sr.vdiInfo(try sr.value(record(try sr.call("vdi_create", Self.both(bySecret, Self.size(64 << 20))))))
        let attach = try sr.value(record(try sr.call("vdi_attach", vdi: v, bySecret)))
        try sr.value(record(try sr.call("vdi_activate", vdi: v, bySecret)))
        let nbd = try #require(attach[member: "params_nbd"]?.stringValue)
        // The data path has no session: it logs in with the secret sr_attach kept (0600).
        let out = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", nbd, "-c", "write -P 7 0 65536", "-c", "read -P 7 0 65536"])
        #expect(out.contains("read 65536/65536") && !out.contains("verification failed"), "\(out)")
        for pid in sr.datapathPIDs() {
            let argv = String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data(), as: UTF8.self)
            let environ = String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data(), as: UTF8.self)
            #expect(!argv.contains(password) && !environ.contains(password), "the data path's argv or environment holds the password")
        }
        let kept = sr.runDir + "/secrets/" + sr.srUUID + "/chappassword"
        let attributes = try FileManager.default.attributesOfItem(atPath: kept)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        try sr.value(record(try sr.call("vdi_deactivate", vdi: v, bySecret)))

        // A wrong password: the login is refused (68), the text names no password.
        let wrong = sr.fake.addSecret("not-" + password)
        let refused = record(try sr.call("sr_probe") { doc in bySecret(&doc); Self.set("chappassword_secret", wrong)(&doc) })
        #expect(sr.fault(refused)?.code == 68, "\(refused)")
        try sr.value(record(try sr.call("sr_detach", bySecret)))
        #expect(!FileManager.default.fileExists(atPath: kept), "sr_detach forgets the kept secrets")

        let log = try String(contentsOfFile: sr.runDir + "/SMlog", encoding: .utf8)
        for text in outputs + [log] + sr.files() {
            #expect(!text.contains(password) && !text.contains(targetPassword) && !text.contains("not-" + password), "a password leaked")
        }
        let plug = (try? FileManager.default.contentsOfDirectory(atPath: sr.runDir + "/sr")) ?? []
        for name in plug {
            let text = (try? String(contentsOfFile: sr.runDir + "/sr/" + name, encoding: .utf8)) ?? ""
            #expect(!text.contains(password), "the plug record holds the password")
        }
    }

    // MARK: - Thin provisioning

    @Test func thinLeavesAreDeflatedWhileNoHostHasThemActive() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        let thin = Self.set("allocation", "thin")
        try sr.value(try sr.call("sr_create", thin))
        try sr.value(try sr.call("sr_attach", thin))
        #expect(sr.fake.sr(uuid: sr.srUUID)?.smConfig["allocation"] == "thin")
        func create(_ size: UInt64) throws -> String {
            try sr.vdiInfo(try sr.value(try sr.call("vdi_create", Self.both(thin, Self.size(size)))))
        }
        func lvSize(_ v: String) throws -> UInt64 { try #require(try sr.disk()[v]).fileSize }
        let v = try create(64 << 20)
        let empty = try lvSize(v)
        // Its metadata only, made for 2 TiB as vhd-util -S makes it: the Python SM's 8 MiB.
        #expect(empty == 8 << 20, "a new thin leaf holds its metadata only: \(empty)")
        #expect(sr.fake.vdi(uuid: v)?.physicalUtilisation == String(8 << 20))
        // Over-provisioning: a 1 GiB disk on a 512 MiB LUN is made, but cannot be activated (180).
        let big = try create(1 << 30)
        #expect(sr.fault(try sr.call("vdi_activate", vdi: big, thin))?.code == 180)

        let attach = try sr.value(try sr.call("vdi_attach", vdi: v, thin))
        try sr.value(try sr.call("vdi_activate", vdi: v, thin))
        let inflated = try lvSize(v)
        #expect(inflated == 72 << 20, "activation inflates the leaf to calcSizeVHDLV: \(inflated)")
        let nbd = try #require(attach[member: "params_nbd"]?.stringValue)
        let out = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", nbd, "-c", "write -P 9 0 8M", "-c", "flush"])
        #expect(out.contains("wrote 8388608/8388608"), "\(out)")
        let hash = try sr.contentHash(v)
        try sr.value(try sr.call("vdi_deactivate", vdi: v, thin))
        // The metadata (4.13 MiB), four 2 MiB blocks with their bitmaps, the footer: 4 extents.
        let deflated = try lvSize(v)
        #expect(deflated == 16 << 20, "deactivation deflates the leaf to its data: \(deflated)")
        #expect(sr.fake.vdi(uuid: v)?.physicalUtilisation == String(16 << 20), "the record follows")
        #expect(try sr.contentHash(v) == hash)
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
        // Snapshot of the inactive leaf: both leaves stay deflated.
        let s = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v, thin)))
        #expect(try lvSize(v) == 8 << 20 && lvSize(s) == 8 << 20)
        #expect(try sr.contentHash(s) == hash && sr.contentHash(v) == hash)
        try sr.value(try sr.call("vdi_activate", vdi: v, thin))
        let read = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", "-r", nbd, "-c", "read -P 9 0 8M"])
        #expect(read.contains("read 8388608/8388608") && !read.contains("verification failed"), "\(read)")
        try sr.value(try sr.call("vdi_deactivate", vdi: v, thin))
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
    }

    @Test func anotherHostHasTheMasterInflateAndDeflateAThinLeaf() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let (sr, v) = try thinSR()
        defer { sr.cleanup() }
        let thin = Self.thin
        func lvSize() throws -> UInt64 { try #require(try sr.disk()[v]).fileSize }
        #expect(try lvSize() == 8 << 20)
        // Host B: its own run directory and host ref; the fake runs host.call_plugin on the master
        // (this SR's run directory) as xapi runs /etc/xapi.d/plugins/lvhd-thin there.
        let hostB = "/tmp/lb-" + UUID().uuidString.prefix(8).lowercased(), refB = "OpaqueRef:0c0c0c0c-0c0c-4c0c-8c0c-0c0c0c0c0c0c"
        try FileManager.default.createDirectory(atPath: hostB, withIntermediateDirectories: true)
        defer {
            for pid in TestSR.datapathPIDs(runDir: hostB) { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: hostB)
        }
        sr.fake.addHost(ref: refB)
        sr.fake.setPoolMaster(E2EFixtures.hostRef)
        sr.fake.setPluginRunner(sr.hostPlugins(on: [E2EFixtures.hostRef: sr.runDir]))
        func onB(_ command: String, vdi: String? = nil, args: [String]? = nil) throws -> SmdriverResult {
            var doc = try sr.document(command, vdi: vdi)
            doc[member: "host_ref"] = .string(refB)
            Self.both(thin, Self.set("SRmaster", "false"))(&doc)
            if let args { doc.setArgs(args) }
            var env = sr.environment
            env["SWIFTSM_RUN_DIR"] = hostB
            return try Smdriver.run([doc.text], driver: "lvmoiscsi", environment: env)
        }
        try sr.value(try onB("sr_attach"))
        let attach = try sr.value(try onB("vdi_attach", vdi: v, args: ["true"]))
        try sr.value(try onB("vdi_activate", vdi: v, args: ["true"]))
        #expect(try lvSize() == 72 << 20, "the master inflated the leaf for B")
        #expect(sr.fake.arguments(of: "host.call_plugin").contains { $0.count > 2 && $0[1].stringValue == "lvhd-thin" && $0[2].stringValue == "attach" })
        let out = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", try #require(attach[member: "params_nbd"]?.stringValue),
                                                     "-c", "write -P 3 0 4M", "-c", "flush"])
        #expect(out.contains("wrote 4194304/4194304"), "\(out)")
        try sr.value(try onB("vdi_deactivate", vdi: v))
        let deflated = try lvSize()
        // The metadata (4.13 MiB) and two 2 MiB blocks: 3 extents.
        #expect(deflated == 12 << 20, "the master deflated it after B's last deactivation: \(deflated)")
        #expect(try VHDChain(path: sr.path(v), provider: sr.provider).read(count: 4 << 20, at: 0) == [UInt8](repeating: 3, count: 4 << 20))
        // A master that cannot: 180, and no data path on B.
        sr.fake.setPluginRunner { _, _, function, _ in .failure(FakeXapiPluginError(["XENAPI_PLUGIN_FAILURE", function, "OSError", "gone"])) }
        #expect(sr.fault(try onB("vdi_activate", vdi: v, args: ["true"]))?.code == 180)
        #expect(TestSR.datapathPIDs(runDir: hostB).isEmpty)
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
    }

    @Test func thePythonSMsInterruptedInflateIsUndone() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let (sr, v) = try thinSR()
        defer { sr.cleanup() }
        let thin = Self.thin
        let attach = try sr.value(try sr.call("vdi_attach", vdi: v, thin))
        try sr.value(try sr.call("vdi_activate", vdi: v, thin))
        let out = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", try #require(attach[member: "params_nbd"]?.stringValue),
                                                     "-c", "write -P 8 1M 3M", "-c", "flush"])
        #expect(out.contains("wrote 3145728/3145728"), "\(out)")
        try sr.value(try sr.call("vdi_deactivate", vdi: v, thin))
        let hash = try sr.contentHash(v)
        let before = try #require(try sr.disk()[v]).fileSize
        #expect(before < 72 << 20, "deflated: \(before)")
        // The Python SM's inflate, killed after its journal, the lvresize and the zeroing of the
        // LV's new last sector (before `vhd-util modify` moved the footer there).
        let provider = try #require(sr.provider as? LVHDStoreProvider)
        try provider.group.update("python inflate") { vg in
            try vg.createLV(name: "inflate_\(v)_\(before)", extents: 1, tags: ["journaler"])
            try vg.resizeLV("VHD-" + v, extents: 18)
        }
        let lv = try provider.open(sr.path(v), writable: true)
        try lv.write([UInt8](repeating: 0, count: 512), at: lv.size - 512)
        try lv.sync()
        #expect(try sr.disk()[v]?.fileSize == 72 << 20)
        // The next command on the master undoes it: the LV back to its size, the journal gone.
        try sr.value(try sr.call("sr_scan", thin))
        #expect(try sr.disk()[v]?.fileSize == before)
        #expect(!sr.files().contains { $0.hasPrefix("inflate_") }, "\(sr.files())")
        #expect(try sr.contentHash(v) == hash)
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
    }

    @Test func thePythonSMsInterruptedSnapshotsAreFinishedOrUndone() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let finished = try sr.createVDI(size: 64 << 20), undone = try sr.createVDI(size: 64 << 20)
        for (i, v) in [finished, undone].enumerated() {
            let chain = try VHDChain(path: sr.path(v), provider: sr.provider, writable: true)
            try chain.write([UInt8](repeating: UInt8(0x30 + i), count: 3 << 20), at: 1 << 20)
            try chain.flush()
        }
        let hashes = [finished: try sr.contentHash(finished), undone: try sr.contentHash(undone)]
        let provider = try #require(sr.provider as? LVHDStoreProvider)
        // The Python SM's snapshot, killed: its journal LV (value inside), then the rename of the
        // VDI's LV to the base copy's.
        func interrupted(_ v: String, base: String) throws {
            let journal = "clone_\(v)_1"
            try provider.group.update("python clone journal") { vg in
                try vg.createLV(name: journal, extents: 1, tags: ["journaler"])
                let value = Array("\(base)_".utf8)
                let store = try provider.group.store(of: journal, in: vg, writable: true)
                try store.write(Array("\(value.count) ".utf8) + value, at: 0)
                try store.sync()
            }
            try provider.group.update("python rename") { vg in try vg.renameLV("VHD-" + v, to: "VHD-" + base) }
        }
        let finishedBase = UUID().uuidString.lowercased(), undoneBase = UUID().uuidString.lowercased()
        // Killed after the new leaf was made over the base, before the base was hidden.
        try interrupted(finished, base: finishedBase)
        try Snapshot.create(child: sr.path(finished), parent: sr.path(finishedBase), provider: sr.provider)
        // Killed after lvcreate of the new leaf, before vhd-util snapshot wrote it.
        try interrupted(undone, base: undoneBase)
        try provider.group.update("python lvcreate") { vg in try vg.createLV(name: "VHD-" + undone, extents: 2, tags: []) }

        // The next command on the master settles both.
        try sr.value(try sr.call("sr_scan"))
        #expect(!sr.files().contains { $0.hasPrefix("clone_") }, "\(sr.files())")
        let disk = try sr.disk()
        #expect(disk[finished]?.parent == finishedBase && disk[finishedBase]?.hidden == true, "\(disk)")
        #expect(try provider.group.current().lv("VHD-" + finishedBase)?.isReadOnly == true, "the base copy is read-only")
        #expect(disk[undone]?.parent == nil && disk[undoneBase] == nil, "\(disk)")
        #expect(try provider.group.current().lv("VHD-" + undone)?.isReadOnly == false)
        #expect((disk[undone]?.fileSize ?? 0) >= 64 << 20, "inflated again as a thick leaf")
        #expect(try sr.contentHash(finished) == hashes[finished] && sr.contentHash(undone) == hashes[undone])
        #expect(sr.fake.vdi(uuid: finishedBase)?.managed == false && sr.fake.vdi(uuid: undoneBase) == nil)
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
    }

    @Test func thePythonSMsInterruptedCollectorIsSettled() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 64 << 20)
        let chain = try VHDChain(path: sr.path(v), provider: sr.provider, writable: true)
        try chain.write([UInt8](repeating: 0x41, count: 3 << 20), at: 1 << 20)
        try chain.flush()
        // Two snapshots with a write between them: base P holds the first data, node X the
        // second; the first snapshot deleted, X is P's only child, with children v and s2.
        let s1 = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v)))
        let p = try #require(try sr.disk()[v]?.parent)
        let leaf = try VHDChain(path: sr.path(v), provider: sr.provider, writable: true)
        try leaf.write([UInt8](repeating: 0x42, count: 1 << 20), at: 2 << 20)
        try leaf.flush()
        let s2 = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v)))
        let x = try #require(try sr.disk()[v]?.parent)
        try sr.value(try sr.call("vdi_delete", vdi: s1))
        let setup = try sr.disk()
        #expect(setup[x]?.parent == p && x != p, "p \(p) x \(x): \(setup)")
        let hash = try sr.contentHash(v)
        #expect(try sr.contentHash(s2) == hash)
        let provider = try #require(sr.provider as? LVHDStoreProvider)
        /// A journal LV of the Python SM's collector: `<type>_<id>_1`, the value inside when given.
        func journal(_ name: String, inside value: String?) throws {
            try provider.group.update("python journal") { vg in
                try vg.createLV(name: name, extents: 1, tags: ["journaler"])
                let store = try provider.group.store(of: name, in: vg, writable: true)
                let bytes = value.map { Array("\($0.utf8.count) \($0)".utf8) } ?? []
                try store.write(bytes + [UInt8](repeating: 0, count: 512), at: 0)
                try store.sync()
            }
        }

        // Its merge of X into P, interrupted: nothing visible changed; the entry goes.
        try journal("coalesce_\(x)_1", inside: nil)
        try sr.value(try sr.call("sr_scan"))
        #expect(!sr.files().contains { $0.hasPrefix("coalesce_") }, "\(sr.files())")
        #expect(try sr.disk()[x]?.parent == p && sr.disk()[v]?.parent == x && sr.disk()[s2]?.parent == x)

        // Its relink after the merge, interrupted with v relinked to P and s2 not: finished.
        // The merge as the Python SM makes it: P's LV grown and writable, its footer at the new
        // end, X's data merged into it.
        try provider.group.update("python inflate") { vg in
            let grown = try #require(vg.lv("VHD-" + p)).extentCount + 16
            try vg.resizeLV("VHD-" + p, extents: grown)
            try vg.setReadOnly(false, lv: "VHD-" + p)
        }
        let parentStore = try provider.open(sr.path(p), writable: true)
        let footer = try parentStore.read(count: 512, at: 0)
        try parentStore.write(footer, at: parentStore.size - 512)
        try parentStore.sync()
        try Coalesce.run(child: sr.path(x), provider: sr.provider)
        try Relink.run(child: sr.path(v), newParent: sr.path(p), provider: sr.provider)
        try journal("relink_\(x)_1", inside: nil)
        try sr.value(try sr.call("sr_scan"))
        var disk = try sr.disk()
        #expect(!sr.files().contains { $0.hasPrefix("relink_") }, "\(sr.files())")
        #expect(disk[x] == nil && disk[v]?.parent == p && disk[s2]?.parent == p, "\(disk)")
        #expect(try sr.contentHash(v) == hash && sr.contentHash(s2) == hash)
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")

        // Its leaf coalesce of v into P (v holds nothing of its own since the last snapshot),
        // interrupted after the merge and the rename of v's LV to VHD-OLD_<v> (P made writable
        // for the merge, still hidden): finished, P under v's name.
        try sr.value(try sr.call("vdi_delete", vdi: s2))
        try journal("leaf_\(v)_1", inside: p)
        try provider.group.update("python leaf coalesce") { vg in
            try vg.setReadOnly(false, lv: "VHD-" + p)
            try vg.renameLV("VHD-" + v, to: "VHD-OLD_" + v)
        }
        try sr.value(try sr.call("sr_scan"))
        disk = try sr.disk()
        #expect(!sr.files().contains { $0.hasPrefix("leaf_") || $0.contains("OLD_") }, "\(sr.files())")
        #expect(disk[p] == nil && disk[v]?.parent == nil && disk[v]?.hidden == false, "\(disk)")
        #expect(try provider.group.current().lv("VHD-" + v)?.isReadOnly == false)
        #expect(try sr.contentHash(v) == hash)
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
    }

    // MARK: - Multipath, outages

    @Test func multipathCountsPathsAndWritesOnThroughALostOne() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        let iscsi = try #require(sr.iscsi)
        try iscsi.addPortal("127.0.0.2:\(iscsi.port)")
        let twoPaths = Self.set("target", "127.0.0.1,127.0.0.2")
        try sr.value(try sr.call("sr_create", twoPaths))
        try sr.value(try sr.call("sr_attach", twoPaths))
        let key = "mpath-" + iscsi.scsiID
        #expect(sr.fake.hostOtherConfig(E2EFixtures.hostRef)?[key] == "[2, 2]")
        #expect(sr.fake.pbds.values.first?.otherConfig["multipathed"] == "true")
        let v = try sr.vdiInfo(try sr.value(try sr.call("vdi_create", Self.both(twoPaths, Self.size(64 << 20)))))
        try sr.value(try sr.call("vdi_attach", vdi: v, twoPaths))
        try sr.value(try sr.call("vdi_activate", vdi: v, twoPaths))
        let before = try NBDGuest.stats(sr, v)
        #expect(before.activePaths == 2 && before.totalPaths == 2, "\(before)")
        var during: DatapathStats?
        let report = try NBDGuest.run(sr, v, seconds: 12) {
            Thread.sleep(forTimeInterval: 2)
            try iscsi.removePortal("127.0.0.1:\(iscsi.port)")
            // The path checker finds the lost path within its interval (5 s), used or not.
            let deadline = Date().addingTimeInterval(8)
            repeat {
                Thread.sleep(forTimeInterval: 0.5)
                during = try NBDGuest.stats(sr, v)
            } while during?.activePaths != 1 && Date() < deadline
        }
        #expect(report.errors == 0 && report.mismatches == 0, "the guest saw \(report.errors) errors, \(report.mismatches) wrong blocks")
        #expect(report.writes > 50, "\(report.writes) writes")
        #expect(during?.activePaths == 1 && during?.totalPaths == 2, "\(String(describing: during))")
        let after = try NBDGuest.stats(sr, v)
        #expect(after.fastWrites > 0, "rewrites skip the chain thread: \(after)")
        try sr.value(try sr.call("vdi_deactivate", vdi: v, twoPaths))
        try NBDGuest.expectAcknowledgedBlocks(report, in: sr, v)
    }

    @Test func aTargetRestartedUnderAWritingGuestLosesNothing() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        let iscsi = try #require(sr.iscsi)
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 64 << 20)
        try sr.value(try sr.call("vdi_attach", vdi: v))
        try sr.value(try sr.call("vdi_activate", vdi: v))
        var held: DatapathStats?
        let report = try NBDGuest.run(sr, v, seconds: 10) {
            Thread.sleep(forTimeInterval: 2)
            try iscsi.kill()
            Thread.sleep(forTimeInterval: 3)
            held = try NBDGuest.stats(sr, v)
            try iscsi.restart()
        }
        #expect(report.errors == 0 && report.mismatches == 0, "the guest saw \(report.errors) errors, \(report.mismatches) wrong blocks")
        #expect(report.maxlat >= 2, "a write waited for the target: \(report.maxlat) s")
        #expect((held?.holdingSeconds ?? 0) > 1, "stats while the target is down: \(String(describing: held))")
        // Rewrites of blocks the leaf holds went from I/O threads without the chain thread, through the outage too.
        let after = try NBDGuest.stats(sr, v)
        #expect(after.fastWrites > 0 && after.fastWrites < after.writes, "\(after)")
        try sr.value(try sr.call("vdi_deactivate", vdi: v))
        try NBDGuest.expectAcknowledgedBlocks(report, in: sr, v)
    }

    // MARK: - Shared

    @Test func aSecondHostReadsWhatTheMasterMadeAndChangesNothing() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        try sr.createAndAttach()
        /// The master writes `seed` into the first 4 KiB of `vdi` through its data path.
        func masterWrites(_ vdi: String, seed: Int) throws {
            let attach = try sr.value(try sr.call("vdi_attach", vdi: vdi))
            try sr.value(try sr.call("vdi_activate", vdi: vdi))
            let out = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", try #require(attach[member: "params_nbd"]?.stringValue),
                                                         "-c", "write -P \(seed) 0 4096", "-c", "flush"])
            #expect(out.contains("wrote 4096/4096"), "\(out)")
            try sr.value(try sr.call("vdi_deactivate", vdi: vdi))
        }
        let v = try sr.createVDI(size: 64 << 20)
        try masterWrites(v, seed: 5)
        let hash = try sr.contentHash(v)
        // Host B: its own run directory below the SR's root (cleanup stops its data paths), SRmaster=false.
        let runB = sr.root + "/b"
        try FileManager.default.createDirectory(atPath: runB, withIntermediateDirectories: true)
        var envB = sr.environment
        envB["SWIFTSM_RUN_DIR"] = runB
        func onB(_ command: String, vdi: String? = nil, _ edit: (inout RequestDocument) -> Void = { _ in }) throws -> SmdriverResult {
            var doc = try sr.document(command, vdi: vdi)
            Self.set("SRmaster", "false")(&doc)
            edit(&doc)
            return try Smdriver.run([doc.text], driver: "lvmoiscsi", environment: envB)
        }
        let before = try lunHash(sr)
        try sr.value(try onB("sr_attach"))
        #expect(sr.fault(try onB("vdi_create"))?.code == 58, "only the master makes LVs")
        #expect(sr.fault(try onB("vdi_snapshot", vdi: v))?.code == 58)
        #expect(sr.fault(try onB("sr_scan"))?.code == 58)
        let attach = try sr.value(try onB("vdi_attach", vdi: v) { $0.setArgs(["false"]) })
        try sr.value(try onB("vdi_activate", vdi: v) { $0.setArgs(["false"]) })
        let nbd = try #require(attach[member: "params_nbd"]?.stringValue)
        #expect(nbd.contains(runB))
        let read = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", "-r", nbd, "-c", "read -P 5 0 4096"])
        #expect(!read.contains("verification failed") && read.contains("read 4096/4096"), "host B reads the master's data: \(read)")
        try sr.value(try onB("vdi_deactivate", vdi: v))
        #expect(try lunHash(sr) == before, "host B wrote nothing to the LUN")
        // The master makes a VDI; host B sees it at once (the metadata area headers changed).
        let w = try sr.createVDI(size: 32 << 20)
        try masterWrites(w, seed: 6)
        let attachW = try sr.value(try onB("vdi_attach", vdi: w) { $0.setArgs(["false"]) })
        try sr.value(try onB("vdi_activate", vdi: w) { $0.setArgs(["false"]) })
        let readW = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", "-r", try #require(attachW[member: "params_nbd"]?.stringValue),
                                                       "-c", "read -P 6 0 4096"])
        #expect(!readW.contains("verification failed") && readW.contains("read 4096/4096"), "\(readW)")
        try sr.value(try onB("vdi_deactivate", vdi: w))
        try sr.value(try onB("sr_detach"))
        #expect(try sr.contentHash(v) == hash)
    }
    // MARK: - The VDI records in MGT

    /// The metadata in the SR's `MGT` volume.
    func mgt(_ sr: TestSR) throws -> LVHDMetadata {
        let store = try sr.provider.open(sr.srDirectory + "/MGT", writable: false)
        let length = try #require(try LVHDMetadata.length(ofHeader: try store.read(count: LVHDMetadata.sectorSize, at: 0)))
        return try LVHDMetadata(decoding: try store.read(count: length, at: 0))
    }

    @Test func mgtKeepsEveryVDIRecordAndANewPoolIntroducesTheVDIsByName() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        let sr = try makeSR()
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 64 << 20, label: "alpha")
        let gone = try sr.createVDI(size: 16 << 20, label: "to delete")
        #expect(try mgt(sr).vdi(v)?.nameLabel == "alpha" && mgt(sr).vdi(gone)?.nameLabel == "to delete")
        let snap = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v)))
        let base = try #require(try sr.disk()[v]?.parent)
        try sr.value(try sr.call("vdi_delete", vdi: gone))
        // The toolstack renames the VDI, then tells the SR (vdi_update).
        var record = try #require(sr.fake.vdi(uuid: v))
        record.nameLabel = "renamed"
        record.nameDescription = "a <disk> & more"
        sr.fake.updateVDI(record)
        try sr.value(try sr.call("vdi_update", vdi: v))

        let m = try mgt(sr)
        #expect(m.sr.uuid == sr.srUUID)
        #expect(Set(m.vdis.map(\.uuid)) == [v, snap, base], "\(m.vdis.map(\.uuid))")
        #expect(m.vdi(v)?.nameLabel == "renamed" && m.vdi(v)?.nameDescription == "a <disk> & more")
        let s = try #require(m.vdi(snap))
        #expect(s.isASnapshot && s.snapshotOf == v && s.nameLabel == "alpha", "\(s)")
        let b = try #require(m.vdi(base))
        #expect(b.nameLabel == "base copy" && b.readOnly && !b.managed, "\(b)")
        #expect(m.slots.contains { $0.uuid == gone && $0.deleted }, "the deleted VDI's slot is kept for reuse, marked deleted")

        // Another pool: xapi knows none of the VDIs; attaching the SR introduces them with their names.
        for (ref, _) in sr.fake.vdis { sr.fake.removeVDI(ref: ref) }
        try sr.value(try sr.call("sr_detach"))
        try sr.value(try sr.call("sr_attach"))
        #expect(sr.fake.vdi(uuid: v)?.nameLabel == "renamed" && sr.fake.vdi(uuid: v)?.nameDescription == "a <disk> & more")
        let again = try #require(sr.fake.vdi(uuid: snap))
        #expect(again.isASnapshot && again.snapshotOf == sr.fake.vdi(uuid: v)?.ref && again.nameLabel == "alpha", "\(again)")
        #expect(sr.fake.vdi(uuid: base)?.managed == false && sr.fake.vdi(uuid: base)?.readOnly == true)
        #expect(sr.fake.vdi(uuid: gone) == nil)
        #expect(try mgt(sr).vdis.count == 3, "the attach kept every record")
    }

    // MARK: - A VG lvm2 made

    @Test func anSRWhoseVolumeGroupLvm2MadeAttachesAndLvm2StillReadsIt() throws {
        if let why = Self.skip { try Test.cancel(Comment(rawValue: why)) }
        guard lvm2Installed else { try Test.cancel("lvm2 is not installed") }
        let sr = try makeSR()
        defer { sr.cleanup() }
        let iscsi = try #require(sr.iscsi)
        let vg = "VG_XenStorage-" + sr.srUUID
        let v = UUID().uuidString.lowercased()
        // The Python SM's sr_create and vdi_create, by lvm2's own tools on the LUN's backing file.
        let pv = try LoopPV(existing: iscsi.backingFile, writable: true)
        defer { pv.close() }
        try pv.attach()
        for args in [["pvcreate", "-ff", "-y", "--metadatasize", "10M", pv.device], ["vgcreate", "-s", "4M", vg, pv.device],
                     ["lvcreate", "-an", "-Zn", "-L", "4M", "-n", "MGT", vg], ["lvcreate", "-an", "-Zn", "-L", "72M", "-n", "VHD-" + v, vg]] {
            let r = try pv.lvm(args)
            try #require(r.status == 0, "lvm \(args): \(r.stderr)")
        }
        pv.detach()
        // The Python SM's records in MGT: the SR's and the VDI's, with its name.
        var python = LVHDMetadata(sr: .init(uuid: sr.srUUID, nameLabel: "Python SR", allocation: "thick"))
        python.update(.init(uuid: v, nameLabel: "made by the Python SM", nameDescription: "its <first> disk", type: "user"))
        let mgt = try sr.provider.open(sr.srDirectory + "/MGT", writable: true)
        try mgt.write(try python.encode(), at: 0)
        try mgt.sync()
        // A 64 MiB VHD in the LV, as vhd-util writes one (footer at the LV's end), with data.
        let image = sr.root + "/made.vhd"
        try Create.dynamic(at: image, size: 64 << 20, provider: FileStoreProvider())
        let chainFile = try VHDChain(path: image, provider: FileStoreProvider(), writable: true)
        try chainFile.write([UInt8](repeating: 0x42, count: 65536), at: 1 << 20)
        try chainFile.flush()
        let bytes = try FileStore(path: image, writable: false)
        let contents = try bytes.read(count: Int(bytes.size), at: 0)
        let lv = try sr.provider.open(sr.srDirectory + "/VHD-" + v, writable: true)
        try lv.write(contents, at: 0)
        try lv.write(Array(contents.suffix(512)), at: lv.size - 512)
        try lv.sync()

        // SwiftSM attaches it, finds the VDI, serves it, and adds one.
        try sr.value(try sr.call("sr_attach"))
        #expect(sr.fake.vdi(uuid: v)?.virtualSize == String(64 << 20), "the scan after attach introduced the VDI")
        #expect(sr.fake.vdi(uuid: v)?.nameLabel == "made by the Python SM" && sr.fake.vdi(uuid: v)?.nameDescription == "its <first> disk",
                "introduced with the name MGT holds: \(String(describing: sr.fake.vdi(uuid: v)))")
        let attach = try sr.value(try sr.call("vdi_attach", vdi: v))
        try sr.value(try sr.call("vdi_activate", vdi: v))
        let read = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", "-r", try #require(attach[member: "params_nbd"]?.stringValue),
                                                      "-c", "read -P 66 1M 64k"])
        #expect(read.contains("read 65536/65536") && !read.contains("verification failed"), "\(read)")
        try sr.value(try sr.call("vdi_deactivate", vdi: v))
        let w = try sr.createVDI(size: 32 << 20)
        let s = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v)))
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")

        // lvm2 reads the changed VG without a warning: the new LVs, the base copy read-only.
        try pv.attach()
        let check = try pv.lvm(["vgck", vg])
        #expect(check.status == 0 && check.warnings.isEmpty, "vgck: \(check.stderr)")
        let lvs = try pv.report(["lvs", "-o", "lv_name,lv_attr", vg])
        let names = Set(lvs.compactMap { $0["lv_name"] })
        #expect(names.isSuperset(of: ["MGT", "VHD-" + v, "VHD-" + w, "VHD-" + s]), "\(names)")
        let base = try #require(try sr.disk()[v]?.parent)
        #expect(lvs.first { $0["lv_name"] == "VHD-" + base }?["lv_attr"]?.dropFirst().first == "r", "the base copy is read-only: \(lvs)")
    }
}
