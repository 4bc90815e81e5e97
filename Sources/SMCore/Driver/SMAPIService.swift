import CBT
import Foundation
import Logging
import VHD

/// Runs one SMAPIv1 call as the Python SM's `SRCommand` does: parse, take the SR lock for the
/// exclusive commands, dispatch to the driver (SR life cycle) or the VHD repository (VDIs), make
/// the XenAPI callbacks, and turn every failure into the fault the Python SM would print.
public struct SMAPIService {
    /// The driver this executable stands for.
    public let driver: any SRDriver
    /// The host's run directory.
    public let run: RunDirectory
    /// Makes the callbacks object for a request (XenAPI when it carries a session).
    public let callbacks: (SMAPIRequest) throws -> any XenAPICallbacks
    /// The log.
    public let log: Logger
    /// Starts a background collector for an SR (smdriver spawns itself with `gc --background`);
    /// nil: nobody is started, the kick flag alone records the work.
    public var collectorStarter: ((String) -> Void)?

    /// Commands that hold the SR lock for the whole call (FileSR's `OPS_EXCLUSIVE`).
    static let exclusive: Set<SMAPICommand> = [.srCreate, .srDelete, .srProbe, .srAttach, .srDetach, .srScan,
                                               .vdiCreate, .vdiDelete, .vdiResize, .vdiSnapshot, .vdiClone,
                                               .vdiCompose, .vdiIntroduce, .vdiEpochBegin, .vdiUpdate,
                                               .vdiEnableCBT, .vdiDisableCBT, .vdiListChangedBlocks, .vdiDataDestroy]

    /// A service for `driver`.
    public init(driver: any SRDriver, run: RunDirectory = .current, log: Logger,
                callbacks: @escaping (SMAPIRequest) throws -> any XenAPICallbacks) {
        self.driver = driver
        self.run = run
        self.log = log
        self.callbacks = callbacks
    }

    /// Handles the program's arguments (after the program name) and returns the document to
    /// print: a methodResponse, or a fault. Never throws.
    public func handle(arguments: [String]) -> String {
        guard arguments.count == 1 else {
            log.error("bad request: \(SMAPIRequestError.wrongArgumentCount(arguments.count))")
            return SMAPIResponse.text(SMAPIResponse.fault(SMAPIError(.BadRequest)))
        }
        let request: SMAPIRequest
        do {
            request = try SMAPIRequest(parsing: arguments[0])
        } catch {
            log.error("bad request: \(error)")
            return SMAPIResponse.text(SMAPIResponse.fault(error.smapiError))
        }
        return SMAPIResponse.text(handle(request))
    }

    /// Handles a parsed request.
    public func handle(_ request: SMAPIRequest) -> XMLRPCMethodResponse {
        var log = self.log
        if let sr = request.srUUID { log[metadataKey: "sr"] = "\(sr)" }
        if let vdi = request.vdiUUID { log[metadataKey: "vdi"] = "\(vdi)" }
        log.info("\(request.command) args=\(request.args.count)")
        var lock: FileLock? = nil
        do {
            let callbacks = try self.callbacks(request)
            let context = DriverContext(request: request, run: run, callbacks: callbacks, log: log)
            if Self.exclusive.contains(request.command), let sr = request.srUUID, VDIName.isUUID(sr) {
                lock = run.srLock(sr)
                try lock?.lock(timeout: 300)
            }
            defer { lock?.unlock() }
            try driver.authorize(context)
            if lock != nil && !request.command.isSRCommand { try recoverInterrupted(context) }
            let response = try dispatch(context)
            log.info("\(request.command) done")
            return response
        } catch let e as SMAPIError {
            log.error("\(request.command) failed: \(e)")
            return SMAPIResponse.fault(e)
        } catch {
            let e = Self.fault(for: error, command: request.command)
            log.error("\(request.command) failed: \(e) (\(error))")
            return SMAPIResponse.fault(e)
        }
    }

