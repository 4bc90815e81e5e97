import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// Every `ext-*.xml` request document of the reference, run through the built `smdriver`
/// executable in the order xapi issues them, on one SR in path mode and on a real ext4 on a loop
/// device: exit status, answer shape, the XenAPI callbacks (`responses.md` §5.3) and the VHD
/// tree on disk after every step.
@Suite struct RequestDocumentTests {
    /// The commands the life cycle runs; must be every ext document.
    static let lifecycleCommands: Set<String> = [
        "sr_get_driver_info", "sr_probe", "sr_create", "sr_attach", "sr_scan", "sr_update", "vdi_create", "vdi_update",
        "vdi_epoch_begin", "vdi_attach", "vdi_activate", "vdi_snapshot", "vdi_clone", "vdi_enable_cbt",
        "vdi_list_changed_blocks", "vdi_disable_cbt", "vdi_deactivate", "vdi_detach", "vdi_epoch_end", "vdi_resize",
        "vdi_resize_online", "vdi_compose", "vdi_generate_config", "vdi_attach_from_config", "vdi_data_destroy",
        "vdi_introduce", "vdi_delete", "sr_detach", "sr_delete",
    ]

    static let tenGiB: UInt64 = 10 << 30

    @Test func theLifecycleUsesEveryExtDocument() {
        #expect(E2EFixtures.extCommands.count == 29)
        #expect(Set(E2EFixtures.extCommands) == Self.lifecycleCommands)
    }

    /// Decoding and re-encoding a document reproduces it byte for byte, so a document whose
    /// `device_config` is edited differs from xapi's only in that member.
    @Test func documentsSurviveDecodeAndEncode() throws {
        for command in E2EFixtures.extCommands {
            let values = ["SR_UUID": UUID().uuidString.lowercased(), "VDI_UUID": UUID().uuidString.lowercased(),
                          "VDI_LOCATION": UUID().uuidString.lowercased(), "EXT_DEVICE": "/dev/sdz"]
            let doc = try RequestDocument(command: command, values: values)
            #expect(!doc.original.contains("{{"), "\(command): placeholder left")
            let style: XMLRPCStyle = command == "vdi_attach_from_config" ? .python : .xapi
            let again = XMLRPCEncoder(style: style).encode(doc.call)
            #expect(again.trimmingCharacters(in: .newlines) == doc.original, "\(command) does not round-trip")
            #expect(doc.call.methodName == command)
            #expect(doc.string("command") == command)
            var edited = doc
            edited.usePath("/srv/sr")
            let keys = doc.deviceConfig.map(\.0)
            let expected = keys.contains("device") ? keys.map { $0 == "device" ? "path" : $0 } : keys + ["path"]
            #expect(edited.deviceConfig.map(\.0) == expected, "\(command)")
            #expect(edited.deviceConfig.first { $0.0 == "path" }?.1 == "/srv/sr")
        }
    }

    @Test("the life cycle of one SR", arguments: SRMode.fileModes + [.lvmoiscsi])
    func lifecycle(_ mode: SRMode) throws {
        if mode == .device, let why = LoopDevice.unavailableReason {
            try Test.cancel(Comment(rawValue: "device mode skipped: \(why)"))
        }
        if mode == .lvmoiscsi, let why = ISCSITestTarget.unavailableReason {
            try Test.cancel(Comment(rawValue: "lvmoiscsi mode skipped: \(why)"))
        }
        // An LVHD SR inflates every leaf to its full size: the documents' 10 GiB VDIs need a
        // large (sparse) LUN.
        let sr = try TestSR(mode: mode, imageSize: mode == .lvmoiscsi ? 64 << 30 : 256 << 20)
        defer { sr.cleanup() }
        try Lifecycle(sr: sr).run()
    }
}

/// The steps of `RequestDocumentTests.lifecycle`, one method per phase.
private struct Lifecycle {
    let sr: TestSR
    /// The documents run so far.
    let used = UsedCommands()
    var fake: FakeXapi { sr.fake }
    let tenGiB = RequestDocumentTests.tenGiB

