import FakeXapi
import Foundation
import TestSupport
import LVMoISCSIDriver
import SMCore
import Testing
import VHD

/// How the EXT SR under test is given to the driver.
enum SRMode: String, Sendable, CaseIterable, CustomTestStringConvertible {
    /// `device-config:path` = a temporary directory.
    case path
    /// `device-config:device` = a loop device over a sparse file, formatted ext4 by `sr_create`.
    case device
    /// An NFS SR (`smdriver --driver nfs`) on the NFS-Ganesha server `scripts/with-nfs-server.sh`
    /// runs beside the tests: `serverpath` is a new directory of its export, whose files the
    /// test reads directly on this host.
    case nfs
    /// An LVM-over-iSCSI SR (`smdriver --driver lvmoiscsi`) on a private tgt target holding one
    /// LUN, whose backing file the test reads directly as the PV.
    case lvmoiscsi

    /// The modes of the file-based SRs (one life cycle and one set of file checks serve them).
    static let fileModes: [SRMode] = [.path, .device, .nfs]

    var testDescription: String { rawValue }
}

/// A fault or an unparsable answer where a success was expected.
struct UnexpectedAnswer: Error, CustomStringConvertible {
    let description: String
}

/// One EXT SR for an end-to-end test: a temporary root (run directory, SR directory or loop
/// device image), a fake xapi that knows the documents' SR ref and session refs, and helpers to
/// run request documents through the `smdriver` executable and to inspect what is on disk.
/// `cleanup()` must always run (it unmounts, detaches the loop device and removes the files).
final class TestSR: @unchecked Sendable {
    /// How the SR is reached.
    let mode: SRMode
    /// Temporary root of everything this SR uses.
    let root: String
    /// `SWIFTSM_RUN_DIR` of every call.
    let runDir: String
    /// The SR's uuid (`{{SR_UUID}}`).
    let srUUID: String
    /// The fake xapi the driver calls back.
    let fake: FakeXapi
    /// The loop device in device mode.
    let loop: LoopDevice?
    /// The NFS server of an NFS SR.
    let nfsServer: NFSTestServer?
    /// The iSCSI target of an LVM-over-iSCSI SR.
    let iscsi: ISCSITestTarget?
    /// The SR directory in path mode.
    let pathDirectory: String
    /// File system calls on the SR's files; for an LVM-over-iSCSI SR, the VG on the LUN's
    /// backing file (read again at every use).
    var provider: any StoreProvider {
        guard mode == .lvmoiscsi, let iscsi, let store = try? FileStore(path: iscsi.backingFile, writable: true),
              let group = try? LVHDVolumeGroup(store: store) else { return FileStoreProvider() }
        return LVHDStoreProvider(group: group, vgName: "VG_XenStorage-" + srUUID)
    }
    private var cleaned = false

