/// The 19 fields of `VDI.db_introduce` (after the session), in xapi's order, with the values the
/// Python SM passes when it has nothing more specific.
public struct XenAPIVDIIntroduction: Sendable, Hashable {
    /// 1. The VDI's uuid.
    public var uuid: String
    /// 2. The VDI's label (`""` for VDIs found by a scan).
    public var nameLabel: String
    /// 3. The VDI's description.
    public var nameDescription: String
    /// 4. The SR's reference.
    public var sr: String
    /// 5. The VDI type (`user`, `system`, `cbt_metadata`, …).
    public var type: String
    /// 6. Whether the VDI may be attached to several VMs at once.
    public var sharable: Bool
    /// 7. Whether the VDI is read-only (true for base copies and any VDI that is a parent).
    public var readOnly: Bool
    /// 8. `other_config` (always `{}` from the Python SM).
    public var otherConfig: [String: String]
    /// 9. The location, by which xapi finds the record after snapshot, clone and resize (the uuid).
    public var location: String
    /// 10. `xenstore_data` (always `{}` from the Python SM).
    public var xenstoreData: [String: String]
    /// 11. `sm_config` (`vhd-parent`, `type`, `vdi_type`, `key_hash`, …).
    public var smConfig: [String: String]
    /// 12. Whether xapi manages the VDI (false for hidden nodes and base copies).
    public var managed: Bool
    /// 13. The virtual size in bytes.
    public var virtualSize: Int64
    /// 14. The bytes used on the SR (file size, or LV size).
    public var physicalUtilisation: Int64
    /// 15. The pool whose metadata this VDI holds (`OpaqueRef:NULL`, or `""` as `vdi_create` passes on).
    public var metadataOfPool: String
    /// 16. Whether the VDI is a snapshot.
    public var isASnapshot: Bool
    /// 17. When the snapshot was taken, in wire form (`19700101T00:00:00Z` for none).
    public var snapshotTime: String
    /// 18. The VDI this one is a snapshot of (`OpaqueRef:NULL`, or `""`).
    public var snapshotOf: String
    /// 19. Whether changed block tracking is enabled.
    public var cbtEnabled: Bool

    /// An introduction with the Python SM's defaults for everything not given.
    public init(uuid: String, nameLabel: String = "", nameDescription: String = "", sr: String,
                type: String = "user", sharable: Bool = false, readOnly: Bool = false,
                otherConfig: [String: String] = [:], location: String? = nil,
                xenstoreData: [String: String] = [:], smConfig: [String: String] = [:],
                managed: Bool = true, virtualSize: Int64, physicalUtilisation: Int64,
                metadataOfPool: String = XenAPIClient.nullRef, isASnapshot: Bool = false,
                snapshotTime: String = XenAPIDateTime.epoch, snapshotOf: String = XenAPIClient.nullRef,
                cbtEnabled: Bool = false) {
        self.uuid = uuid
        self.nameLabel = nameLabel
        self.nameDescription = nameDescription
        self.sr = sr
        self.type = type
        self.sharable = sharable
        self.readOnly = readOnly
        self.otherConfig = otherConfig
        self.location = location ?? uuid
        self.xenstoreData = xenstoreData
        self.smConfig = smConfig
        self.managed = managed
        self.virtualSize = virtualSize
        self.physicalUtilisation = physicalUtilisation
        self.metadataOfPool = metadataOfPool
        self.isASnapshot = isASnapshot
        self.snapshotTime = snapshotTime
        self.snapshotOf = snapshotOf
        self.cbtEnabled = cbtEnabled
    }

    /// The 19 call parameters in xapi's order (the session goes before them).
    public var parameters: [XMLRPCValue] {
        [
            .string(uuid), .string(nameLabel), .string(nameDescription), .string(sr), .string(type),
            .boolean(sharable), .boolean(readOnly), XenAPIValue.map(otherConfig), .string(location),
            XenAPIValue.map(xenstoreData), XenAPIValue.map(smConfig), .boolean(managed),
            XenAPIValue.int64(virtualSize), XenAPIValue.int64(physicalUtilisation), .string(metadataOfPool),
            .boolean(isASnapshot), .dateTime(snapshotTime), .string(snapshotOf), .boolean(cbtEnabled),
        ]
    }
}
