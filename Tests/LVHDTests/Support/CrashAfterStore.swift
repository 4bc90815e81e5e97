import VHD

/// The machine dies after `budget` writes: a store over a `MemoryStore` that lets that many
/// writes through, then drops every later write and throws (syncs too), as a crash would.
final class CrashAfterStore: BlockStore {
    /// The disk that survives the crash.
    let disk: MemoryStore
    private var budget: Int
    /// Whether the crash happened.
    private(set) var crashed = false

    /// A store over `disk` allowing `writes` writes.
    init(_ disk: MemoryStore, writes: Int) {
        self.disk = disk
        budget = writes
    }

    /// The error every write throws after the crash.
    struct Crash: Error {}

    var size: UInt64 { disk.size }
    var isBlockDevice: Bool { true }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try disk.read(into: buffer, at: offset) }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard budget > 0 else { crashed = true; throw Crash() }
        budget -= 1
        try disk.write(buffer, at: offset)
    }
    func resize(to size: UInt64) throws { throw Crash() }
    func sync() throws { if crashed { throw Crash() } }
}