    /// A new SR environment (nothing created on the SR yet: run `sr_create`).
    init(mode: SRMode = .path, pathBelowRoot: String = "sr", imageSize: UInt64 = 256 << 20, nfsServer: NFSTestServer? = nil,
         chap: (user: String, password: String, targetUser: String?, targetPassword: String?)? = nil) throws {
        self.mode = mode
        let nfs = mode == .nfs ? (nfsServer ?? NFSTestServer.current) : nil
        self.nfsServer = nfs
        // Short: datapath sockets live under the run directory and must fit in sun_path.
        root = "/tmp/swe-" + UUID().uuidString.prefix(8).lowercased()
        runDir = root + "/r"
        pathDirectory = root + "/" + pathBelowRoot
        srUUID = UUID().uuidString.lowercased()
        _ = Self.sweepStaleRoots
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        var target: ISCSITestTarget? = nil
        try Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: root + "/owner"))
        do {
            if mode == .device {
                loop = try LoopDevice(image: root + "/ext4.img", size: imageSize)
            } else {
                loop = nil
            }
            target = mode == .lvmoiscsi ? try ISCSITestTarget(root: root, sizeMB: Int(max(imageSize, 512 << 20) >> 20), chap: chap) : nil
            iscsi = target
            if mode == .nfs {
                guard let server = nfs else { throw UnexpectedAnswer(description: "no NFS test server: run the tests through scripts/with-nfs-server.sh") }
                try FileManager.default.createDirectory(atPath: server.export + "/" + StorePath.basename(root), withIntermediateDirectories: true)
            }
            fake = try FakeXapi()
        } catch {
            target?.stop()
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
        fake.addSR(ref: E2EFixtures.srRef, uuid: srUUID,
                   nameLabel: mode == .nfs ? "NFS storage" : mode == .lvmoiscsi ? "iSCSI storage" : "Local storage", type: driver)
        fake.addHost(ref: E2EFixtures.hostRef, otherConfig: mode == .lvmoiscsi ? ["iscsi_iqn": Self.initiatorIQN] : [:])
        fake.addPBD(host: E2EFixtures.hostRef, sr: E2EFixtures.srRef)
        fake.addSessions(try E2EFixtures.sessionRefs())
    }

    deinit { cleanup() }

    /// Unmounts what the SR mounted, detaches the loop device, stops the fake and removes the files.
    func cleanup() {
        guard !cleaned else { return }
        cleaned = true
        stopDatapaths()
        for point in Shell.mountPoints(under: root + "/") { _ = try? Shell.run("/bin/umount", ["-l", point]) }
        loop?.detach()
        iscsi?.stop()
        fake.stop()
        try? FileManager.default.removeItem(atPath: root)
        if let server = nfsServer { try? FileManager.default.removeItem(atPath: nfsServerPath(server)) }
    }

    /// This host's iSCSI initiator name (host other-config `iscsi_iqn`) for LVM-over-iSCSI SRs.
    static let initiatorIQN = "iqn.2026-12.org.swiftsm.test:initiator"

    /// The driver type the calls name (`smdriver --driver`).
    var driver: String {
        switch mode {
        case .nfs: "nfs"
        case .lvmoiscsi: "lvmoiscsi"
        case .path, .device: "ext"
        }
    }

    /// The SR's `serverpath` on the test server's export (NFS mode).
    func nfsServerPath(_ server: NFSTestServer) -> String { server.export + "/" + StorePath.basename(root) }

    /// Kills the `swiftsm-datapath` processes our calls started (found by the pid files under the
    /// run directory, and under any other host's run directory a test made below the root, each
    /// checked to be a datapath before it is signalled), whether or not the test got as far as
    /// stopping them itself.
    func stopDatapaths() {
        for pid in Self.datapathPIDs(underRoot: root) {
            kill(pid, SIGKILL)
        }
    }

    /// Live datapath processes of every run directory directly below `root` (`r`, and the other
    /// hosts' a test makes there).
    static func datapathPIDs(underRoot root: String) -> [pid_t] {
        let dirs = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).map { root + "/" + $0 }
        return dirs.flatMap { datapathPIDs(runDir: $0) }
    }

    /// Live datapath processes started for this SR's run directory.
    func datapathPIDs() -> [pid_t] { Self.datapathPIDs(runDir: runDir) }

    /// Removes what an earlier test process left behind when it died without cleaning up (its
    /// `/tmp/swe-*` root names a dead owner): its datapaths, mounts, loop devices and files.
    static let sweepStaleRoots: Void = {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix("swe-") {
            let root = "/tmp/" + name
            guard let text = try? String(contentsOfFile: root + "/owner", encoding: .utf8),
                  let owner = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  owner != getpid(), kill(owner, 0) != 0 else { continue }
            for pid in datapathPIDs(underRoot: root) { kill(pid, SIGKILL) }
            for point in Shell.mountPoints(under: root + "/") { _ = try? Shell.run("/bin/umount", ["-l", point]) }
            if let loops = try? Shell.run("/sbin/losetup", ["-j", root + "/ext4.img"]) {
                for line in loops.split(separator: "\n") {
                    if let dev = line.split(separator: ":").first { _ = try? Shell.run("/sbin/losetup", ["-d", String(dev)]) }
                }
            }
            try? FileManager.default.removeItem(atPath: root)
        }
    }()

    /// Live datapath processes whose pid files are under `runDir`.
    static func datapathPIDs(runDir: String) -> [pid_t] {
        let base = runDir + "/datapath"
        guard let enumerator = FileManager.default.enumerator(atPath: base) else { return [] }
        var out: [pid_t] = []
        for case let relative as String in enumerator where relative.hasSuffix("/pid") {
            guard let text = try? String(contentsOfFile: base + "/" + relative, encoding: .utf8),
                  let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0,
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            let argv0 = String(decoding: cmdline.prefix { $0 != 0 }, as: UTF8.self)
            if argv0.hasSuffix("swiftsm-datapath") { out.append(pid) }
        }
        return out
    }

    /// Where the SR's files are: the directory (path mode) or the mount point (device mode).
    var srDirectory: String {
        switch mode {
        case .path: pathDirectory
        case .device: runDir + "/sr-mount/" + srUUID
        case .nfs: nfsServerPath(nfsServer!) + "/" + srUUID
        case .lvmoiscsi: "/dev/VG_XenStorage-" + srUUID
        }
    }

    /// The environment of every call.
    var environment: [String: String] {
        ["SWIFTSM_RUN_DIR": runDir, "SWIFTSM_XAPI_URL": fake.socketPath, "SWIFTSM_GC_AUTOSTART": autostartCollector ? "1" : "0"]
    }

    /// Whether SMAPI calls start a background collector (off unless a test is about it, so that
    /// no collector changes the tree under a test's feet).
    var autostartCollector = false

    // MARK: - Calls

    /// `ext-<command>.xml` with the placeholders filled for this SR (and `vdi`), in path mode with
    /// `device_config:device` replaced by `path`.
    func document(_ command: String, vdi: String? = nil) throws -> RequestDocument {
        var values = ["SR_UUID": srUUID, "EXT_DEVICE": loop?.device ?? "/dev/unused-in-path-mode"]
        if let vdi { values["VDI_UUID"] = vdi; values["VDI_LOCATION"] = vdi }
        if mode == .lvmoiscsi, let iscsi {
            values.merge(["ISCSI_TARGET": iscsi.host, "ISCSI_PORT": String(iscsi.port), "ISCSI_IQN": iscsi.iqn,
                          "SCSI_ID": iscsi.scsiID, "ISCSI_INITIATOR_IQN": Self.initiatorIQN]) { $1 }
            var doc = try RequestDocument(command: command, values: values, driver: "lvmoiscsi")
            if let chap = iscsi.chap {
                doc.editDeviceConfig { dc in
                    dc.append(XMLRPCMember("chapuser", .string(chap.user)))
                    dc.append(XMLRPCMember("chappassword", .string(chap.password)))
                    if let u = chap.targetUser, let p = chap.targetPassword {
                        dc.append(XMLRPCMember("incoming_chapuser", .string(u)))
                        dc.append(XMLRPCMember("incoming_chappassword", .string(p)))
                    }
                }
            }
            return doc
        }
        if mode == .nfs {
            guard let server = nfsServer else { throw UnexpectedAnswer(description: "no NFS server") }
            values["NFS_SERVER"] = server.host
            values["NFS_PATH"] = nfsServerPath(server)
            var doc = try RequestDocument(command: command, values: values, driver: "nfs")
            doc.editDeviceConfig { $0.append(XMLRPCMember("options", .string(server.options))) }
            return doc
        }
        var doc = try RequestDocument(command: command, values: values)
        if mode == .path { doc.usePath(pathDirectory) }
        return doc
    }

    /// Runs a document (with `SWIFTSM_FAULT=fault` when given).
    func run(_ doc: RequestDocument, fault: String? = nil, timeout: Double = 60) throws -> SmdriverResult {
        try run(arguments: [doc.text], fault: fault, timeout: timeout)
    }

    /// Runs the executable with raw arguments.
    func run(arguments: [String], fault: String? = nil, timeout: Double = 60) throws -> SmdriverResult {
        var env = environment
        if let fault { env["SWIFTSM_FAULT"] = fault }
        return try Smdriver.run(arguments, driver: driver, environment: env, timeout: timeout)
    }

    /// Runs `command`'s document, edited by `edit`.
    @discardableResult
    func call(_ command: String, vdi: String? = nil, fault: String? = nil,
              _ edit: (inout RequestDocument) -> Void = { _ in }) throws -> SmdriverResult {
        var doc = try document(command, vdi: vdi)
        edit(&doc)
        return try run(doc, fault: fault)
    }

    /// The success value of `result`; records an issue and throws on exit status ≠ 0, a fault or bad output.
    @discardableResult
    func value(_ result: SmdriverResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> XMLRPCValue {
        #expect(result.exitStatus == 0, "\(result)", sourceLocation: sourceLocation)
        let response: XMLRPCMethodResponse
        do { response = try result.response() } catch {
            Issue.record("stdout is not a methodResponse: \(error)\n\(result)", sourceLocation: sourceLocation)
            throw UnexpectedAnswer(description: "\(error)")
        }
        guard let value = response.value else {
            Issue.record("unexpected fault \(response.faultValue!)\n\(result)", sourceLocation: sourceLocation)
            throw UnexpectedAnswer(description: "\(response.faultValue!)")
        }
        return value
    }

    /// Runs `command` and returns its success value (see `value(_:)`).
    @discardableResult
    func succeed(_ command: String, vdi: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                 _ edit: (inout RequestDocument) -> Void = { _ in }) throws -> XMLRPCValue {
        try value(try call(command, vdi: vdi, edit), sourceLocation: sourceLocation)
    }

    /// The fault of `result`; records an issue when the exit status is not 0 or the answer is not a fault.
    @discardableResult
    func fault(_ result: SmdriverResult, sourceLocation: SourceLocation = #_sourceLocation) -> XMLRPCFault? {
        #expect(result.exitStatus == 0, "\(result)", sourceLocation: sourceLocation)
        guard let response = try? result.response() else {
            Issue.record("stdout is not a methodResponse\n\(result)", sourceLocation: sourceLocation)
            return nil
        }
        guard let fault = response.faultValue else {
            Issue.record("expected a fault, got \(response)\n\(result)", sourceLocation: sourceLocation)
            return nil
        }
        return fault
    }

    /// The `{location, uuid}` of a VDI_INFO answer (both strings, equal for VHD SRs).
    func vdiInfo(_ value: XMLRPCValue, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let members = try #require(value.structMembers, "VDI_INFO is a struct: \(value)", sourceLocation: sourceLocation)
        #expect(Set(members.map(\.name)) == ["location", "uuid"], sourceLocation: sourceLocation)
        let uuid = try #require(value[member: "uuid"]?.stringValue, sourceLocation: sourceLocation)
        #expect(value[member: "location"]?.stringValue == uuid, sourceLocation: sourceLocation)
        #expect(VDIName.isUUID(uuid), sourceLocation: sourceLocation)
        return uuid
    }

    /// `sr_create` then `sr_attach` (both must succeed).
    func createAndAttach() throws {
        try value(try call("sr_create"))
        try value(try call("sr_attach"))
    }

    /// `vdi_create` of `size` bytes (the document's 10 GiB by default); returns the new uuid.
    func createVDI(size: UInt64? = nil, label: String? = nil) throws -> String {
        let result = try call("vdi_create") { doc in
            if let size { doc.setArgs([String(size), label ?? "test disk", "", "", "false", "19700101T00:00:00Z", "", "false"]) }
        }
        return try vdiInfo(try value(result))
    }

    // MARK: - What is on disk

    /// One VHD of the SR.
    struct DiskVDI: Sendable, Equatable {
        var uuid: String
        var virtualSize: UInt64
        var fileSize: UInt64
        var hidden: Bool
        /// The parent VDI uuid (from the parent's file name as resolved by the locators).
        var parent: String?
        /// The footer uuid.
        var footerUUID: String
        /// The parent's footer uuid in the header.
        var parentFooterUUID: String?
    }

    /// Names in the SR directory (the VG's LVs for an LVM-over-iSCSI SR).
    func files() -> [String] {
        if mode == .lvmoiscsi { return (try? provider.list(srDirectory)) ?? [] }
        return (try? FileManager.default.contentsOfDirectory(atPath: srDirectory)) ?? []
    }

    /// The VDI uuid of a VHD's name in the SR directory (`<uuid>.vhd`, or LV `VHD-<uuid>`), nil for other names.
    func vdiUUID(ofName name: String) -> String? {
        if mode == .lvmoiscsi { return name.hasPrefix("VHD-") ? String(name.dropFirst(4)) : nil }
        return name.hasSuffix(".vhd") && !name.hasPrefix("OLD_") ? String(name.dropLast(4)) : nil
    }

    /// Every `<uuid>.vhd` of the SR, by uuid.
    func disk() throws -> [String: DiskVDI] {
        var out: [String: DiskVDI] = [:]
        let provider = self.provider
        for name in files() {
            guard let uuid = vdiUUID(ofName: name) else { continue }
            let path = srDirectory + "/" + name
            let info = try ImageInfo.of(path: path, provider: provider)
            let size = mode == .lvmoiscsi ? try provider.open(path, writable: false).size
                : (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
            out[uuid] = DiskVDI(uuid: uuid, virtualSize: info.virtualSize, fileSize: size, hidden: info.hidden,
                                parent: info.parentPath.flatMap { vdiUUID(ofName: StorePath.basename($0)) },
                                footerUUID: info.uuid, parentFooterUUID: info.parentUUID)
        }
        return out
    }

    /// uuids of the VDIs a user sees (non-hidden VHDs).
    func visibleVDIs() throws -> Set<String> { Set(try disk().values.filter { !$0.hidden }.map(\.uuid)) }

    /// Whether VDI `uuid`'s VHD exists.
    func exists(_ uuid: String) -> Bool { files().contains(StorePath.basename(path(uuid))) }

    /// Files that only an unfinished operation leaves behind (journals, temporaries).
    func strayFiles() -> [String] {
        if mode == .lvmoiscsi {
            return files().filter { n in !((n.hasPrefix("VHD-") && vdiUUID(ofName: n).map(VDIName.isUUID) == true)
                                            || n.hasSuffix(".cbtlog") || n == "MGT") }.sorted()
        }
        return files().filter { n in
            n.hasPrefix("journal-") || n.hasPrefix(".journal-") || n.hasSuffix(".new") || n.hasSuffix(".tmp")
                || n.hasPrefix("OLD_") || !(n.hasSuffix(".vhd") || n.hasSuffix(".cbtlog") || n == ".swiftsm-sr" || n == "lost+found")
        }.sorted()
    }

    /// Problems of the VHD tree: every VHD must pass `Check.run` with its parents, open as a
    /// `VHDChain`, and point at a parent whose footer uuid it names.
    func treeProblems() -> [String] {
        var problems: [String] = []
        var options = Check.Options()
        options.parents = true
        guard let all = try? disk() else { return ["cannot read the VHDs of \(srDirectory)"] }
        let provider = self.provider
        for vdi in all.values.sorted(by: { $0.uuid < $1.uuid }) {
            let path = self.path(vdi.uuid)
            for report in Check.run(path: path, provider: provider, options: options) where !report.valid {
                problems.append("check \(report.path): \(report.problems)")
            }
            do { _ = try VHDChain(path: path, provider: provider) } catch { problems.append("chain \(vdi.uuid): \(error)") }
            if let p = vdi.parent {
                if let parent = all[p] {
                    if parent.footerUUID != vdi.parentFooterUUID { problems.append("\(vdi.uuid): parent uuid mismatch") }
                    if !parent.hidden { problems.append("\(vdi.uuid): parent \(p) is not hidden") }
                } else {
                    problems.append("\(vdi.uuid): parent \(p) missing")
                }
            }
        }
        return problems
    }

    /// Problems of the fake xapi's records against the disk, as `sr_scan` leaves them: one record per
    /// VHD (hidden leaves, which are garbage, excepted) with its size, read-only flag, managed flag
    /// and `vhd-parent`; no record without a VHD. `sizes` also compares physical utilisation.
    func recordProblems(sizes: Bool = true) -> [String] {
        var problems: [String] = []
        guard let all = try? disk() else { return ["cannot read the VHDs"] }
        let parents = Set(all.values.compactMap(\.parent))
        let records = fake.vdis.values.filter { $0.sr == E2EFixtures.srRef }
        var byLocation: [String: FakeVDI] = [:]
        for r in records {
            if byLocation[r.location] != nil { problems.append("two records at location \(r.location)") }
            byLocation[r.location] = r
        }
        for d in all.values.sorted(by: { $0.uuid < $1.uuid }) {
            let isParent = parents.contains(d.uuid)
            guard let r = byLocation[d.uuid] else {
                if !(d.hidden && !isParent) { problems.append("no record for VHD \(d.uuid)") }
                continue
            }
            if r.uuid != d.uuid { problems.append("\(d.uuid): record uuid \(r.uuid)") }
            if r.virtualSize != String(d.virtualSize) { problems.append("\(d.uuid): virtual_size \(r.virtualSize) ≠ \(d.virtualSize)") }
            if sizes && r.physicalUtilisation != String(d.fileSize) {
                problems.append("\(d.uuid): physical_utilisation \(r.physicalUtilisation) ≠ \(d.fileSize)")
            }
            if r.readOnly != (d.hidden || isParent) { problems.append("\(d.uuid): read_only \(r.readOnly)") }
            if r.managed != !d.hidden { problems.append("\(d.uuid): managed \(r.managed)") }
            if r.smConfig["vhd-parent"] != d.parent {
                problems.append("\(d.uuid): sm_config vhd-parent \(r.smConfig["vhd-parent"] ?? "-") ≠ \(d.parent ?? "-")")
            }
            if r.type != "user" && r.type != "system" { problems.append("\(d.uuid): type \(r.type)") }
        }
        // A snapshot whose data was destroyed keeps its record and its CBT log (a cbt_metadata VDI).
        for r in records where all[r.location] == nil && !files().contains(r.location + ".cbtlog") {
            problems.append("record \(r.uuid) without a VHD")
        }
        return problems
    }

    /// Problems of the SR record's sizes after a scan or update: physical size is the file
    /// system's, utilisation within it, virtual allocation the sum over visible VDIs (when `allocation`).
    func srStatsProblems(allocation: Bool = true) -> [String] {
        guard let sr = fake.sr(uuid: srUUID) else { return ["no SR record"] }
        let size: UInt64
        if mode == .lvmoiscsi {
            guard let provider = provider as? LVHDStoreProvider, let vg = try? provider.group.current() else { return ["cannot read the VG"] }
            size = vg.totalExtents * vg.extentBytes
        } else {
            var s = statvfs()
            guard statvfs(srDirectory, &s) == 0 else { return ["statvfs \(srDirectory) failed"] }
            size = UInt64(s.f_blocks) * UInt64(s.f_frsize)
        }
        var problems: [String] = []
        if sr.physicalSize != String(size) { problems.append("physical_size \(sr.physicalSize) ≠ \(size)") }
        if let used = UInt64(sr.physicalUtilisation) {
            if used == 0 || used > size { problems.append("physical_utilisation \(used) of \(size)") }
        } else { problems.append("physical_utilisation \(sr.physicalUtilisation)") }
        if allocation, let all = try? disk() {
            let expected = all.values.filter { !$0.hidden }.reduce(UInt64(0)) { $0 + $1.virtualSize }
            if sr.virtualAllocation != String(expected) { problems.append("virtual_allocation \(sr.virtualAllocation) ≠ \(expected)") }
        }
        return problems
    }

    /// The rows of an lvm2 report command run on the LUN's backing file (a loop device, lvm2's
    /// private configuration, activation off); no warning expected.
    func lvm2Report(_ args: [String]) throws -> [[String: String]] {
        guard let iscsi else { throw UnexpectedAnswer(description: "not an LVM-over-iSCSI SR") }
        let pv = try LoopPV(existing: iscsi.backingFile)
        defer { pv.close() }
        try pv.attach()
        return try pv.report(args)
    }

    // MARK: - Contents

    /// The path of VDI `uuid`'s VHD.
    func path(_ uuid: String) -> String { srDirectory + (mode == .lvmoiscsi ? "/VHD-" + uuid : "/" + uuid + ".vhd") }

    /// A hash of what VDI `uuid` reads as through its chain (all-zero blocks count as absent, so
    /// only blocks allocated somewhere in the chain are read).
    func contentHash(_ uuid: String) throws -> UInt64 {
        let chain = try VHDChain(path: path(uuid), provider: provider)
        let blockSize = chain.leaf.blockSize
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in 0..<chain.leaf.blockCount where AllocationMap.blockAllocated(chain, b) {
            let start = UInt64(b) * UInt64(blockSize)
            let count = Int(min(UInt64(blockSize), chain.virtualSize - start))
            let bytes = try chain.read(count: count, at: start)
            guard bytes.contains(where: { $0 != 0 }) else { continue }
            hash = Self.fnv(hash, UInt64(b))
            bytes.withUnsafeBytes { raw in
                var i = 0
                while i + 8 <= raw.count { hash = Self.fnv(hash, raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)); i += 8 }
            }
        }
        return hash
    }

    private static func fnv(_ h: UInt64, _ word: UInt64) -> UInt64 { (h ^ word) &* 0x0000_0100_0000_01b3 }

    /// Writes a recognisable pattern derived from `seed` into VDI `uuid` with the VHD library
    /// (a sector at the start, a run across a block boundary, a sector near the end), as a
    /// guest would through the data path. The caller must hold the SR lock if drivers run concurrently.
    func writePattern(_ uuid: String, seed: UInt8) throws {
        let chain = try VHDChain(path: path(uuid), provider: provider, writable: true)
        let size = chain.virtualSize
        func pattern(_ count: Int, _ salt: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed ^ salt } }
        try chain.write(pattern(4096, 1), at: 0)
        if size > 6 << 20 { try chain.write(pattern(64 << 10, 2), at: (2 << 20) - (16 << 10)) }
        try chain.write(pattern(512, 3), at: size - 1024)
        try chain.flush()
    }

    /// The SR lock the drivers take (for writing into a VDI while other processes run).
    func withSRLock<T>(_ body: () throws -> T) throws -> T {
        let lock = RunDirectory(root: runDir).srLock(srUUID)
        try lock.lock(timeout: 60)
        defer { lock.unlock() }
        return try body()
    }
}