    /// The fault the Python SM gives for `error` escaping `command`.
    static func fault(for error: Error, command: SMAPICommand) -> SMAPIError {
        switch error {
        case let e as SMAPIFaultConvertible:
            return e.fault(for: command)
        case let e as RepositoryError:
            switch e {
            case .missing: return SMAPIError(.VDIUnavailable, opterr: e.description)
            case .invalidName: return SMAPIError(.VDIUnavailable, opterr: e.description)
            case .invalidSize, .shrink: return SMAPIError(.VDISize, opterr: e.description)
            case .hidden: return SMAPIError(command == .vdiResize ? .VDIUnavailable : .VDIClone, opterr: e.description)
            case .hasChildren: return SMAPIError(.VDIDelete, opterr: e.description)
            case .chainTooLong: return SMAPIError(.SnapshotChainTooLong, opterr: e.description)
            case .exists, .corruptVolume: return SMAPIError(command.failureCode, opterr: e.description)
            }
        case let e as VHDError:
            if case .noSpace = e { return SMAPIError(.SRNoSpace, opterr: e.description) }
            return SMAPIError(command.failureCode, opterr: e.description)
        case let e as StorageError:
            return SMAPIError(command.failureCode, opterr: e.description)
        case let e as CBTError:
            return SMAPIError(e.code, opterr: e.description)
        case let e as CBTFormatError:
            return SMAPIError(.CBTMetadataInconsistent, opterr: e.description)
        case let e as XenAPIError:
            // A XenAPI.Failure from a callback: the command's own code, as SRCommand._run reports it.
            return SMAPIError(command.failureCode, opterr: "\(e)")
        default:
            return SMAPIError.generic("\(error)")
        }
    }

    // MARK: - Dispatch

    func dispatch(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let r = c.request
        switch r.command {
        case .srGetDriverInfo:
            return SMAPIResponse.driverInfo(driver.info)
        case .srProbe:
            try requireKeys(c)
            return SMAPIResponse.string(try driver.probe(c))
        case .srCreate:
            try requireKeys(c)
            _ = try c.srUUID()
            try driver.create(c, size: UInt64(r.args.first ?? "0") ?? 0)
            return SMAPIResponse.unit()
        case .srDelete:
            try requireKeys(c)
            // FileSR.delete attaches first: xapi destroys an SR after unplugging it.
            try driver.attach(c)
            let repo = try repository(c)
            try withCollectorStopped(c) {
                try repo.recover()
                // The Python SM's gc_force: interrupted collector work finished, then the hidden
                // nodes nothing depends on removed; no coalescing.
                let gc = try collector(c)
                try gc.recoverJournals()
                try gc.removeAllGarbage()
                guard try repo.scan().isEmpty else { throw SMAPIError(.SRNotEmpty) }
                try driver.delete(c)
            }
            SRPlugRecord.remove(run: run, sr: try c.srUUID())
            return SMAPIResponse.unit()
        case .srAttach:
            try requireKeys(c)
            _ = try c.srUUID()
            try driver.attach(c)
            recordPlug(c)
            // blktap's reset_sr: what a crash left on the records of VDIs not active here goes.
            let sr = try c.srUUID()
            do { try ActivationTags(c).reset { self.datapaths(c).isActive(sr: sr, vdi: $0) } } catch {
                c.log.warning("resetting the VDIs' activation keys failed: \(error)")
            }
            if r.isMaster {
                try c.callbacks.markDirty()
                reconcileKept(c)
                do { try scan(c) } catch { c.log.warning("post-attach scan failed: \(error)") }
            }
            return SMAPIResponse.unit()
        case .srDetach:
            _ = try c.srUUID()
            try withCollectorStopped(c) { try driver.detach(c) }
            SRPlugRecord.remove(run: run, sr: try c.srUUID())
            return SMAPIResponse.unit()
        case .srScan:
            try scan(c)
            kickCollector(c)
            return SMAPIResponse.unit()
        case .srUpdate:
            let (size, used) = try driver.container(c).capacity()
            try c.callbacks.srStats(virtualAllocationDelta: 0, physicalSize: size, physicalUtilisation: used)
            return SMAPIResponse.unit()
        case .vdiCreate:
            return try createVDI(c)
        case .vdiDelete:
            return try deleteVDI(c)
        case .vdiSnapshot, .vdiClone:
            return try snapshotVDI(c)
        case .vdiResize:
            return try resizeVDI(c)
        case .vdiUpdate:
            let uuid = try vdiUUID(c)
            try c.callbacks.update(try repository(c).state(uuid))
            keepFromXapi(c, uuid)
            return SMAPIResponse.unit()
        case .vdiIntroduce:
            let repo = try repository(c)
            guard let uuid = r.newUUID, VDIName.isUUID(uuid) else { throw SMAPIError(.VDIUnavailable, opterr: "new_uuid") }
            let s = try repo.state(uuid)
            try c.callbacks.introduce(s, record: VDIRecordFields())
            keep(c, [KeptVDIRecord(uuid: s.uuid)])
            return SMAPIResponse.vdiInfo(uuid: s.uuid, location: s.location)
        case .vdiGenerateConfig:
            return SMAPIResponse.string(try generateConfig(c))
        case .vdiEpochBegin:
            if r.vdiOnBoot == "reset" {
                let repo = try repository(c)
                let uuid = try vdiUUID(c)
                guard try repo.state(uuid).parent != nil else {
                    throw SMAPIError(.SMGeneral, opterr: "cannot reset VDI \(uuid): it has no parent")
                }
                try repo.resetLeaf(uuid)
            }
            return SMAPIResponse.unit()
        case .vdiEpochEnd:
            return SMAPIResponse.unit()
        case .vdiCompose:
            let repo = try repository(c)
            let child = try vdiUUID(c)
            guard let parentRef = r.args.first, let parent = try c.callbacks.vdiUUID(ref: parentRef) else {
                throw SMAPIError(.VDIUnavailable, opterr: "compose needs the parent VDI's uuid (no session)")
            }
            try withDatapathPaused(c, child) { try repo.compose(parent: parent, child: child) }
            try c.callbacks.setManaged(uuid: parent, false)
            return SMAPIResponse.unit()
        case .vdiEnableCBT:
            return try enableCBT(c)
        case .vdiDisableCBT:
            return try disableCBT(c)
        case .vdiListChangedBlocks:
            return try listChangedBlocks(c)
        case .vdiDataDestroy:
            return try dataDestroy(c)
        case .vdiAttach:
            return try attachVDI(c)
        case .vdiDetach:
            return SMAPIResponse.unit()
        case .vdiActivate:
            try activateVDI(c)
            return SMAPIResponse.unit()
        case .vdiDeactivate:
            try deactivateVDI(c)
            return SMAPIResponse.unit()
        case .vdiAttachFromConfig:
            return try attachFromConfig(c)
        case .vdiDetachFromConfig:
            try deactivateVDI(c)
            return SMAPIResponse.unit()
        default:
            throw SMAPIError(.Unimplemented, opterr: "\(r.command)")
        }
    }

