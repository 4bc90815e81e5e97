import Foundation
import ISCSI
import LVM
import SMCore
import VHD

/// The LVM-over-iSCSI SR (LVHD): one iSCSI LUN, reached in user space through libiscsi (no
/// kernel session, no device-mapper), is the PV of VG `VG_XenStorage-<sr>`, which our own LVM2
/// engine reads and changes; VDIs are VHDs inside LVs (`LVHDContainer`), laid out as the Python
/// SM's LVHDoISCSISR lays them out. Every process that needs the LUN (smdriver, the data path,
/// the collector) opens its own sessions. The SR is shared: only the SR master changes the VG
/// (fault 58 elsewhere); other hosts read it, and learn that their view is stale from the
/// metadata area headers, which they check before every read of the VG (`LVHDVolumeGroup`).
public final class LVMoISCSIDriver: SRDriver, @unchecked Sendable {
    /// A driver instance.
    public init() {}

    /// `lvmoiscsi`: `smdriver --driver lvmoiscsi`, installed as `LVMoISCSISR`.
    public let type = "lvmoiscsi"

    /// What `sr_get_driver_info` answers: only capabilities that really work.
    public let info = SMAPIDriverInfo(
        name: "LVHD over iSCSI",
        description: "SR plugin which represents disks as Logical Volumes within a Volume Group created on an iSCSI LUN",
        vendor: "SwiftSM", copyright: "(C) 2026 SwiftSM authors", driverVersion: "1.0", requiredAPIVersion: "1.0",
        capabilities: ["SR_PROBE", "SR_UPDATE", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH", "VDI_GENERATE_CONFIG",
                       "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE", "ATOMIC_PAUSE", "VDI_RESET_ON_BOOT/2", "VDI_UPDATE",
                       "VDI_CONFIG_CBT", "VDI_ACTIVATE", "VDI_DEACTIVATE", "VDI_COMPOSE", "VDI_INTRODUCE"],
        configuration: [.init(key: "SCSIid", description: "The scsi_id of the destination LUN"),
                        .init(key: "target", description: "IP address or hostname of the iSCSI target (comma-separated for several paths)"),
                        .init(key: "targetIQN", description: "The IQN of the target LUN group to be attached"),
                        .init(key: "chapuser", description: "The username to be used during CHAP authentication"),
                        .init(key: "chappassword", description: "The password to be used during CHAP authentication"),
                        .init(key: "incoming_chapuser",
                              description: "The incoming username to be used during bi-directional CHAP authentication (optional)"),
                        .init(key: "incoming_chappassword",
                              description: "The incoming password to be used during bi-directional CHAP authentication (optional)"),
                        .init(key: "port", description: "The network port number on which to query the target"),
                        .init(key: "allocation", description: "Valid values are thick or thin (optional, defaults to thick)")])

    /// `storage-type` of attach-from-config results.
    public let storageType = "lvm"

    /// `target` must be present (95).
    public var requiredKeys: [(key: String, missing: SMErrorCode)] { [("target", .ConfigTargetMissing)] }

    /// Commands that change the VG: the SR master's alone (58 `LVMMaster` elsewhere).
    static let masterCommands: Set<SMAPICommand> = [
        .srCreate, .srDelete, .srScan, .vdiCreate, .vdiDelete, .vdiSnapshot, .vdiClone, .vdiResize, .vdiResizeOnline,
        .vdiCompose, .vdiIntroduce, .vdiEnableCBT, .vdiDisableCBT, .vdiDataDestroy,
    ]

    private let lock = NSLock()
    private var devices: [ISCSITarget: ISCSIDevice] = [:]
    /// The toolstack's answers this process already has.
    let answers = ToolstackAnswers()

    /// Refuses VG changes on a host that is not the SR master (58).
    public func authorize(_ c: DriverContext) throws {
        if Self.masterCommands.contains(c.request.command) && !c.request.isMaster {
            throw SMAPIError(.LVMMaster, opterr: "\(c.request.command.rawValue) must run on the SR master")
        }
    }

    /// The sessions to `target` this process already has, or new ones.
    func device(_ target: ISCSITarget, for command: SMAPICommand) throws -> ISCSIDevice {
        if let d = lock.withLock({ devices[target] }) { return d }
        let d: ISCSIDevice
        do { d = try ISCSIDevice(target: target) } catch let e as ISCSIError { throw e.fault(for: command) }
        lock.withLock { devices[target] = d }
        return d
    }

