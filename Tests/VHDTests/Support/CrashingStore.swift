@testable import VHD

/// The error a store throws, in `.throwing` mode, once the simulated crash has happened.
struct SimulatedCrash: Error, Equatable, CustomStringConvertible {
    var description: String { "simulated crash" }
}

/// A budget of mutating calls (store writes and resizes, and creating, removing or renaming
/// stores) shared by every store of a `CrashingProvider`: after `limit` calls the process is
/// taken to have died, and nothing further reaches the stores.
final class CrashBudget {
    /// How calls after the crash behave.
    enum Mode: String, CaseIterable, Sendable, CustomStringConvertible {
        /// They return normally and do nothing (the engine runs on, unaware).
        case silent
        /// They throw `SimulatedCrash` (the engine unwinds).
        case throwing
        /// The call that crosses the limit writes only its first half (whole sectors, as a
        /// disk may have done when power went), later calls do nothing.
        case torn
        var description: String { rawValue }
    }

    /// What happens to one call.
    enum Verdict { case apply, drop, tear }

    let mode: Mode
    /// Calls allowed before the crash; nil for none.
    let limit: Int?
    /// Calls made so far (including dropped ones).
    private(set) var calls = 0

    init(mode: Mode = .silent, limit: Int? = nil) {
        self.mode = mode
        self.limit = limit
    }

    /// Whether the crash point has been passed (some call was not applied in full).
    var crashed: Bool { limit.map { calls > $0 } ?? false }

    /// Counts one mutating call and says what becomes of it.
    func admit() throws -> Verdict {
        calls += 1
        guard let limit, calls > limit else { return .apply }
        switch mode {
        case .silent: return .drop
        case .throwing: throw SimulatedCrash()
        case .torn: return calls == limit + 1 ? .tear : .drop
        }
    }
}

/// A `BlockStore` over a `MemoryStore` that stops persisting anything once its budget runs out.
/// Reads always see what actually reached the memory store.
final class CrashingStore: BlockStore {
    let base: MemoryStore
    let budget: CrashBudget

    init(base: MemoryStore, budget: CrashBudget) {
        self.base = base
        self.budget = budget
    }

    var size: UInt64 { base.size }
    var isBlockDevice: Bool { base.isBlockDevice }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try base.read(into: buffer, at: offset)
    }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        switch try budget.admit() {
        case .apply: try base.write(buffer, at: offset)
        case .drop: return
        case .tear:
            let keep = buffer.count / 2 / 512 * 512
            if keep > 0 { try base.write(UnsafeRawBufferPointer(rebasing: buffer[0..<keep]), at: offset) }
        }
    }

    func resize(to size: UInt64) throws {
        if try budget.admit() == .apply { try base.resize(to: size) }
    }

    func sync() throws {}
}

/// A namespace of `MemoryStore`s handed out as `CrashingStore`s sharing one budget. Creating,
/// removing and renaming stores count against the budget too (a crash may come before them).
final class CrashingProvider: StoreProvider {
    let budget: CrashBudget
    /// The durable state: what survives the crash.
    private(set) var stores: [String: MemoryStore] = [:]

    /// A namespace holding copies of `contents`.
    init(budget: CrashBudget, contents: [String: [UInt8]]) {
        self.budget = budget
        for (p, b) in contents { stores[StorePath.normalize(p)] = MemoryStore(bytes: b) }
    }

    func open(_ path: String, writable: Bool) throws -> any BlockStore {
        guard let s = stores[StorePath.normalize(path)] else { throw VHDError.io(path: path, operation: "open", errno: 2) }
        return CrashingStore(base: s, budget: budget)
    }

    func create(_ path: String) throws -> any BlockStore {
        let p = StorePath.normalize(path)
        guard stores[p] == nil else { throw VHDError.io(path: path, operation: "create", errno: 17) }
        let s = MemoryStore()
        // After the crash the new store exists only in the dead process.
        if try budget.admit() == .apply { stores[p] = s }
        return CrashingStore(base: s, budget: budget)
    }

    func exists(_ path: String) -> Bool { stores[StorePath.normalize(path)] != nil }

    func remove(_ path: String) throws {
        let p = StorePath.normalize(path)
        guard stores[p] != nil else { throw VHDError.io(path: path, operation: "unlink", errno: 2) }
        if try budget.admit() == .apply { stores[p] = nil }
    }

    func rename(_ from: String, to: String) throws {
        let f = StorePath.normalize(from)
        guard let s = stores[f] else { throw VHDError.io(path: from, operation: "rename", errno: 2) }
        if try budget.admit() == .apply {
            stores[f] = nil
            stores[StorePath.normalize(to)] = s
        }
    }

    func modificationTime(_ path: String) -> Int? { exists(path) ? 1_700_000_000 : nil }

    func canonical(_ path: String) -> String { StorePath.normalize(path) }

    func list(_ directory: String) throws -> [String] {
        let d = StorePath.normalize(directory)
        return stores.keys.filter { StorePath.directory(of: $0) == d }.map { StorePath.basename($0) }.sorted()
    }

    /// The bytes of every store.
    var contents: [String: [UInt8]] { stores.mapValues(\.bytes) }

    /// What a restarted process finds: plain memory stores holding the surviving bytes.
    func survivors() -> MemoryStoreProvider {
        let p = MemoryStoreProvider()
        for (path, s) in stores { p.add(MemoryStore(bytes: s.bytes), at: path) }
        return p
    }
}
