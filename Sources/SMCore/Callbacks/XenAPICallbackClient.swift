import Foundation

/// The callbacks over XenAPI, made with the call's `session_ref` exactly as the Python SM makes
/// them (responses.md §5): DB-INTRODUCE, DB-FORGET, VDI-UPDATE, SR-STATS, SCAN-SYNC.
public final class XenAPICallbackClient: XenAPICallbacks {
    /// The connection.
    public let client: XenAPIClient
    /// The SR's ref from the request.
    public let srRef: String
    /// The SR's uuid from the request.
    public let srUUID: String

    /// sm_config keys owned by other actors, never touched by VDI-UPDATE.
    static let foreignKeys: Set<String> = ["paused", "vhd-blocks", "relinking", "activating", "key_hash"]

    /// Callbacks for a request: XenAPI when it carries a session, else none.
    public static func callbacks(for request: SMAPIRequest) throws -> any XenAPICallbacks {
        guard let session = request.sessionRef, !session.isEmpty else { return NoCallbacks() }
        do {
            let client = try XenAPIClient(sessionRef: session, subtaskOf: request.subtaskOf)
            return XenAPICallbackClient(client: client, srRef: request.srRef ?? XenAPIClient.nullRef, srUUID: request.srUUID ?? "")
        } catch {
            throw SMAPIError(.APISession, opterr: "\(error)")
        }
    }

    /// Callbacks over `client` for SR `srRef`.
    public init(client: XenAPIClient, srRef: String, srUUID: String) {
        self.client = client
        self.srRef = srRef
        self.srUUID = srUUID
    }

    /// DB-INTRODUCE.
    public func introduce(_ vdi: VDIState, record f: VDIRecordFields) throws {
        var sm = vdi.smConfig
        sm["vdi_type"] = nil          // the file family keeps only vhd-parent (+ key_hash, base_mirror)
        sm.merge(f.extraSMConfig) { $1 }
        let intro = XenAPIVDIIntroduction(
            uuid: vdi.uuid, nameLabel: f.nameLabel, nameDescription: f.nameDescription, sr: srRef, type: f.type,
            sharable: false, readOnly: f.readOnly || vdi.readOnly, managed: f.managed && !vdi.hidden,
            virtualSize: Int64(vdi.virtualSize), physicalUtilisation: Int64(vdi.physicalUtilisation))
        var i = intro
        i.location = vdi.location
        i.smConfig = sm
        i.metadataOfPool = f.metadataOfPool
        i.isASnapshot = f.isASnapshot
        i.snapshotTime = f.snapshotTime
        i.snapshotOf = f.snapshotOf
        i.cbtEnabled = f.cbtEnabled
        try wrap { _ = try client.vdiDBIntroduce(i) }
    }

    /// DB-FORGET.
    public func forget(uuid: String) throws {
        try wrap {
            let ref = try client.vdiGetByUUID(uuid)
            try client.vdiDBForget(ref)
        }
    }

    /// VDI-UPDATE: sizes, read-only and the driver's sm_config keys.
    public func update(_ vdi: VDIState) throws {
        try wrap {
            let ref = try client.vdiGetByUUID(vdi.uuid)
            try client.vdiSetVirtualSize(ref, Int64(vdi.virtualSize))
            try client.vdiSetPhysicalUtilisation(ref, Int64(vdi.physicalUtilisation))
            try client.vdiSetReadOnly(ref, vdi.readOnly)
            let current = try client.vdiGetSMConfig(ref)
            var wanted = vdi.smConfig
            wanted["vdi_type"] = nil
            for (k, v) in wanted where current[k] != v {
                if current[k] != nil { try client.vdiRemoveFromSMConfig(ref, key: k) }
                try client.vdiAddToSMConfig(ref, key: k, value: v)
            }
            for k in current.keys where wanted[k] == nil && !Self.foreignKeys.contains(k) && !k.hasPrefix("host_")
                && ["vhd-parent", "vdi_type"].contains(k) {
                try client.vdiRemoveFromSMConfig(ref, key: k)
            }
        }
    }

    /// `VDI.set_managed`.
    public func setManaged(uuid: String, _ managed: Bool) throws {
        try wrap { try client.vdiSetManaged(try client.vdiGetByUUID(uuid), managed) }
    }

    /// SR-STATS.
    public func srStats(virtualAllocationDelta delta: Int64, physicalSize: UInt64, physicalUtilisation: UInt64) throws {
        try wrap {
            let sr = try client.srGetByUUID(srUUID)
            let v = try client.srGetVirtualAllocation(sr)
            try client.srSetVirtualAllocation(sr, max(0, v + delta))
            try client.srSetPhysicalSize(sr, Int64(physicalSize))
            try client.srSetPhysicalUtilisation(sr, Int64(physicalUtilisation))
        }
    }