    /// The LUN of the call's `device-config` as a store.
    func lun(_ c: DriverContext, _ config: LVMoISCSIConfiguration) throws -> ISCSIStore {
        ISCSIStore(device: try device(config.target, for: c.request.command))
    }

    /// Without `targetIQN`: the targets the portals list, on stderr (`<iscsi-target-iqns>`),
    /// and fault 96. Without `SCSIid`: the target's disks, on stderr (`<iscsi-target>`), and
    /// fault 107. Else the `<SRlist>` of the LVHD SR on the LUN (empty when it holds none).
    public func probe(_ c: DriverContext) throws -> String {
        let config = try LVMoISCSIConfiguration(c, answers: answers, requireIQN: false, requireSCSIid: false)
        do {
            guard config.target.iqn != nil else {
                let targets = try ISCSIDiscovery.sendTargets(config.target)
                FileHandle.standardError.write(Data(ISCSIProbeDocuments.targets(targets).utf8))
                throw SMAPIError(.ConfigTargetIQNMissing)
            }
            guard config.target.scsiID != nil else {
                let disks = try ISCSIDiscovery.disks(config.target)
                FileHandle.standardError.write(Data(ISCSIProbeDocuments.luns(disks).utf8))
                throw SMAPIError(.ConfigSCSIid)
            }
        } catch let e as ISCSIError {
            throw e.fault(for: .srProbe)
        }
        let store = try lun(c, config)
        var entries: [ProbeDocument.Entry] = []
        if let vg = try? PVDevice(store: store).read(), let sr = LVHDLayout.srUUID(ofVG: vg.name) {
            entries.append(.init("SR", [("UUID", sr), ("Devlist", ISCSIProbeDocuments.devicePath(store.device.info.scsiID)),
                                        ("size", "\(vg.totalExtents * vg.extentBytes)")]))
        }
        return ProbeDocument.render(root: "SRlist", entries: entries)
    }

    /// Makes the PV and VG `VG_XenStorage-<sr>` with its `MGT` LV on the LUN. A LUN that
    /// already holds this SR is 40 `SRExists`; one holding another PV is 16 `SRInUse` unless
    /// `device-config:force=true`; several SCSI ids are 99 `LVMOneLUN` (a shared SR lives on
    /// one LUN).
    public func create(_ c: DriverContext, size: UInt64) throws {
        let sr = try c.srUUID()
        if (c.config("SCSIid") ?? "").contains(",") { throw SMAPIError(.LVMOneLUN, opterr: c.config("SCSIid")) }
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        let store = try lun(c, config)
        let force = c.config("force") == "true"
        if let pv = try? PVDevice(store: store) {
            let vg = try? pv.read()
            if vg?.name == LVHDLayout.vgName(sr: sr) { throw SMAPIError(.SRExists, opterr: "the LUN already holds VG \(vg!.name)") }
            if !force {
                throw SMAPIError(.SRInUse, opterr: "the LUN holds an LVM PV (VG \(vg?.name ?? "none")); set device-config:force=true to overwrite it")
            }
        }
        do {
            let container = try LVHDContainer.create(on: store, sr: sr, overwrite: true)
            try container.writeMetadata(LVHDMetadata(sr: .init(uuid: sr, allocation: config.allocation.rawValue)))
        } catch let e as LVMError {
            throw SMAPIError(.LVMGroupCreate, opterr: e.description)
        }
        try? c.callbacks.mergeSRSMConfig(["devserial": "scsi-" + store.device.info.scsiID, "use_vhd": "true"])
    }

    /// Wipes the PV's label and metadata area header (`vgremove` + `pvremove`): lvm2 then sees
    /// no PV on the LUN. The service checked that the SR holds no VDI.
    public func delete(_ c: DriverContext) throws {
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        let store = try lun(c, config)
        _ = try container(c, store: store, config: config)
        let wipe = [UInt8](repeating: 0, count: Int(PVDevice.defaultMetadataOffset) + 512)
        try store.write(wipe, at: 0)
        try store.sync()
        try? c.callbacks.setPBDOtherConfig(host: c.request.hostRef ?? "", key: "mpath-" + store.device.info.scsiID, value: nil)
    }

