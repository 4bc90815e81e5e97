/// The XenAPI calls a storage driver makes back into the toolstack while it handles a command
/// (responses.md §5): VDI records introduced, forgotten and updated, SR sizes. Without a
/// `session_ref` there is nobody to tell and `NoCallbacks` is used.
public protocol XenAPICallbacks {
    /// DB-INTRODUCE: a record for a new VDI (leaf, clone, snapshot or base copy).
    func introduce(_ vdi: VDIState, record: VDIRecordFields) throws
    /// DB-FORGET: the VDI is gone.
    func forget(uuid: String) throws
    /// VDI-UPDATE: sizes, read-only flag and sm_config (`vhd-parent`) now on disk.
    func update(_ vdi: VDIState) throws
    /// `VDI.set_managed`.
    func setManaged(uuid: String, _ managed: Bool) throws
    /// SR-STATS: virtual allocation moved by `delta`, physical size and utilisation now.
    func srStats(virtualAllocationDelta delta: Int64, physicalSize: UInt64, physicalUtilisation: UInt64) throws
    /// SR-STATS-SCAN and SCAN-SYNC after a scan: records matched by location; a VDI xapi does
    /// not know is introduced with its record in `kept` (the SR's own copy) when there is one.
    func scanSync(_ vdis: [VDIState], kept: [String: KeptVDIRecord], physicalSize: UInt64, physicalUtilisation: UInt64) throws
    /// xapi's records of the SR's VDIs, by uuid, as the SR keeps them (`snapshotOf` a uuid).
    func srVDIRecords() throws -> [String: KeptVDIRecord]
    /// `SR.add_to_other_config(dirty)` at attach on the master.
    func markDirty() throws
    /// `VDI.get_uuid(ref)` (nil when unknown or without a session).
    func vdiUUID(ref: String) throws -> String?
    /// The VDI's sm_config as xapi holds it (empty without a session).
    func smConfig(uuid: String) throws -> [String: String]
    /// Sets one sm_config key of the VDI (`add_to_sm_config`), or removes it when `value` is nil.
    func setSMConfig(uuid: String, key: String, value: String?) throws
    /// The sm_config of every VDI record of the SR, by VDI uuid (empty without a session).
    func srSMConfigs() throws -> [String: [String: String]]
    /// The SR's other_config (`nfs-timeout`, `gc=false`, ...; empty without a session).
    func srOtherConfig() throws -> [String: String]
    /// The record's `is_a_snapshot` (nil without a session or record).
    func isASnapshot(uuid: String) throws -> Bool?
    /// `VDI.set_cbt_enabled`.
    func setCBTEnabled(uuid: String, _ enabled: Bool) throws
    /// `message.create` about VDI `uuid` with priority 3 (a warning), as the Python SM raises `VDI_CBT_*`.
    func alert(name: String, vdi uuid: String, body: String) throws
    /// `host.call_plugin`: `function` of host plugin `plugin` on host `host` (another pool
    /// member), with `arguments`; what it returned.
    func callPlugin(host: String, plugin: String, function: String, arguments: [String: String]) throws -> String
    /// The value of secret `uuid` (`secret.get_by_uuid` + `secret.get_value`), for device-config
    /// keys ending in `_secret`.
    func secretValue(uuid: String) throws -> String
    /// `host.get_other_config` of host `host`.
    func hostOtherConfig(host: String) throws -> [String: String]
    /// Sets (or, with nil, removes) `key` in host `host`'s `other_config`.
    func setHostOtherConfig(host: String, key: String, value: String?) throws
    /// Sets (or, with nil, removes) `key` in the `other_config` of host `host`'s PBD of this SR
    /// (nothing when the host has no PBD of it).
    func setPBDOtherConfig(host: String, key: String, value: String?) throws
    /// Merges `changes` into the SR's `sm_config` (`SR.get_sm_config` + `SR.set_sm_config`).
    func mergeSRSMConfig(_ changes: [String: String]) throws
    /// The pool master's host reference (`pool.get_all` + `pool.get_master`).
    func poolMaster() throws -> String
}

