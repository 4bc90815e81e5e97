/// Images held in memory under path-like names: for tests and crash simulations.
public final class MemoryStoreProvider: StoreProvider {
    /// The stores by normalized path.
    public private(set) var stores: [String: any BlockStore] = [:]

    /// An empty namespace.
    public init() {}

    /// Puts `store` at `path` (replacing what was there).
    public func add(_ store: any BlockStore, at path: String) { stores[StorePath.normalize(path)] = store }

    /// The store at `path`.
    public func open(_ path: String, writable: Bool) throws -> any BlockStore {
        guard let s = stores[StorePath.normalize(path)] else { throw VHDError.io(path: path, operation: "open", errno: 2) }
        return s
    }

    /// A new empty `MemoryStore` at `path`.
    public func create(_ path: String) throws -> any BlockStore {
        let p = StorePath.normalize(path)
        guard stores[p] == nil else { throw VHDError.io(path: path, operation: "create", errno: 17) }
        let s = MemoryStore()
        stores[p] = s
        return s
    }

    /// Whether a store exists at `path`.
    public func exists(_ path: String) -> Bool { stores[StorePath.normalize(path)] != nil }

    /// Drops the store.
    public func remove(_ path: String) throws {
        guard stores.removeValue(forKey: StorePath.normalize(path)) != nil else {
            throw VHDError.io(path: path, operation: "unlink", errno: 2)
        }
    }

    /// Moves a store to a new name.
    public func rename(_ from: String, to: String) throws {
        guard let s = stores.removeValue(forKey: StorePath.normalize(from)) else {
            throw VHDError.io(path: from, operation: "rename", errno: 2)
        }
        stores[StorePath.normalize(to)] = s
    }

    /// A fixed time (memory has no clock of its own).
    public func modificationTime(_ path: String) -> Int? { exists(path) ? 1_700_000_000 : nil }

    /// The normalized path.
    public func canonical(_ path: String) -> String { StorePath.normalize(path) }

    /// Names directly inside `directory`.
    public func list(_ directory: String) throws -> [String] {
        let d = StorePath.normalize(directory)
        return stores.keys.filter { StorePath.directory(of: $0) == d }.map { StorePath.basename($0) }.sorted()
    }
}