    /// SR-STATS-SCAN then SCAN-SYNC: introduce what is only on disk (hidden leaves excepted),
    /// with its kept record when the SR has one (snapshots after the VDIs they are of, so that
    /// `snapshot_of` finds its ref), forget what is only in the database, update what differs;
    /// matched by location.
    public func scanSync(_ vdis: [VDIState], kept: [String: KeptVDIRecord], physicalSize: UInt64, physicalUtilisation: UInt64) throws {
        try wrap {
            let sr = try client.srGetByUUID(srUUID)
            let visible = vdis.filter { !$0.hidden }
            try client.srSetVirtualAllocation(sr, Int64(visible.reduce(0) { $0 + $1.virtualSize }))
            try client.srSetPhysicalSize(sr, Int64(physicalSize))
            try client.srSetPhysicalUtilisation(sr, Int64(physicalUtilisation))
            var known: [String: XenAPIVDIRecord] = [:]
            for r in try client.vdiGetAllRecordsWhere("field \"SR\" = \"\(srRef)\"").values { known[r.location] = r }
            let parents = Set(vdis.compactMap(\.parent))
            var updates: [VDIState] = []
            // Snapshots last: the VDI a kept record says they are of is introduced first.
            let ordered = vdis.sorted { a, b in
                let (sa, sb) = (kept[a.uuid]?.isASnapshot ?? false, kept[b.uuid]?.isASnapshot ?? false)
                return sa != sb ? !sa : a.uuid < b.uuid
            }
            for v in ordered {
                if let r = known[v.location] {
                    let sm = v.smConfig.filter { $0.key != "vdi_type" }
                    if r.virtualSize != Int64(v.virtualSize) || r.physicalUtilisation != Int64(v.physicalUtilisation)
                        || r.readOnly != v.readOnly || r.smConfig["vhd-parent"] != sm["vhd-parent"] {
                        updates.append(v)
                    }
                    continue
                }
                // Hidden leaves are garbage awaiting the collector; never introduced.
                if v.hidden && !parents.contains(v.uuid) { continue }
                var f = kept[v.uuid]?.fields ?? VDIRecordFields()
                f.readOnly = f.readOnly || v.readOnly
                f.managed = f.managed && !v.hidden
                if v.hidden && kept[v.uuid] == nil { f.nameLabel = "base copy" }
                if let of = kept[v.uuid]?.snapshotOf, !of.isEmpty, let ref = try? client.vdiGetByUUID(of) { f.snapshotOf = ref }
                if v.cbtMetadata { f.type = "cbt_metadata" }
                f.cbtEnabled = v.cbtEnabled || v.cbtMetadata
                try introduceRaw(v, f)
            }
            let onDisk = Set(vdis.map(\.location))
            for (location, r) in known where !onDisk.contains(location) {
                try client.vdiDBForget(try client.vdiGetByUUID(r.uuid))
            }
            for v in updates { try update(v) }
        }
    }

    /// The SR's VDI records (`VDI.get_all_records_where`), `snapshot_of` turned into a uuid.
    public func srVDIRecords() throws -> [String: KeptVDIRecord] {
        var out: [String: KeptVDIRecord] = [:]
        try wrap {
            let records = try client.vdiGetAllRecordsWhere("field \"SR\" = \"\(srRef)\"")
            for r in records.values {
                var f = VDIRecordFields()
                f.nameLabel = r.nameLabel; f.nameDescription = r.nameDescription; f.type = r.type
                f.readOnly = r.readOnly; f.managed = r.managed; f.isASnapshot = r.isASnapshot
                f.snapshotTime = r.snapshotTime; f.metadataOfPool = r.metadataOfPool
                out[r.uuid] = KeptVDIRecord(uuid: r.uuid, fields: f, snapshotOf: records[r.snapshotOf]?.uuid ?? "")
            }
        }
        return out
    }

    private func introduceRaw(_ v: VDIState, _ f: VDIRecordFields) throws {
        try introduce(v, record: f)
    }

    /// `SR.add_to_other_config(dirty)`, ignoring "already set".
    public func markDirty() throws {
        do throws(XenAPIError) {
            let sr = try client.srGetByUUID(srUUID)
            try client.srAddToOtherConfig(sr, key: "dirty", value: "")
        } catch {
            if case .failure(let d) = error, d.first == "MAP_DUPLICATE_KEY" { return }
            throw SMAPIError(.APIProtocolError, opterr: "\(error)")
        }
    }

    /// `VDI.get_uuid`.
    public func vdiUUID(ref: String) throws -> String? {
        var out: String? = nil
        try wrap { out = try client.vdiGetUUID(ref) }
        return out
    }