    /// Runs `command` for `vdi` as xapi would, after forgetting the fake's recorded calls; checks
    /// the exit status, that every callback used the document's session and `originator: SM`,
    /// and that the SR holds no half-made files afterwards.
    @discardableResult
    func step(_ command: String, vdi: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
              _ edit: (inout RequestDocument) -> Void = { _ in }) throws -> SmdriverResult {
        fake.clearCalls()
        used.insert(command)
        var doc = try sr.document(command, vdi: vdi)
        edit(&doc)
        let result = try sr.run(doc)
        #expect(result.exitStatus == 0, "\(command): \(result)", sourceLocation: sourceLocation)
        #expect(!result.timedOut, sourceLocation: sourceLocation)
        let session = doc.string("session_ref")
        let sessions = fake.sessionsUsed
        #expect(sessions.isEmpty || sessions == [session ?? "-"], "\(command) called back with \(sessions), not \(session ?? "-")",
                sourceLocation: sourceLocation)
        #expect(fake.requests.allSatisfy { $0.headers["originator"] == "SM" }, sourceLocation: sourceLocation)
        #expect(sr.strayFiles().isEmpty, "\(command) left \(sr.strayFiles())", sourceLocation: sourceLocation)
        return result
    }

    /// `step` that must succeed; returns the value.
    @discardableResult
    func succeed(_ command: String, vdi: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                 _ edit: (inout RequestDocument) -> Void = { _ in }) throws -> XMLRPCValue {
        try sr.value(try step(command, vdi: vdi, sourceLocation: sourceLocation, edit), sourceLocation: sourceLocation)
    }

    /// `step` that must answer NIL (`<nil/>`, `responses.md` §2.1).
    func succeedNil(_ command: String, vdi: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                    _ edit: (inout RequestDocument) -> Void = { _ in }) throws {
        let value = try succeed(command, vdi: vdi, sourceLocation: sourceLocation, edit)
        #expect(value.isNil, "\(command) answered \(value), not nil", sourceLocation: sourceLocation)
    }

    /// `step` that must answer fault `code`.
    func expectFault(_ code: Int32, _ command: String, vdi: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                     _ edit: (inout RequestDocument) -> Void = { _ in }) throws {
        let fault = sr.fault(try step(command, vdi: vdi, sourceLocation: sourceLocation, edit), sourceLocation: sourceLocation)
        #expect(fault?.code == code, "\(command): \(String(describing: fault))", sourceLocation: sourceLocation)
    }

    /// The VHD tree passes every check.
    func checkTree(_ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let problems = sr.treeProblems()
        #expect(problems.isEmpty, "after \(label): \(problems)", sourceLocation: sourceLocation)
    }

    /// The record of VDI `uuid`.
    func record(_ uuid: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> FakeVDI {
        try #require(fake.vdi(uuid: uuid), "no record for \(uuid)", sourceLocation: sourceLocation)
    }

    /// The calls a step made, but for reading the SR's other_config (what NFSSR reads its
    /// `nfs-timeout`, `nfs-retrans` and `nfs-hold-timeout` from, as the Python SM does) and the
    /// host's (where LVMoISCSISR reads the initiator name).
    var changes: [String] {
        fake.calls.filter { ($0 != "SR.get_other_config" || sr.mode == .path || sr.mode == .device) && $0 != "host.get_other_config" }
    }

    /// The SR's virtual allocation in the fake.
    var virtualAllocation: String { fake.sr(uuid: sr.srUUID)?.virtualAllocation ?? "-" }

    func run() throws {
        let capabilities = try srPhase()
        let v = try createPhase()
        let nbd = try datapathStartPhase(v, capabilities)
        let (snapshot, clone, hashV2) = try snapshotPhase(v, nbd: nbd, capabilities)
        try datapathStopPhase(v, active: nbd != nil, capabilities)
        try resizeAndComposePhase(v, hashV2: hashV2)
        try configPhase(v, snapshot: snapshot, capabilities)
        let introduced = try introducePhase()
        try resetPhase(clone: clone, introduced: introduced, hashV2: hashV2)
        try deletePhase([snapshot, clone, v, introduced])
        try detachAndDeletePhase()
        try logPhase()
        #expect(used.all == RequestDocumentTests.lifecycleCommands,
                "documents not run: \(RequestDocumentTests.lifecycleCommands.subtracting(used.all))")
    }

    // MARK: - SR

    /// The SR commands; returns the capabilities the driver advertises.
    func srPhase() throws -> Set<String> {
        // sr_get_driver_info: DRIVER_INFO, no session, no callbacks.
        let infoValue = try succeed("sr_get_driver_info")
        let info = try SMAPIDriverInfo(infoValue)
        #expect(!info.name.isEmpty && info.requiredAPIVersion == "1.0")
        #expect(info.capabilities.contains("VDI_SNAPSHOT") && info.capabilities.contains("SR_PROBE"))
        #expect(info.configuration.contains { $0.key == (sr.mode == .nfs ? "server" : sr.mode == .lvmoiscsi ? "SCSIid" : "device") })
        #expect(changes.isEmpty)

        // sr_probe before anything exists: an empty SR list.
        let before = try #require(try succeed("sr_probe").stringValue)
        #expect(before.hasPrefix("<?xml") && before.contains("SRlist") && !before.contains("<UUID>"), "\(before)")
        #expect(changes.isEmpty, "ext sr_probe makes no callbacks")

        try succeedNil("sr_create")
        #expect(fake.vdis.isEmpty)
        if sr.mode == .device {
            let device = sr.loop!.device
            #expect((try? Shell.run("/sbin/blkid", ["-o", "value", "-s", "TYPE", device]))?.contains("ext4") == true)
            #expect(Shell.mountPoints(of: device).isEmpty, "sr_create leaves the device unmounted")
        } else if sr.mode == .path {
            #expect(FileManager.default.fileExists(atPath: sr.pathDirectory + "/.swiftsm-sr"))
        } else if sr.mode == .lvmoiscsi {
            // LVHDoISCSISR's layout, read back by lvm2's own tools: VG_XenStorage-<sr> and its MGT LV.
            let lvs = try sr.lvm2Report(["lvs", "-o", "vg_name,lv_name,lv_size,lv_attr"])
            #expect(lvs.map { $0["vg_name"] } == ["VG_XenStorage-" + sr.srUUID] && lvs.map { $0["lv_name"] } == ["MGT"], "\(lvs)")
            #expect(lvs.first?["lv_size"] == String(4 << 20))
            #expect(sr.files() == ["MGT"])
            // MGT holds the SR's record in the Python SM's layout (`XSSM:` header, then the SR's XML).
            let mgt = try sr.provider.open(sr.srDirectory + "/MGT", writable: false).read(count: 2048, at: 0)
            #expect(mgt.starts(with: Array("XSSM:2048      :1:2".utf8)), "\(mgt.prefix(24))")
            #expect(String(decoding: mgt[512..<1024], as: UTF8.self).contains("<uuid>\(sr.srUUID)</uuid>"))
            let srRecord = try #require(fake.sr(uuid: sr.srUUID))
            #expect(srRecord.smConfig["devserial"] == "scsi-" + sr.iscsi!.scsiID && srRecord.smConfig["use_vhd"] == "true")
        } else {
            // NFSSR's layout: the SR is the directory <serverpath>/<sr uuid>, root's alone, empty.
            var st = stat()
            #expect(stat(sr.srDirectory, &st) == 0 && st.st_mode & 0o777 == 0o700, "sr_create makes \(sr.srDirectory) 0700")
            #expect(sr.files().isEmpty, "\(sr.files())")
        }

        try succeedNil("sr_attach")
        if sr.mode == .device { #expect(Shell.isMounted(sr.srDirectory), "sr_attach mounts under the run directory") }
        if sr.mode == .lvmoiscsi {
            let sm = try #require(fake.sr(uuid: sr.srUUID)).smConfig
            #expect(sm["allocation"] == "thick" && sm["use_vhd"] == "true" && sm["multipathable"] == "true", "\(sm)")
            let pbd = try #require(fake.pbds.values.first)
            #expect(pbd.otherConfig["iscsi_sessions"] == "1" && pbd.otherConfig["multipathed"] == nil, "\(pbd.otherConfig)")
        } else if sr.mode != .nfs {
            let marker = try? String(contentsOfFile: sr.srDirectory + "/.swiftsm-sr", encoding: .utf8)
            #expect(marker?.trimmingCharacters(in: .whitespacesAndNewlines) == sr.srUUID)
        }
        let srRecord = try #require(fake.sr(uuid: sr.srUUID))
        #expect(srRecord.otherConfig["dirty"] != nil, "sr_attach on the master sets other_config:dirty")
        #expect(fake.calls.contains("VDI.get_all_records_where"), "sr_attach on the master scans")
        #expect(sr.srStatsProblems().isEmpty, "\(sr.srStatsProblems())")

        // sr_probe of the attached SR lists it.
        let probed = try #require(try succeed("sr_probe").stringValue)
        #expect(probed.contains("<UUID>\(sr.srUUID)</UUID>"), "probe of an attached SR: \(probed)")

        try succeedNil("sr_scan")
        #expect(sr.srStatsProblems().isEmpty, "\(sr.srStatsProblems())")
        #expect(sr.recordProblems().isEmpty)

        try succeedNil("sr_update")
        for method in ["SR.get_virtual_allocation", "SR.set_virtual_allocation", "SR.set_physical_size", "SR.set_physical_utilisation"] {
            #expect(fake.calls.contains(method), "sr_update: SR-STATS(0) calls \(method)")
        }
        #expect(sr.srStatsProblems().isEmpty, "\(sr.srStatsProblems())")
        return Set(info.capabilities)
    }

    // MARK: - VDI create, update, epoch

    func createPhase() throws -> String {
        let v = try sr.vdiInfo(try succeed("vdi_create"))
        let disk = try sr.disk()
        let vhd = try #require(disk[v])
        #expect(vhd.virtualSize == tenGiB && vhd.parent == nil && !vhd.hidden)
        #expect(try ImageInfo.of(path: sr.path(v), provider: sr.provider).type == "dynamic")
        let intro = fake.introductions
        #expect(intro.count == 1)
        if let i = intro.first {
            #expect(i.count == 19, "DB-INTRODUCE has 19 parameters after the session")
            #expect(i.uuid == v && i.location == v)
            #expect(i.nameLabel == "Test disk" && i.nameDescription == "Created by the SM reference suite")
            #expect(i.sr == E2EFixtures.srRef && i.type == "user")
            #expect(i.sharable == false && i.readOnly == false && i.managed == true)
            #expect(i.otherConfig == [:] && i.xenstoreData == [:] && i.smConfig == [:])
            #expect(i.virtualSize == String(tenGiB), "integers are decimal strings")
            #expect(i.physicalUtilisation == String(vhd.fileSize))
            #expect(i.metadataOfPool == "" && i.isASnapshot == false && i.snapshotOf == "" && i.cbtEnabled == false)
            #expect(i.snapshotTime == .dateTime("19700101T00:00:00Z"))
        }
        #expect(virtualAllocation == String(tenGiB), "SR-STATS(+virtual size)")
        checkTree("vdi_create")
        // xapi's VDI ref of the documents now names this record.
        fake.renameVDIRef(try record(v).ref, to: E2EFixtures.vdiRef)

        // A guest writes; vdi_update brings the record up to date (VDI-UPDATE).
        try sr.writePattern(v, seed: 1)
        try succeedNil("vdi_update", vdi: v)
        let size = try #require(try sr.disk()[v]).fileSize
        #expect(try record(v).physicalUtilisation == String(size))
        #expect(try record(v).virtualSize == String(tenGiB))
        #expect(fake.calls.contains("VDI.set_physical_utilisation"))

        let hash = try sr.contentHash(v)
        try succeedNil("vdi_epoch_begin", vdi: v)
        #expect(changes.isEmpty, "vdi_epoch_begin (persist) makes no callbacks")
        #expect(try sr.contentHash(v) == hash, "vdi_epoch_begin with on_boot=persist keeps the data")
        return v
    }

    // MARK: - Data path

    /// `vdi_attach` and `vdi_activate` (read-write): the ATTACH struct (§2.3) and a running data
    /// path when the driver advertises them, fault 38 otherwise. Returns `params_nbd` when active.
    func datapathStartPhase(_ v: String, _ capabilities: Set<String>) throws -> String? {
        guard capabilities.contains("VDI_ATTACH") else {
            try expectFault(38, "vdi_attach", vdi: v)
            try expectFault(38, "vdi_activate", vdi: v)
            return nil
        }
        let attach = try succeed("vdi_attach", vdi: v)
        let nbd = try #require(attach[member: "params_nbd"]?.stringValue, "params_nbd is required: \(attach)")
        let socket = sr.runDir + "/datapath/\(sr.srUUID)/\(v)/nbd"
        #expect(nbd == "nbd:unix:\(socket):exportname=\(v)")
        #expect(attach[member: "params"] == nil, "no block device: xapi uses params_nbd")
        #expect(attach[member: "o_direct"]?.boolValue == false && attach[member: "o_direct_reason"]?.stringValue == "")
        let xs = attach[member: "xenstore_data"]
        #expect(xs?[member: "vdi-uuid"]?.stringValue == v)
        #expect(xs?[member: "scsi/0x12/0x80"]?.stringValue
                    == Data([0x00, 0x80, 0x00, 0x12] + Array(v.utf8.prefix(16)) + Array("  ".utf8)).base64EncodedString())
        #expect(xs?[member: "scsi/0x12/0x83"]?.stringValue
                    == Data([0x00, 0x83, 0x00, 0x31, 0x02, 0x01, 0x00, 0x2d] + Array("XENSRC  \(v) ".utf8)).base64EncodedString())
        #expect(xs?[member: "storage-type"] == nil, "only attach_from_config results carry storage-type")
        if capabilities.contains("VDI_ACTIVATE") {
            try succeedNil("vdi_activate", vdi: v)
            #expect(sr.datapathPIDs().count == 1, "vdi_activate starts one datapath")
            // blktap's tags on the record: this host's key, no `activating` left behind.
            let host = try #require(try sr.document("vdi_activate", vdi: v).string("host_ref"))
            let sm = sr.fake.vdi(uuid: v)?.smConfig ?? [:]
            #expect(sm["host_" + host] == "RW" && sm["activating"] == nil && sm["paused"] == nil, "\(sm)")
            #expect(FileManager.default.fileExists(atPath: socket))
            // A guest reads through it what the library wrote.
            let read = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", "-r", nbd, "-c", "read -P 0 8192 4096"])
            #expect(!read.contains("Pattern verification failed") && read.contains("read 4096/4096"), "\(read)")
            return nbd
        }
        return nil
    }

    /// `vdi_deactivate` stops the data path, `vdi_detach` is a no-op (ATOMIC_PAUSE); 38 when not advertised.
    func datapathStopPhase(_ v: String, active: Bool, _ capabilities: Set<String>) throws {
        if capabilities.contains("VDI_DEACTIVATE") {
            try succeedNil("vdi_deactivate", vdi: v)
            if active { #expect(sr.datapathPIDs().isEmpty, "vdi_deactivate stops the datapath") }
            #expect(!(sr.fake.vdi(uuid: v)?.smConfig ?? [:]).keys.contains { $0.hasPrefix("host_") }, "vdi_deactivate removes the host key")
        } else {
            try expectFault(38, "vdi_deactivate", vdi: v)
        }
        if capabilities.contains("VDI_DETACH") {
            try succeedNil("vdi_detach", vdi: v)
        } else {
            try expectFault(38, "vdi_detach", vdi: v)
        }
        try succeedNil("vdi_epoch_end", vdi: v)
        #expect(changes.isEmpty)
    }

    /// A guest write into VDI `v`: through the data path (`qemu-io` on `params_nbd`) when it is
    /// active, else straight into the VHD with the library.
    func guestWrite(_ v: String, seed: UInt8, nbd: String?) throws {
        guard let nbd else { return try sr.writePattern(v, seed: seed) }
        let out = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", nbd, "-c", "write -P \(seed) 0 4096",
                                                     "-c", "write -P \(seed &+ 1) 2080768 65536", "-c", "flush"])
        #expect(out.contains("wrote 65536/65536"), "\(out)")
    }

    // MARK: - Snapshot, clone

    func snapshotPhase(_ v: String, nbd: String?, _ capabilities: Set<String>) throws -> (snapshot: String, clone: String, hashV2: UInt64) {
        let hashV1 = try sr.contentHash(v)
        let s = try sr.vdiInfo(try succeed("vdi_snapshot", vdi: v))
        #expect(s != v)
        var disk = try sr.disk()
        let base = try #require(disk[v]?.parent, "the VDI sits on a base copy")
        #expect(![v, s].contains(base))
        #expect(disk[s]?.parent == base && disk[base]?.hidden == true && disk[base]?.parent == nil)
        #expect(try sr.contentHash(v) == hashV1 && sr.contentHash(s) == hashV1)
        let intro = fake.introductions
        #expect(intro.map(\.uuid) == [s, base], "the new leaf is introduced, then the base copy")
        if intro.count == 2 {
            let (leaf, copy) = (intro[0], intro[1])
            #expect(leaf.count == 19 && copy.count == 19)
            #expect(leaf.nameLabel == "" && leaf.readOnly == false && leaf.managed == true && leaf.type == "user")
            #expect(leaf.smConfig == ["vhd-parent": base] && leaf.location == s && leaf.virtualSize == String(tenGiB))
            #expect(copy.nameLabel == "base copy" && copy.readOnly == true && copy.location == base)
            #expect(copy.smConfig == [:], "the first base copy has no grandparent")
            for i in intro {
                #expect(i.sr == E2EFixtures.srRef && i.sharable == false && i.otherConfig == [:] && i.xenstoreData == [:])
                #expect(i.metadataOfPool == "OpaqueRef:NULL" && i.snapshotOf == "OpaqueRef:NULL", "NULL refs")
                #expect(i.isASnapshot == false && i.cbtEnabled == false && i.snapshotTime == .dateTime("19700101T00:00:00Z"))
            }
        }
        #expect(try record(base).managed == false, "base copies are unmanaged")
        #expect(fake.firstArguments(of: "VDI.set_managed").contains(.string(try record(base).ref)))
        #expect(try record(v).smConfig["vhd-parent"] == base, "the VDI's record points at its base copy")
        #expect(virtualAllocation == String(2 * tenGiB), "SR-STATS(+virtual size)")
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
        checkTree("vdi_snapshot")

        // The guest writes again; a clone now makes a second base copy over the first.
        try guestWrite(v, seed: 2, nbd: nbd)
        let c = try sr.vdiInfo(try succeed("vdi_clone", vdi: v))
        disk = try sr.disk()
        let base2 = try #require(disk[v]?.parent)
        #expect(base2 != base && disk[c]?.parent == base2 && disk[base2]?.parent == base && disk[base2]?.hidden == true)
        // Read after the clone: the data is in the (flushed) base copy both leaves share.
        let hashV2 = try sr.contentHash(c)
        #expect(hashV2 != hashV1, "the guest's second write reached the disk")
        #expect(try sr.contentHash(v) == hashV2 && sr.contentHash(s) == hashV1)
        if let nbd {
            // The guest's bytes are where it wrote them, in the files and through the resumed datapath.
            let chain = try VHDChain(path: sr.path(c), provider: sr.provider)
            #expect(try chain.read(count: 4096, at: 0) == [UInt8](repeating: 2, count: 4096))
            #expect(try chain.read(count: 65536, at: 2_080_768) == [UInt8](repeating: 3, count: 65536))
            let read = try Shell.run("/usr/bin/qemu-io", ["-f", "raw", "-r", nbd, "-c", "read -P 2 0 4096",
                                                          "-c", "read -P 3 2080768 65536"])
            #expect(!read.contains("verification failed") && read.contains("read 65536/65536"), "after the clone: \(read)")
        }
        let intro2 = fake.introductions
        #expect(intro2.map(\.uuid) == [c, base2])
        if intro2.count == 2 {
            #expect(intro2[0].smConfig == ["vhd-parent": base2] && intro2[0].readOnly == false)
            #expect(intro2[1].smConfig == ["vhd-parent": base], "a base copy with a grandparent names it")
            #expect(intro2[1].readOnly == true && intro2[1].nameLabel == "base copy")
        }
        #expect(try record(v).smConfig["vhd-parent"] == base2)
        #expect(virtualAllocation == String(3 * tenGiB))
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
        checkTree("vdi_clone")

        if !capabilities.contains("VDI_CONFIG_CBT") {
            for command in ["vdi_enable_cbt", "vdi_list_changed_blocks", "vdi_disable_cbt"] { try expectFault(38, command, vdi: v) }
        } else {
            // CBT on and off again (CBTRequestTests follows logs through snapshots): enable makes
            // the log and sets cbt_enabled; the document's list names a VDI without a log (460).
            try succeedNil("vdi_enable_cbt", vdi: v)
            #expect(sr.files().contains(v + ".cbtlog"))
            #expect(try record(v).cbtEnabled)
            fake.renameVDIRef(try record(s).ref, to: E2EFixtures.cbtToRef)
            try expectFault(460, "vdi_list_changed_blocks", vdi: v)
            #expect(fake.firstArguments(of: "VDI.get_uuid") == [.string(E2EFixtures.cbtToRef)])
            try succeedNil("vdi_disable_cbt", vdi: v)
            #expect(!sr.files().contains(v + ".cbtlog"))
            #expect(try record(v).cbtEnabled == false)
            checkTree("vdi_disable_cbt")
        }
        return (s, c, hashV2)
    }

    // MARK: - Resize, compose

    func resizeAndComposePhase(_ v: String, hashV2: UInt64) throws {
        let info = try sr.vdiInfo(try succeed("vdi_resize", vdi: v))
        #expect(info == v)
        #expect(try sr.disk()[v]?.virtualSize == 2 * tenGiB)
        #expect(try record(v).virtualSize == String(2 * tenGiB), "xapi reads the new size from the record")
        #expect(virtualAllocation == String(4 * tenGiB), "SR-STATS(+growth)")
        #expect(try sr.contentHash(v) == hashV2)
        checkTree("vdi_resize")
        try expectFault(38, "vdi_resize_online", vdi: v)

        // Storage migration: a mirrored parent P is composed under the VDI.
        let p = try sr.vdiInfo(try succeed("vdi_create"))
        try sr.writePattern(p, seed: 3)
        let hashP = try sr.contentHash(p)
        fake.renameVDIRef(try record(p).ref, to: E2EFixtures.composeParentRef)
        try succeedNil("vdi_compose", vdi: v)
        let disk = try sr.disk()
        #expect(disk[v]?.parent == p && disk[p]?.hidden == true)
        #expect(try sr.contentHash(v) == hashP, "the VDI's (empty) leaf now reads through P")
        #expect(fake.firstArguments(of: "VDI.get_uuid") == [.string(E2EFixtures.composeParentRef)])
        #expect(fake.arguments(of: "VDI.set_managed").first == [.string(E2EFixtures.composeParentRef), .boolean(false)])
        #expect(try record(p).managed == false)
        checkTree("vdi_compose")

        try succeedNil("sr_scan")
        #expect(sr.recordProblems().isEmpty, "after compose + scan: \(sr.recordProblems())")
        #expect(sr.srStatsProblems().isEmpty, "\(sr.srStatsProblems())")
        #expect(try record(v).smConfig["vhd-parent"] == p)
    }

    // MARK: - Generate config, attach from config, CBT

    func configPhase(_ v: String, snapshot: String, _ capabilities: Set<String>) throws {
        let text = try #require(try succeed("vdi_generate_config", vdi: v).stringValue)
        #expect(changes.isEmpty, "ext vdi_generate_config makes no callbacks")
        let generated = try XMLRPCDecoder().decodeMethodCall(text)
        // What the Python SM returns is the reference document (with this SR's device_config).
        var expected = try sr.document("vdi_attach_from_config", vdi: v)
        if sr.mode == .nfs {
            // NFSSR puts the SR's other_config as it is now (`dirty` from the attach) in the document.
            let other = fake.sr(uuid: sr.srUUID)?.otherConfig ?? [:]
            expected[member: "sr_other_config"] = .struct(other.sorted { $0.key < $1.key }.map { XMLRPCMember($0.key, .string($0.value)) })
        }
        #expect(generated.methodName == "vdi_attach_from_config")
        #expect(generated == expected.call, "generated \(text)\nexpected \(expected.text)")
        if sr.mode == .device {
            #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == expected.original,
                    "byte for byte the Python SM's config document")
        }
        if sr.mode == .nfs {
            #expect(generated.params.first?[member: "sr_sm_config"] != nil && generated.params.first?[member: "sr_other_config"] != nil,
                    "NFSSR's config carries sr_sm_config and sr_other_config")
        }
        // static-vdis passes the string back (whitespace stripped) as the only argument, without xapi.
        let fromConfig = try sr.run(arguments: [text.trimmingCharacters(in: .whitespacesAndNewlines)])
        if capabilities.contains("VDI_ATTACH") {
            let attach = try sr.value(fromConfig)
            let nbd = try #require(attach[member: "params_nbd"]?.stringValue)
            #expect(nbd == "nbd:unix:\(sr.runDir)/datapath/\(sr.srUUID)/\(v)/nbd:exportname=\(v)")
            #expect(attach[member: "o_direct"]?.boolValue == true
                        && attach[member: "o_direct_reason"]?.stringValue == "LICENSE_RESTRICTION", "no session, no licence check")
            #expect(attach[member: "xenstore_data"]?[member: "storage-type"]?.stringValue == (sr.mode == .lvmoiscsi ? "lvm" : sr.driver))
            #expect(attach[member: "xenstore_data"]?[member: "vdi-uuid"]?.stringValue == v)
            #expect(sr.datapathPIDs().count == 1, "attach_from_config attaches and activates")
            try succeedNil("vdi_deactivate", vdi: v)
            #expect(sr.datapathPIDs().isEmpty, "vdi_deactivate stops it")
            // The reference document does the same.
            #expect(try sr.value(try step("vdi_attach_from_config", vdi: v))[member: "params_nbd"]?.stringValue == nbd)
            #expect(sr.datapathPIDs().count == 1)
            try succeedNil("vdi_deactivate", vdi: v)
            #expect(sr.datapathPIDs().isEmpty)
        } else {
            #expect(sr.fault(fromConfig)?.code == 38)
            try expectFault(38, "vdi_attach_from_config", vdi: v)
        }
        if !capabilities.contains("VDI_CONFIG_CBT") {
            try expectFault(38, "vdi_data_destroy", vdi: snapshot)
        } else {
            // xapi marked no record a snapshot here: data_destroy is refused (66), nothing removed.
            try expectFault(66, "vdi_data_destroy", vdi: snapshot)
            #expect(sr.exists(snapshot))
        }
    }

    // MARK: - Introduce

    func introducePhase() throws -> String {
        // A VHD that is on the SR but has no record (copied in by hand) is introduced.
        let i = UUID().uuidString.lowercased()
        try Create.dynamic(at: sr.path(i), size: 1 << 30, provider: sr.provider)
        let info = try sr.vdiInfo(try succeed("vdi_introduce", vdi: i))
        #expect(info == i)
        let intro = fake.introductions
        #expect(intro.map(\.uuid) == [i])
        if let r = intro.first {
            #expect(r.location == i && r.managed == true && r.readOnly == false && r.virtualSize == String(1 << 30))
            #expect(r.smConfig == [:] && r.sr == E2EFixtures.srRef)
        }
        // Introducing a VHD that does not exist is refused (46) and introduces nothing.
        try expectFault(46, "vdi_introduce", vdi: UUID().uuidString.lowercased())
        #expect(fake.introductions.isEmpty)
        // xapi scans after an introduction; the records and SR sizes then match the disk.
        try succeedNil("sr_scan")
        #expect(fake.introductions.isEmpty, "nothing left to introduce")
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
        #expect(sr.srStatsProblems().isEmpty, "\(sr.srStatsProblems())")
        return i
    }

    // MARK: - Reset on boot

    func resetPhase(clone: String, introduced: String, hashV2: UInt64) throws {
        try sr.writePattern(clone, seed: 4)
        #expect(try sr.contentHash(clone) != hashV2)
        try succeedNil("vdi_epoch_begin", vdi: clone) { $0[member: "vdi_on_boot"] = .string("reset") }
        #expect(try sr.contentHash(clone) == hashV2, "on_boot=reset drops the guest's writes")
        #expect(try sr.disk()[clone]?.footerUUID != nil)
        checkTree("vdi_epoch_begin reset")
        // Reset of a VDI without parent: 202.
        try expectFault(202, "vdi_epoch_begin", vdi: introduced) { $0[member: "vdi_on_boot"] = .string("reset") }
    }

    // MARK: - Delete

    func deletePhase(_ vdis: [String]) throws {
        for u in vdis {
            let before = Int64(virtualAllocation) ?? 0
            let size = Int64(try #require(try sr.disk()[u]).virtualSize)
            try succeedNil("vdi_delete", vdi: u)
            #expect(!sr.exists(u))
            #expect(fake.vdi(uuid: u) == nil, "DB-FORGET of \(u)")
            #expect(fake.calls.contains("VDI.db_forget"))
            #expect(virtualAllocation == String(before - size), "SR-STATS(−virtual size)")
            checkTree("vdi_delete")
        }
        // A VDI whose file is already gone: success, nothing to do.
        try succeedNil("vdi_delete", vdi: vdis[0])
        #expect(!fake.calls.contains("VDI.db_forget"))
        try succeedNil("sr_scan")
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
        #expect(try sr.visibleVDIs().isEmpty, "only hidden base copies are left")
    }

    // MARK: - Detach, delete

    func detachAndDeletePhase() throws {
        try succeedNil("sr_detach")
        if sr.mode == .lvmoiscsi {
            #expect(Set(changes) == ["SR.get_PBDs", "PBD.get_host", "PBD.remove_from_other_config", "host.remove_from_other_config"],
                    "LVMoISCSISR's sr_detach forgets the PBD's and host's path keys: \(changes)")
            #expect(fake.pbds.values.first?.otherConfig["iscsi_sessions"] == nil)
        } else {
            #expect(changes.isEmpty, "ext sr_detach makes no callbacks")
        }
        if sr.mode == .device {
            #expect(!Shell.isMounted(sr.srDirectory), "sr_detach unmounts")
            let fault = sr.fault(try sr.call("sr_scan"))
            #expect(fault != nil, "a detached SR cannot be scanned")
        }
        // xapi destroys the SR after unplugging it; the hidden base copies are garbage the
        // Python SM's synchronous GC pass removes, so the SR counts as empty.
        try succeedNil("sr_delete")
        if sr.mode == .device {
            #expect(!Shell.isMounted(sr.srDirectory), "sr_delete leaves nothing mounted")
            let probed = try #require(try succeed("sr_probe").stringValue)
            #expect(!probed.contains("<UUID>"), "the device holds no SR any more: \(probed)")
        } else if sr.mode == .path {
            let left = sr.files()
            #expect(!left.contains(".swiftsm-sr") && !left.contains { $0.hasSuffix(".vhd") }, "\(left)")
        } else if sr.mode == .lvmoiscsi {
            // vgremove + pvremove: lvm2 finds no PV on the LUN, a probe no SR.
            let pvs = try sr.lvm2Report(["pvs", "-o", "pv_name,vg_name"])
            #expect(pvs.isEmpty, "\(pvs)")
            let probed = try #require(try succeed("sr_probe").stringValue)
            #expect(!probed.contains("<UUID>"), "the LUN holds no SR any more: \(probed)")
        } else {
            #expect(!FileManager.default.fileExists(atPath: sr.srDirectory), "sr_delete removes the SR's directory")
            let probed = try #require(try succeed("sr_probe").stringValue)
            #expect(!probed.contains("<UUID>"), "the export holds no SR any more: \(probed)")
        }
    }

    // MARK: - Log

    func logPhase() throws {
        let log = try String(contentsOfFile: sr.runDir + "/SMlog", encoding: .utf8)
        #expect(log.contains("vdi_snapshot"), "SMlog records the commands")
        for session in try E2EFixtures.sessionRefs() {
            #expect(!log.contains(String(session.dropFirst("OpaqueRef:".count))), "SMlog shows session \(session)")
        }
    }
}

/// The commands a life cycle ran.
private final class UsedCommands: @unchecked Sendable {
    private let lock = NSLock()
    private var set: Set<String> = []
    func insert(_ command: String) { _ = lock.withLock { set.insert(command) } }
    var all: Set<String> { lock.withLock { set } }
}
