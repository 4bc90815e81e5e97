/// Where toolstackd's objects persist: the whole set is loaded at start, and every committed
/// change is written through in one transaction before the call that made it returns.
public protocol ObjectStore: Sendable {
    /// Every stored object.
    func loadAll() throws -> [ObjectRecord]
    /// Writes `upserts` and removes `deletions` (references) atomically.
    func commit(upserts: [ObjectRecord], deletions: [String]) throws
    /// A short description for logs (`sqlite:/var/lib/…/state.db`).
    var description: String { get }
}