    /// `VDI.get_sm_config`.
    public func smConfig(uuid: String) throws -> [String: String] {
        var out: [String: String] = [:]
        try wrap { out = try client.vdiGetSMConfig(try client.vdiGetByUUID(uuid)) }
        return out
    }

    /// `VDI.remove_from_sm_config` then, with a value, `VDI.add_to_sm_config`.
    public func setSMConfig(uuid: String, key: String, value: String?) throws {
        try wrap {
            let ref = try client.vdiGetByUUID(uuid)
            if try client.vdiGetSMConfig(ref)[key] != nil { try client.vdiRemoveFromSMConfig(ref, key: key) }
            if let value { try client.vdiAddToSMConfig(ref, key: key, value: value) }
        }
    }

    /// sm_config of every VDI record of the SR.
    public func srSMConfigs() throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        try wrap {
            for r in try client.vdiGetAllRecordsWhere("field \"SR\" = \"\(srRef)\"").values { out[r.uuid] = r.smConfig }
        }
        return out
    }

    /// `SR.get_other_config`.
    public func srOtherConfig() throws -> [String: String] {
        var out: [String: String] = [:]
        try wrap { out = try client.srGetOtherConfig(srRef) }
        return out
    }

    /// `VDI.get_record(...).is_a_snapshot`.
    public func isASnapshot(uuid: String) throws -> Bool? {
        var out: Bool? = nil
        try wrap { out = try client.vdiGetRecord(try client.vdiGetByUUID(uuid)).introduction.isASnapshot }
        return out
    }

    /// `VDI.set_cbt_enabled`.
    public func setCBTEnabled(uuid: String, _ enabled: Bool) throws {
        try wrap { try client.vdiSetCBTEnabled(try client.vdiGetByUUID(uuid), enabled) }
    }

    /// `message.create(name, 3, "VDI", uuid, body)`.
    public func alert(name: String, vdi uuid: String, body: String) throws {
        try wrap { try client.messageCreate(name: name, priority: 3, objectClass: "VDI", objectUUID: uuid, body: body) }
    }

    /// `host.call_plugin`.
    public func callPlugin(host: String, plugin: String, function: String, arguments: [String: String]) throws -> String {
        var out = ""
        try wrap { out = try client.hostCallPlugin(host, plugin: plugin, function: function, arguments: arguments) }
        return out
    }

    /// `secret.get_by_uuid` + `secret.get_value`.
    public func secretValue(uuid: String) throws -> String {
        var out = ""
        try wrap { out = try client.secretGetValue(try client.secretGetByUUID(uuid)) }
        return out
    }

    /// `host.get_other_config`.
    public func hostOtherConfig(host: String) throws -> [String: String] {
        var out: [String: String] = [:]
        try wrap { out = try client.hostGetOtherConfig(host) }
        return out
    }

    /// `host.remove_from_other_config`, then `host.add_to_other_config` with a value.
    public func setHostOtherConfig(host: String, key: String, value: String?) throws {
        try wrap {
            try client.hostRemoveFromOtherConfig(host, key: key)
            if let value { try client.hostAddToOtherConfig(host, key: key, value: value) }
        }
    }

    /// The SR's PBD on `host` (`SR.get_PBDs`, `PBD.get_host`), then remove and add as above.
    public func setPBDOtherConfig(host: String, key: String, value: String?) throws {
        try wrap {
            for pbd in try client.srGetPBDs(srRef) where try client.pbdGetHost(pbd) == host {
                try client.pbdRemoveFromOtherConfig(pbd, key: key)
                if let value { try client.pbdAddToOtherConfig(pbd, key: key, value: value) }
            }
        }
    }

    /// `SR.get_sm_config`, then `SR.set_sm_config` with `changes` merged in (only when they change it).
    public func mergeSRSMConfig(_ changes: [String: String]) throws {
        try wrap {
            let old = try client.srGetSMConfig(srRef)
            let new = old.merging(changes) { $1 }
            if new != old { try client.srSetSMConfig(srRef, new) }
        }
    }

    /// `pool.get_all` + `pool.get_master`.
    public func poolMaster() throws -> String {
        var out = ""
        try wrap {
            guard let pool = try client.poolGetAll().first else { throw XenAPIError.protocolError("pool.get_all: no pool") }
            out = try client.poolGetMaster(pool)
        }
        return out
    }

    /// XenAPI failures become the command's fault upstream; transport problems are 154.
    private func wrap(_ body: () throws -> Void) throws {
        do { try body() } catch let e as XenAPIError {
            switch e {
            case .failure: throw e
            default: throw SMAPIError(.APIProtocolError, opterr: "\(e)")
            }
        }
    }
}