    func requireKeys(_ c: DriverContext) throws {
        for (key, fault) in driver.requiredKeys where c.config(key) == nil { throw SMAPIError(fault) }
    }

    func repository(_ c: DriverContext) throws -> VHDRepository { VHDRepository(container: try driver.container(c)) }

    /// The VDI uuid of a VDI-scoped call: `vdi_uuid`, else `vdi_location` (both must be uuids).
    func vdiUUID(_ c: DriverContext) throws -> String {
        guard let u = c.request.vdiUUID ?? c.request.vdiLocation else { throw SMAPIError(.VDIUnavailable, opterr: "no vdi_uuid") }
        guard VDIName.isUUID(u) else { throw SMAPIError(.VDIUnavailable, opterr: "\(u) is not a VDI uuid") }
        if let loc = c.request.vdiLocation, loc != u { throw SMAPIError(.VDIUnavailable, opterr: "location \(loc) is not \(u)") }
        return u
    }

    /// Finishes or undoes what a crash interrupted (a snapshot journal, a half-made file) before a
    /// VDI command changes the tree, so a new operation never meets a pending journal; the SR lock is held.
    func recoverInterrupted(_ c: DriverContext) throws {
        try recover(try repository(c), c)
    }

    /// Recovery of every layer: the repository's journals and half-made volumes, then the
    /// collector's journals; a journal no layer owns is a fault (never silently left).
    func recover(_ repo: VHDRepository, _ c: DriverContext) throws {
        let recovered = try repo.recover()
        if recovered != VHDRepository.Recovery() { c.log.notice("recovered: \(recovered)") }
        try recoverCollectorJournals(c)
        for name in try repo.container.journals().keys where !VHDRepository.owns(journal: name) && !GCJournal.owns(name) {
            throw RepositoryError.corruptVolume(name, "unknown journal")
        }
    }

