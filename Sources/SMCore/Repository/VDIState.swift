/// What the repository knows of one VDI from its VHD: the facts `sr_scan` reports and the
/// VDI records carry.
public struct VDIState: Sendable, Equatable {
    /// VDI uuid (the volume name without its suffix).
    public var uuid: String
    /// The driver-owned location xapi keeps (the uuid on VHD SRs).
    public var location: String
    /// Virtual size in bytes.
    public var virtualSize: UInt64
    /// Bytes the volume occupies.
    public var physicalUtilisation: UInt64
    /// The parent VDI's uuid, nil for a root.
    public var parent: String?
    /// Hidden flag (base copies and garbage).
    public var hidden: Bool
    /// Read-only: base copies, and any VDI with children.
    public var readOnly: Bool
    /// A snapshot whose data was destroyed (`vdi_data_destroy`): only its CBT log is left, and
    /// xapi keeps it as a `cbt_metadata` VDI.
    public var cbtMetadata = false
    /// The VDI has a CBT log (its record's `cbt_enabled`); set by scans, which look at the logs.
    public var cbtEnabled = false

    /// The sm_config keys the Python SM keeps for it (`vhd-parent`, `vdi_type`).
    public var smConfig: [String: String] {
        if cbtMetadata { return ["vdi_type": "cbtlog"] }
        var c = ["vdi_type": "vhd"]
        if let p = parent { c["vhd-parent"] = p }
        return c
    }
}
