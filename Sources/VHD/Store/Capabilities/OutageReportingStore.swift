/// A store reached over a network (an NFS file) that holds requests through a server outage,
/// reconnecting and sending them again, instead of failing them at once, and says so: the data
/// path reports it in its `stats`.
public protocol OutageReportingStore: BlockStore {
    /// Seconds the current outage has lasted and how many operations wait for the server (nil
    /// while it answers).
    var outage: (seconds: Double, waiting: Int)? { get }
    /// Operations that have had to wait for the server since the connection was made.
    var operationsHeld: UInt64 { get }
    /// Paths to the storage that work and paths there are, for a store reached over several
    /// (an iSCSI LUN through several portals); nil for a store with one way to it.
    var paths: (active: Int, total: Int)? { get }
}

extension OutageReportingStore {
    /// One way to the storage.
    public var paths: (active: Int, total: Int)? { nil }
}
