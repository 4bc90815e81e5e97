/// A PV as the VG metadata describes it (`physical_volumes { pvN { ... } }`).
public struct PhysicalVolume: Equatable, Sendable {
    /// The local key segments refer to (`pv0`, `pv1`, ...).
    public var key: String
    /// The PV's identifier (matches its PV header).
    public var id: LVMUUID
    /// Last known device path (a hint only).
    public var device: String
    /// Status flags (`ALLOCATABLE`, ...).
    public var status: [String]
    /// Compatible flags.
    public var flags: [String]
    /// Device size in sectors.
    public var devSize: UInt64
    /// First physical extent, in sectors from the start of the device.
    public var peStart: UInt64
    /// Number of physical extents.
    public var peCount: UInt64
    /// Tags.
    public var tags: [String]
    /// Keys this engine does not model (`ba_start`, ...), written back unchanged.
    public var extra: [ConfigEntry]

    /// A PV with the given layout.
    public init(key: String = "pv0", id: LVMUUID, device: String, status: [String] = ["ALLOCATABLE"], flags: [String] = [],
                devSize: UInt64, peStart: UInt64, peCount: UInt64, tags: [String] = [], extra: [ConfigEntry] = []) {
        self.key = key
        self.id = id
        self.device = device
        self.status = status
        self.flags = flags
        self.devSize = devSize
        self.peStart = peStart
        self.peCount = peCount
        self.tags = tags
        self.extra = extra
    }

    /// Whether new extents may be allocated here.
    public var isAllocatable: Bool { status.contains("ALLOCATABLE") }
}
