/// Where an operation that rewrites metadata in place (a resize that grows the BAT) keeps its
/// plan until it is done: a file beside the image by default, or an entry in the SR's journal
/// store, so that the operation can be finished after a crash.
public protocol MetadataJournal: AnyObject {
    /// Stores `bytes` durably, replacing what was there.
    func write(_ bytes: [UInt8]) throws
    /// The stored bytes, nil when there is no journal.
    func read() throws -> [UInt8]?
    /// Removes the journal (durably).
    func remove() throws
}

/// A journal kept as a store of its own within a provider (by default `<image>.resize-journal`).
public final class StoreJournal: MetadataJournal {
    /// The journal's path.
    public let path: String
    /// The namespace it lives in.
    public let provider: any StoreProvider

    /// A journal at `path` within `provider`.
    public init(path: String, provider: any StoreProvider) {
        self.path = path
        self.provider = provider
    }

    /// Creates the journal store, writes and syncs it.
    public func write(_ bytes: [UInt8]) throws {
        if provider.exists(path) { try provider.remove(path) }
        let store = try provider.create(path, size: UInt64(bytes.count))
        try store.write(bytes, at: 0)
        try store.sync()
    }

    /// The journal's bytes (at most 64 MiB), nil when it does not exist.
    public func read() throws -> [UInt8]? {
        guard provider.exists(path) else { return nil }
        let store = try provider.open(path, writable: false)
        return try store.read(count: Int(min(store.size, 64 << 20)), at: 0)
    }

    /// Removes the journal store if it exists.
    public func remove() throws {
        if provider.exists(path) { try provider.remove(path) }
    }
}