/// The fields of a VDI record that are not facts of the VHD.
public struct VDIRecordFields: Sendable, Equatable {
    /// name_label.
    public var nameLabel = ""
    /// name_description.
    public var nameDescription = ""
    /// xapi VDI type (`user`, `system`, ...).
    public var type = "user"
    /// read_only.
    public var readOnly = false
    /// managed (false for base copies).
    public var managed = true
    /// metadata_of_pool ref.
    public var metadataOfPool = "OpaqueRef:NULL"
    /// is_a_snapshot.
    public var isASnapshot = false
    /// snapshot_time (XML-RPC dateTime text).
    public var snapshotTime = "19700101T00:00:00Z"
    /// snapshot_of ref.
    public var snapshotOf = "OpaqueRef:NULL"
    /// Extra sm_config keys copied from the request (`key_hash`, `base_mirror`).
    public var extraSMConfig: [String: String] = [:]
    /// cbt_enabled (the VDI has a CBT log).
    public var cbtEnabled = false

    /// Defaults as the Python SM uses them for records it makes itself.
    public init() {}
}

/// Callbacks when the call carries no session: nothing to tell.
public struct NoCallbacks: XenAPICallbacks {
    /// A no-op callback set.
    public init() {}
    /// Nothing.
    public func introduce(_ vdi: VDIState, record: VDIRecordFields) throws {}
    /// Nothing.
    public func forget(uuid: String) throws {}
    /// Nothing.
    public func update(_ vdi: VDIState) throws {}
    /// Nothing.
    public func setManaged(uuid: String, _ managed: Bool) throws {}
    /// Nothing.
    public func srStats(virtualAllocationDelta delta: Int64, physicalSize: UInt64, physicalUtilisation: UInt64) throws {}
    /// Nothing.
    public func scanSync(_ vdis: [VDIState], kept: [String: KeptVDIRecord], physicalSize: UInt64, physicalUtilisation: UInt64) throws {}
    /// None known.
    public func srVDIRecords() throws -> [String: KeptVDIRecord] { [:] }
    /// Nothing.
    public func markDirty() throws {}
    /// Unknown without a toolstack.
    public func vdiUUID(ref: String) throws -> String? { nil }
    /// Nothing known.
    public func smConfig(uuid: String) throws -> [String: String] { [:] }
    /// Nothing.
    public func setSMConfig(uuid: String, key: String, value: String?) throws {}
    /// Nothing known.
    public func srSMConfigs() throws -> [String: [String: String]] { [:] }
    /// Nothing.
    public func srOtherConfig() throws -> [String: String] { [:] }
    /// Unknown without a toolstack.
    public func isASnapshot(uuid: String) throws -> Bool? { nil }
    /// Nothing.
    public func setCBTEnabled(uuid: String, _ enabled: Bool) throws {}
    /// Nothing.
    public func alert(name: String, vdi uuid: String, body: String) throws {}
    /// No other host is known without a toolstack.
    public func callPlugin(host: String, plugin: String, function: String, arguments: [String: String]) throws -> String {
        throw SMAPIError(.APISession, opterr: "no session: cannot reach host \(host)")
    }
    /// No secret can be read without a session.
    public func secretValue(uuid: String) throws -> String {
        throw SMAPIError(.APISession, opterr: "no session: cannot read secret \(uuid)")
    }
    /// Empty.
    public func hostOtherConfig(host: String) throws -> [String: String] { [:] }
    /// Nothing.
    public func setHostOtherConfig(host: String, key: String, value: String?) throws {}
    /// Nothing.
    public func setPBDOtherConfig(host: String, key: String, value: String?) throws {}
    /// Nothing.
    public func mergeSRSMConfig(_ changes: [String: String]) throws {}
    /// No pool is known without a toolstack.
    public func poolMaster() throws -> String {
        throw SMAPIError(.APISession, opterr: "no session: cannot find the pool master")
    }
}
