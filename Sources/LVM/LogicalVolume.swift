/// An LV as the VG metadata describes it (`logical_volumes { name { ... } }`); linear segments only.
public struct LogicalVolume: Equatable, Sendable {
    /// The LV name (free-form within lvm2's rules: `MGT`, `VHD-<uuid>`).
    public var name: String
    /// The LV's identifier.
    public var id: LVMUUID
    /// Status flags (`READ`, `WRITE`, `VISIBLE`).
    public var status: [String]
    /// Compatible flags.
    public var flags: [String]
    /// Tags.
    public var tags: [String]
    /// Creation time, Unix seconds.
    public var creationTime: Int64?
    /// Host that created the LV.
    public var creationHost: String?
    /// The segments, in logical order.
    public var segments: [LVSegment]
    /// Keys this engine does not model (`allocation_policy`, `read_ahead`, ...), written back unchanged.
    public var extra: [ConfigEntry]

    /// An LV.
    public init(name: String, id: LVMUUID = .random(), status: [String] = ["READ", "WRITE", "VISIBLE"], flags: [String] = [],
                tags: [String] = [], creationTime: Int64? = nil, creationHost: String? = nil,
                segments: [LVSegment] = [], extra: [ConfigEntry] = []) {
        self.name = name
        self.id = id
        self.status = status
        self.flags = flags
        self.tags = tags
        self.creationTime = creationTime
        self.creationHost = creationHost
        self.segments = segments
        self.extra = extra
    }

    /// Size in extents.
    public var extentCount: UInt64 { segments.reduce(0) { $0 + $1.extentCount } }
    /// Whether the LV is read-only (status lacks `WRITE`).
    public var isReadOnly: Bool { !status.contains("WRITE") }
}