    func scan(_ c: DriverContext) throws {
        let container = try driver.container(c)
        let repo = VHDRepository(container: container)
        try recover(repo, c)
        var states: [VDIState]
        do { states = Array(try repo.scan().values) } catch {
            throw SMAPIError(.SRScan, opterr: "\(error)")
        }
        let logged = (try? repo.cbtLogs.vdis()) ?? []
        for i in states.indices where logged.contains(states[i].uuid) { states[i].cbtEnabled = true }
        states += cbtMetadataStates(repo, excluding: Set(states.map(\.uuid)), c)
        let (size, used) = try container.capacity()
        try c.callbacks.scanSync(states, kept: keptRecords(c), physicalSize: size, physicalUtilisation: used)
    }

    func createVDI(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let r = c.request
        let repo = try repository(c)
        if let t = r.vdiSMConfig?["type"], t != "vhd" { throw SMAPIError(.VDIType, opterr: "type \(t) is not supported") }
        guard let sizeText = r.args.first, let size = UInt64(sizeText) else { throw SMAPIError(.VDISize, opterr: "size") }
        for text in r.args.dropFirst().prefix(2) where !XMLText.isLegal(text) {
            throw SMAPIError(.IllegalXMLChar)
        }
        let uuid = r.vdiUUID ?? VDIName.newUUID()
        let s = try repo.create(uuid: uuid, size: size)
        var f = VDIRecordFields()
        if r.args.count >= 8 {
            f.nameLabel = r.args[1]; f.nameDescription = r.args[2]
            f.metadataOfPool = r.args[3]; f.isASnapshot = r.args[4] == "true"
            f.snapshotTime = r.args[5]; f.snapshotOf = r.args[6]; f.readOnly = r.args[7] == "true"
        }
        f.type = r.vdiType ?? "user"
        for k in ["key_hash", "base_mirror"] { if let v = r.vdiSMConfig?[k] { f.extraSMConfig[k] = v } }
        try c.callbacks.introduce(s, record: f)
        keep(c) { _ in
            // Only a driver that keeps records asks xapi for the uuid of the VDI it is a snapshot of.
            let of = f.snapshotOf == XenAPIClient.nullRef ? nil : (try? c.callbacks.vdiUUID(ref: f.snapshotOf)) ?? nil
            return [KeptVDIRecord(uuid: s.uuid, fields: f, snapshotOf: of ?? "")]
        }
        let (total, used) = try repo.container.capacity()
        try c.callbacks.srStats(virtualAllocationDelta: Int64(s.virtualSize), physicalSize: total, physicalUtilisation: used)
        return SMAPIResponse.vdiInfo(uuid: s.uuid, location: s.location)
    }

    func deleteVDI(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let repo = try repository(c)
        let uuid = try vdiUUID(c)
        let hasVHD = repo.container.exists(repo.volume(uuid))
        guard hasVHD || repo.cbtLogs.exists(uuid) else { return SMAPIResponse.unit() }
        if datapaths(c).isActive(sr: try c.srUUID(), vdi: uuid) { throw SMAPIError(.VDIInUse, opterr: "VDI \(uuid) is active") }
        let s = hasVHD ? try repo.state(uuid) : nil
        try removeCBTLog(c, repo, uuid)
        if hasVHD { try repo.delete(uuid: uuid) }
        try c.callbacks.forget(uuid: uuid)
        dropKept(c, uuid)
        let (total, used) = try repo.container.capacity()
        try c.callbacks.srStats(virtualAllocationDelta: -Int64(s?.virtualSize ?? 0), physicalSize: total, physicalUtilisation: used)
        kickCollector(c)
        return SMAPIResponse.unit()
    }

