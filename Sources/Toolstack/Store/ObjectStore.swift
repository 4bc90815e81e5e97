/// Where toolstackd's objects persist: the whole set is loaded at start, and every committed
/// change is written through in one transaction before the call that made it returns. A store
/// several daemons share (PostgreSQL for a pool) also reports the changes the others commit and
/// serialises writes pool-wide; an embedded store keeps the defaults (nothing to report).
public protocol ObjectStore: Sendable {
    /// Every stored object.
    func loadAll() throws -> [ObjectRecord]
    /// Writes `upserts` and removes `deletions` (references) atomically.
    func commit(upserts: [ObjectRecord], deletions: [String]) throws
    /// A short description for logs (`sqlite:/var/lib/…/state.db`).
    var description: String { get }
    /// Starts a write: takes the store's pool-wide write lock and returns what others committed
    /// since the last look, so the transaction starts from the current state. Ended by `commit`
    /// or `abortWrite`.
    func beginWrite() throws -> [StoreChange]
    /// Ends a write that commits nothing.
    func abortWrite()
    /// What others committed since the last look.
    func pullChanges() throws -> [StoreChange]
    /// Asks to be called when another daemon may have committed.
    func onRemoteChange(_ notify: @escaping @Sendable () -> Void)
    /// Whether other daemons (other hosts of the pool) share the store.
    var isShared: Bool { get }
}

extension ObjectStore {
    /// Nothing to take: one daemon owns the store.
    public func beginWrite() throws -> [StoreChange] { [] }
    /// Nothing to release.
    public func abortWrite() {}
    /// Nobody else writes.
    public func pullChanges() throws -> [StoreChange] { [] }
    /// Nobody else writes.
    public func onRemoteChange(_ notify: @escaping @Sendable () -> Void) {}
    /// One daemon owns the store.
    public var isShared: Bool { false }
}