    /// Logs in on every path, finds the SR's VG on the LUN (47 when it is not there), and
    /// records what xapi shows: on the master the SR's sm_config (`allocation`, `use_vhd`,
    /// `devserial`, `multipathable`); on every host the paths (host other-config
    /// `mpath-<SCSIid>` = `[active, total]`, PBD other-config `multipathed` and
    /// `iscsi_sessions`).
    public func attach(_ c: DriverContext) throws {
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        let store = try lun(c, config)
        let container = try container(c, store: store, config: config)
        let id = store.device.info.scsiID
        if config.isMaster {
            // The SR metadata volume the Python SM reads (its allocation): written when missing,
            // as LVHDSR's first attach of an SR without one does.
            if try container.readMetadata() == nil {
                try container.writeMetadata(LVHDMetadata(sr: .init(uuid: try c.srUUID(), allocation: config.allocation.rawValue)))
            }
            try? c.callbacks.mergeSRSMConfig(["allocation": config.allocation.rawValue, "use_vhd": "true",
                                              "devserial": "scsi-" + id, "multipathable": "true"])
        }
        reportPaths(c, store.device)
    }

    /// Writes the path count of `device` where XenServer shows it (errors only logged: the
    /// counts are informative).
    func reportPaths(_ c: DriverContext, _ device: ISCSIDevice) {
        guard let host = c.request.hostRef, !host.isEmpty else { return }
        let (active, total) = device.pathCount
        let key = "mpath-" + device.info.scsiID
        let multipathed = total > 1
        do {
            try c.callbacks.setHostOtherConfig(host: host, key: key, value: multipathed ? "[\(active), \(total)]" : nil)
            try c.callbacks.setPBDOtherConfig(host: host, key: "multipathed", value: multipathed ? "true" : nil)
            try c.callbacks.setPBDOtherConfig(host: host, key: key, value: multipathed ? "[\(active), \(total)]" : nil)
            try c.callbacks.setPBDOtherConfig(host: host, key: "iscsi_sessions", value: "\(active)")
        } catch {
            c.log.warning("recording the LUN's paths failed: \(error)")
        }
    }

    /// Forgets the path counts and the secrets kept for this SR, and closes this process's sessions.
    public func detach(_ c: DriverContext) throws {
        let sr = try c.srUUID()
        if let host = c.request.hostRef, !host.isEmpty, let id = c.config("SCSIid") {
            for key in ["mpath-" + id, "multipathed", "iscsi_sessions"] { try? c.callbacks.setPBDOtherConfig(host: host, key: key, value: nil) }
            try? c.callbacks.setHostOtherConfig(host: host, key: "mpath-" + id, value: nil)
        }
        SecretFile.removeAll(run: c.run, sr: sr)
        lock.withLock {
            for d in devices.values { d.close() }
            devices.removeAll()
        }
    }

    // MARK: - Thin provisioning

    /// Whether VDI `vdi` is active on some host: a data path here, or a `host_<ref>` key on its
    /// record (blktap's activation tags); a VDI without a record yet is not.
    static func isActive(_ c: DriverContext, _ vdi: String) -> Bool {
        if let sr = try? c.srUUID(), DatapathManager(run: c.run, log: c.log).isActive(sr: sr, vdi: vdi) { return true }
        let sm = (try? c.callbacks.smConfig(uuid: vdi)) ?? [:]
        return sm.keys.contains { $0.hasPrefix("host_") }
    }

    /// Inflates a writable leaf before its data path starts (fault 180 when the VG lacks the
    /// extents). Only the master resizes LVs: another host of a thin SR asks it to, through its
    /// `lvhd-thin` plugin (180 when it cannot), as the Python SM's pool members do.
    public func activate(_ c: DriverContext, vdi: String, writable: Bool) throws {
        if writable {
            let config = try LVMoISCSIConfiguration(c, answers: answers)
            if config.allocation == .thin && !config.isMaster {
                do { try askMaster(c, "attach", vdi: vdi) } catch {
                    throw SMAPIError(.LVMProvisionAttach, opterr: "the SR master did not inflate \(vdi): \(error)")
                }
            }
            let container = try container(c, store: try lun(c, config), config: config)
            container.isInactiveLeaf = nil
            try VHDRepository(container: container).prepareLeaf(vdi)
        }
        try DatapathManager(run: c.run, log: c.log).activate(driver: type, sr: try c.srUUID(), vdi: vdi, writable: writable)
    }