    func snapshotVDI(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let r = c.request
        let repo = try repository(c)
        let uuid = try vdiUUID(c)
        let type = r.command == .vdiClone ? "double" : (r.driverParams?["type"] ?? "double")
        let copy: String? = (type == "single" || type == "internal") ? nil : VDIName.newUUID()
        let result = try withDatapathPaused(c, uuid) {
            try repo.snapshot(uuid: uuid, copyUUID: copy, linkCBT: r.command == .vdiSnapshot)
        }
        if let leaf = result.copy {
            var f = VDIRecordFields()
            f.cbtEnabled = repo.cbtLogs.exists(leaf.uuid)
            try c.callbacks.introduce(leaf, record: f)
        }
        if let base = result.base {
            var f = VDIRecordFields()
            f.nameLabel = "base copy"; f.readOnly = true
            try c.callbacks.introduce(base, record: f)
            try c.callbacks.setManaged(uuid: base.uuid, false)
            try c.callbacks.update(result.vdi)
        }
        if result.copy != nil || result.base != nil {
            let snapshot = r.command == .vdiSnapshot
            keep(c) { kept in
                var records: [KeptVDIRecord] = []
                if let leaf = result.copy {
                    // As xapi goes on to make it: the source's names, a snapshot of it or a clone.
                    var record = kept[uuid] ?? KeptVDIRecord(uuid: uuid)
                    record.uuid = leaf.uuid
                    record.readOnly = leaf.readOnly
                    record.managed = true
                    record.isASnapshot = snapshot
                    record.snapshotOf = snapshot ? uuid : ""
                    record.snapshotTime = snapshot ? XenAPIDateTime.string(from: Date()) : ""
                    records.append(record)
                }
                if let base = result.base {
                    var record = KeptVDIRecord(uuid: base.uuid)
                    record.nameLabel = "base copy"
                    record.readOnly = true
                    record.managed = false
                    records.append(record)
                }
                return records
            }
        }
        if type != "internal" {
            let (total, used) = try repo.container.capacity()
            try c.callbacks.srStats(virtualAllocationDelta: Int64(result.vdi.virtualSize), physicalSize: total, physicalUtilisation: used)
        }
        guard let answer = result.copy ?? result.base ?? (result.vdi.parent.map { try? repo.state($0) } ?? nil) else {
            throw SMAPIError(r.command.failureCode, opterr: "nothing to snapshot")
        }
        if type != "internal" { kickCollector(c) }
        return SMAPIResponse.vdiInfo(uuid: answer.uuid, location: answer.location)
    }

    func resizeVDI(_ c: DriverContext) throws -> XMLRPCMethodResponse {
        let repo = try repository(c)
        let uuid = try vdiUUID(c)
        guard let sizeText = c.request.args.first, let size = UInt64(sizeText) else { throw SMAPIError(.VDISize, opterr: "size") }
        let before = try repo.state(uuid)
        guard !before.hidden else { throw SMAPIError(.VDIUnavailable, opterr: "VDI \(uuid) is hidden") }
        let after = try withDatapathPaused(c, uuid) { try repo.resize(uuid: uuid, size: size) }
        if after.virtualSize != before.virtualSize {
            try c.callbacks.update(after)
            let (total, used) = try repo.container.capacity()
            try c.callbacks.srStats(virtualAllocationDelta: Int64(after.virtualSize) - Int64(before.virtualSize),
                                    physicalSize: total, physicalUtilisation: used)
        }
        return SMAPIResponse.vdiInfo(uuid: after.uuid, location: after.location)
    }

    /// The `vdi_attach_from_config` call `static-vdis` will run later, as the driver writes it.
    func generateConfig(_ c: DriverContext) throws -> String {
        let uuid = try vdiUUID(c)
        _ = try repository(c).state(uuid)
        return try driver.generateConfig(c, vdi: uuid)
    }
}

/// Legal XML 1.0 characters (name labels with others are refused with 447, as the Python SM does).
enum XMLText {
    /// Whether every scalar of `s` may appear in an XML document.
    static func isLegal(_ s: String) -> Bool {
        s.unicodeScalars.allSatisfy { u in
            let v = u.value
            return v == 0x9 || v == 0xA || v == 0xD || (0x20...0xD7FF).contains(v) || (0xE000...0xFFFD).contains(v)
                || (0x10000...0x10FFFF).contains(v)
        }
    }
}