    /// One activation less; on a thin SR, the last one on the last host deflates the leaf and
    /// brings its record's physical utilisation up to date.
    public func deactivate(_ c: DriverContext, vdi: String) throws {
        let sr = try c.srUUID()
        let datapaths = DatapathManager(run: c.run, log: c.log)
        try datapaths.deactivate(sr: sr, vdi: vdi)
        guard !datapaths.isActive(sr: sr, vdi: vdi) else { return }
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        guard config.allocation == .thin else { return }
        let host = "host_" + (c.request.hostRef ?? "")
        let sm = (try? c.callbacks.smConfig(uuid: vdi)) ?? [:]
        guard !sm.keys.contains(where: { $0.hasPrefix("host_") && $0 != host }) else { return }
        guard config.isMaster else {
            // The leaf stays inflated if the master cannot deflate it now: space, not data, is at stake.
            do { try askMaster(c, "detach", vdi: vdi) } catch { c.log.warning("the SR master did not deflate \(vdi): \(error)") }
            return
        }
        let container = try container(c, store: try lun(c, config), config: config)
        let lv = container.naming.volume(vdi)
        guard container.exists(lv), try !container.isReadOnly(lv) else { return }
        try container.deflateLeaf(lv)
        try? c.callbacks.update(try VHDRepository(container: container).state(vdi))
    }

    /// Runs `function` of the master's `lvhd-thin` plugin for `vdi` (`pool.get_master`, then
    /// `host.call_plugin`).
    func askMaster(_ c: DriverContext, _ function: String, vdi: String) throws {
        let master = try c.callbacks.poolMaster()
        let answer = try c.callbacks.callPlugin(host: master, plugin: LVHDThinPlugin.name, function: function,
                                                arguments: ["srUuid": try c.srUUID(), "vdiUuid": vdi])
        guard answer == "True" else { throw SMAPIError(.LVMProvisionAttach, opterr: "\(LVHDThinPlugin.name) \(function) answered \(answer)") }
    }

    /// LVHDoISCSISR's `generate_config`: device_config as received plus this host's initiator
    /// name (`localIQN`) and the multipath settings (`multipathing`, `multipathhandle`), so that
    /// `vdi_attach_from_config` logs in as this host without xapi.
    public func generateConfig(_ c: DriverContext, vdi: String) throws -> String {
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        var context = c
        var dc = c.request.deviceConfig
        let multipath = config.target.portals.count > 1
        for (key, value) in [("localIQN", config.target.initiatorIQN), ("multipathing", multipath ? "true" : "false"),
                             ("multipathhandle", multipath ? "dmp" : "null")] where dc[key] == nil {
            dc[key] = value
        }
        context.request.deviceConfig = dc
        return try attachFromConfigDocument(context, vdi: vdi)
    }

    /// The SR's VG on the LUN.
    public func container(_ c: DriverContext) throws -> any VolumeContainer {
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        return try container(c, store: try lun(c, config), config: config)
    }

    /// The LVHD container on `store`, checked to be this SR's (47 `SRUnavailable` otherwise);
    /// read-only metadata on hosts that are not the master.
    func container(_ c: DriverContext, store: ISCSIStore, config: LVMoISCSIConfiguration) throws -> LVHDContainer {
        let sr = try c.srUUID()
        let container: LVHDContainer
        do { container = try LVHDContainer(store: store, commitsAllowed: config.isMaster) } catch let e as LVMError {
            throw SMAPIError(.SRUnavailable, opterr: "the LUN holds no readable LVHD volume group: \(e.description)")
        } catch let e as LVHDError {
            throw SMAPIError(.SRUnavailable, opterr: e.description)
        }
        guard container.vgName == LVHDLayout.vgName(sr: sr) else {
            throw SMAPIError(.SRUnavailable, opterr: "the LUN holds VG \(container.vgName), not \(LVHDLayout.vgName(sr: sr))")
        }
        // The master settles what an interrupted inflate of the Python SM left (it owns those journals).
        if config.isMaster && !c.servesDataPath, try container.undoPythonInflates().count > 0 {
            c.log.notice("undid the Python SM's interrupted inflates")
        }
        // And its interrupted snapshots and clones (finished when their leaves are whole, else undone).
        if config.isMaster && !c.servesDataPath {
            let settled = try container.settlePythonClones()
            if !settled.isEmpty { c.log.notice("settled the Python SM's interrupted snapshots of \(settled)") }
        }
        // Thin: VDI commands keep inactive leaves deflated. The collector and the data path
        // (SR-scoped contexts) write data, so their leaves and parents are always inflated.
        if config.allocation == .thin && !c.request.command.isSRCommand && !c.servesDataPath {
            let context = UncheckedContext(c)
            container.isInactiveLeaf = { lv in
                guard let vdi = VolumeNaming.lvhd.vdi(ofVolume: lv) else { return false }
                return !Self.isActive(context.value, vdi)
            }
        }
        return container
    }
}

/// A driver context captured by the thin-provisioning check (used only within the call that made it).
private struct UncheckedContext: @unchecked Sendable {
    let value: DriverContext
    init(_ value: DriverContext) { self.value = value }
}
